"""The Alerts tab: rule editor, rule list, JSON import/export, live history; plus toasts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from alerts import COMPARISONS, METRICS, AlertEngine, AlertRule, RuleError
from alerts.rules import PAIR_METRICS, SEVERITIES, TIMEFRAMES
from ui.pipeline import to_csv


def toasts(engine: AlertEngine | None) -> None:
    """Show each alert fired since this session last looked, as a toast (every open session)."""
    if engine is None:
        return
    seen = st.session_state.get("_alert_seen")
    events = list(engine.events)
    if seen is None:  # a new session starts from now, not from history
        st.session_state["_alert_seen"] = events[-1].id if events else 0
        return
    for e in events:
        if e.id > seen:
            st.toast(f"{e.severity.upper()}: {e.message}", icon="🚨" if e.severity == "critical" else "🔔")
    if events:
        st.session_state["_alert_seen"] = max(seen, events[-1].id)


def alerts_tab(engine: AlertEngine | None, symbols: tuple[str, ...], sym_y: str, sym_x: str) -> None:
    if engine is None:
        st.info("The alert engine is not running.")
        return
    with st.form("new_rule", clear_on_submit=False):
        st.markdown("**New rule** — evaluated server-side on closed bars, even with no browser open")
        c1, c2, c3, c4 = st.columns(4)
        name = c1.text_input("Name", value="z-score extreme")
        metric = c2.selectbox("Metric", METRICS, help="pair: " + ", ".join(PAIR_METRICS) + "; the others watch one symbol")
        comparison = c3.selectbox("Comparison", COMPARISONS, index=COMPARISONS.index("abs_gt"))
        threshold = c4.number_input("Threshold", value=2.0, format="%.6g")
        c5, c6, c7, c8 = st.columns(4)
        ry = c5.selectbox("Y / symbol", symbols, index=symbols.index(sym_y) if sym_y in symbols else 0)
        rx = c6.selectbox("X (pair metrics)", symbols, index=symbols.index(sym_x) if sym_x in symbols else 0)
        timeframe = c7.selectbox("Timeframe", TIMEFRAMES, index=1)
        window = c8.number_input("Window (bars)", 3, 5000, 100)
        c9, c10, c11, c12 = st.columns(4)
        method = c9.selectbox("Hedge", ("OLS", "Kalman", "Huber"))
        severity = c10.selectbox("Severity", SEVERITIES, index=1)
        cooldown = c11.number_input("Cooldown (s)", 0.0, 86_400.0, 60.0)
        webhook = c12.text_input("Webhook URL (optional)", placeholder="https://hooks.slack.com/…")
        if st.form_submit_button("Save rule"):
            pair = metric in PAIR_METRICS
            rule = AlertRule(
                name=name, metric=metric, comparison=comparison, threshold=float(threshold),
                symbol_y=ry if pair else "", symbol_x=rx if pair else "", symbol="" if pair else ry,
                timeframe=timeframe, window=int(window), method=method, severity=severity, cooldown_s=float(cooldown),
                webhook_url=webhook.strip(),
            )
            try:
                engine.rules.save(rule)
                engine.reload_rules()
                st.success(f"Saved: {rule.describe()}")
            except RuleError as exc:
                st.error(f"Rule not saved — {exc}")
    rules = engine.rules.list()
    st.markdown(f"**Rules** ({len(rules)})")
    for r in rules:
        c1, c2, c3, c4 = st.columns([6, 1, 1, 2])
        err = engine.errors.get(r.id)
        c1.markdown(f"`#{r.id}` **{r.name}** — {r.describe()} · {r.severity} · cooldown {r.cooldown_s:g}s" + (f" · :red[{err}]" if err else ""))
        enabled = c2.toggle("on", value=r.enabled, key=f"rule_on_{r.id}")
        if enabled != r.enabled:
            engine.rules.save(AlertRule(**{**r.to_dict(), "enabled": enabled}))
            engine.reload_rules()
            st.rerun()
        if c3.button("Delete", key=f"rule_del_{r.id}"):
            engine.rules.delete(r.id)
            engine.reload_rules()
            st.rerun()
    c1, c2 = st.columns(2)
    c1.download_button("Export rules (JSON)", engine.rules.export_json(), "alphastream_rules.json", "application/json", key="rules_export")
    up = c2.file_uploader("Import rules (JSON)", type=["json"], key="rules_import")
    if up is not None and st.session_state.get("_rules_imported") != up.file_id:
        try:
            added = engine.rules.import_json(up.getvalue().decode("utf-8", errors="replace"))
            engine.reload_rules()
            st.success(f"Imported {len(added)} rule(s)")
        except RuleError as exc:
            st.error(f"Import refused, nothing saved — {exc}")
        st.session_state["_rules_imported"] = up.file_id
    alert_history(engine)


@st.fragment(run_every=2.0)
def alert_history(engine: AlertEngine) -> None:
    """Fired alerts, newest first; refreshes every 2 s, so an alert shows here without a click."""
    st.markdown("**History**")
    events = pd.DataFrame([e.__dict__ for e in engine.events])
    if events.empty:
        st.caption("No alert has fired yet.")
        return
    events["fired_at"] = pd.to_datetime(events["fired_at"], unit="s", utc=True)
    events["bar_time"] = pd.to_datetime(events["bar_time"], unit="ms", utc=True)
    sev = st.multiselect("Severity", SEVERITIES, default=list(SEVERITIES), key="alert_sev")
    only_open = st.checkbox("Unacknowledged only", key="alert_open")
    shown = events[events["severity"].isin(sev)]
    if only_open:
        shown = shown[~shown["acknowledged"]]
    st.dataframe(shown.sort_values("id", ascending=False).set_index("id"), width="stretch")
    open_ids = shown.loc[~shown["acknowledged"], "id"].tolist()
    if open_ids and st.button(f"Acknowledge {len(open_ids)} shown", key="alert_ack"):
        for i in open_ids:
            engine.acknowledge(int(i))
        st.rerun(scope="fragment")
    st.download_button("Export history (CSV)", to_csv(shown.set_index("fired_at"), "fired_at"), "alphastream_alerts.csv", "text/csv", key="alerts_csv")
