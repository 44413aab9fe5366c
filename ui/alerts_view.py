"""The Alerts tab: rule editor (new and edit), rule list, JSON import/export, live history; plus toasts.

The editor is plain widgets and a Save button, not an ``st.form``: a form
submits when Enter is pressed in any of its number fields, which saved
half-finished rules. Names and conditions must be unique (the store refuses
duplicates). Every user string is shown as text (:func:`ui.text.md_text`).
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from alerts import COMPARISONS, METRICS, AlertEngine, AlertRule, RuleError
from alerts.destinations import mask_url
from alerts.rules import COMPARISON_LABELS, METRIC_LABELS, PAIR_METRICS, SEVERITIES
from pairs import BAR_TIMEFRAMES, to_csv
from ui.text import md_text

_FIELDS = {  # widget key -> (rule field, default)
    "ar_name": ("name", "z-score extreme"), "ar_metric": ("metric", "zscore"), "ar_comparison": ("comparison", "abs_gt"),
    "ar_threshold": ("threshold", 2.0), "ar_tf": ("timeframe", "1m"), "ar_window": ("window", 100), "ar_method": ("method", "OLS"),
    "ar_severity": ("severity", "warning"), "ar_cooldown": ("cooldown_s", 60.0), "ar_formation": ("formation_bars", 2000),
}


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
            st.toast(f"{e.severity.upper()}: {md_text(e.message)}", icon="🚨" if e.severity == "critical" else "🔔")
    if events:
        st.session_state["_alert_seen"] = max(seen, events[-1].id)


def _reset_form(symbols: tuple[str, ...], sym_y: str, sym_x: str) -> None:
    for key, (_, default) in _FIELDS.items():
        st.session_state[key] = default
    st.session_state["ar_y"] = sym_y if sym_y in symbols else symbols[0]
    st.session_state["ar_x"] = sym_x if sym_x in symbols else symbols[-1]
    st.session_state["ar_webhook"] = ""
    st.session_state["ar_kfixed"] = False
    st.session_state["ar_klogd"] = -8.0
    st.session_state["ar_klogve"] = -7.0
    st.session_state["ar_editing"] = None


def _load_rule(rule: AlertRule, symbols: tuple[str, ...]) -> None:
    """Edit button callback: the rule's values into the editor (runs before the widgets exist)."""
    for key, (field, _) in _FIELDS.items():
        st.session_state[key] = getattr(rule, field)
    pair = rule.metric in PAIR_METRICS
    st.session_state["ar_y"] = rule.symbol_y if pair else rule.symbol
    st.session_state["ar_x"] = rule.symbol_x if pair else st.session_state.get("ar_x", symbols[-1])
    st.session_state["ar_webhook"] = ""  # empty keeps the stored (secret) URL
    st.session_state["ar_kfixed"] = rule.kalman_delta is not None
    st.session_state["ar_klogd"] = math.log10(rule.kalman_delta) if rule.kalman_delta else -8.0
    st.session_state["ar_klogve"] = math.log10(rule.kalman_obs_var) if rule.kalman_obs_var else -7.0
    st.session_state["ar_editing"] = rule.id


def _rule_from_form(engine: AlertEngine) -> AlertRule:
    ss = st.session_state
    pair = ss["ar_metric"] in PAIR_METRICS
    editing = ss.get("ar_editing")
    webhook = ss.get("ar_webhook", "").strip()
    if editing is not None and not webhook:
        old = next((r for r in engine.rules.list() if r.id == editing), None)
        webhook = old.webhook_url if old is not None else ""
    return AlertRule(
        name=ss["ar_name"], metric=ss["ar_metric"], comparison=ss["ar_comparison"], threshold=float(ss["ar_threshold"]),
        symbol_y=ss["ar_y"] if pair else "", symbol_x=ss["ar_x"] if pair else "", symbol="" if pair else ss["ar_y"],
        timeframe=ss["ar_tf"], window=int(ss["ar_window"]), method=ss["ar_method"], severity=ss["ar_severity"],
        cooldown_s=float(ss["ar_cooldown"]), webhook_url=webhook, formation_bars=int(ss["ar_formation"]),
        kalman_delta=10.0 ** ss["ar_klogd"] if ss["ar_kfixed"] else None,
        kalman_obs_var=10.0 ** ss["ar_klogve"] if ss["ar_kfixed"] else None, id=editing,
    )


def _save(engine: AlertEngine, symbols: tuple[str, ...], sym_y: str, sym_x: str) -> None:
    """Save button callback (a new rule's symbols join the recorded universe through ``reload_rules``)."""
    try:
        rule = _rule_from_form(engine)
        saved = engine.rules.save(rule)
    except (RuleError, ValueError) as exc:
        st.session_state["_ar_note"] = ("error", f"Rule not saved — {md_text(exc)}")
        return
    engine.reload_rules()
    verb = "Updated" if rule.id is not None else "Saved"
    st.session_state["_ar_note"] = ("ok", f"{verb} #{saved.id}: {md_text(saved.name)} — {md_text(saved.describe())}")
    _reset_form(symbols, sym_y, sym_x)


def alerts_tab(engine: AlertEngine | None, symbols: tuple[str, ...], sym_y: str, sym_x: str) -> None:
    """The tab; ``symbols`` are the recorded ones (a rule on another symbol, imported, gets recorded too)."""
    if engine is None:
        st.info("The alert engine is not running.")
        return
    symbols = tuple(symbols) or (sym_y, sym_x)
    if "ar_name" not in st.session_state:
        _reset_form(symbols, sym_y, sym_x)
    for key in ("ar_y", "ar_x"):
        if st.session_state.get(key) not in symbols:
            st.session_state[key] = symbols[0]
    editing = st.session_state.get("ar_editing")
    st.markdown(f"**{'Edit rule #' + str(editing) if editing is not None else 'New rule'}** — evaluated server-side on closed bars, "
                "even with no browser open")
    c1, c2, c3, c4 = st.columns(4)
    c1.text_input("Name", key="ar_name")
    metric = c2.selectbox("Metric", METRICS, format_func=METRIC_LABELS.get, key="ar_metric",
                          help="Pair metrics: " + ", ".join(METRIC_LABELS[m] for m in PAIR_METRICS) + "; the others watch one symbol.")
    c3.selectbox("Comparison", COMPARISONS, format_func=COMPARISON_LABELS.get, key="ar_comparison")
    c4.number_input("Threshold", format="%.6g", key="ar_threshold")
    pair = metric in PAIR_METRICS
    c5, c6, c7, c8 = st.columns(4)
    c5.selectbox("Y" if pair else "Symbol", symbols, key="ar_y")
    if pair:
        c6.selectbox("X", symbols, key="ar_x")
    c7.selectbox("Timeframe", [tf.value for tf in BAR_TIMEFRAMES], key="ar_tf")
    c8.number_input("Window (bars)", 3, 5000, key="ar_window")
    c9, c10, c11, c12 = st.columns(4)
    method = c9.selectbox("Hedge", ("OLS", "Kalman", "Huber"), key="ar_method", disabled=not pair)
    c10.selectbox("Severity", SEVERITIES, key="ar_severity")
    c11.number_input("Cooldown (s)", 0.0, 86_400.0, key="ar_cooldown")
    c12.text_input("Webhook URL (optional)", key="ar_webhook", type="password",
                   placeholder="unchanged" if editing is not None else "https://hooks.slack.com/…",
                   help="Slack/Discord/any JSON endpoint. Loopback, private and metadata addresses are refused.")
    if pair:
        k1, k2, k3, k4 = st.columns(4)
        k4.number_input("Formation window (bars)", 100, 50_000, step=100, key="ar_formation",
                        help="For EG p and half-life, and each Kalman fit.")
        if method == "Kalman":
            k1.checkbox("Fixed Kalman δ/Ve", key="ar_kfixed", help="Off: δ and Ve fitted by maximum likelihood, as on the dashboard.")
            if st.session_state["ar_kfixed"]:
                k2.number_input("log10 δ", -14.0, -0.5, step=0.5, format="%.1f", key="ar_klogd")
                k3.number_input("log10 Ve", -14.0, 6.0, step=0.5, format="%.1f", key="ar_klogve")
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button("Update rule" if editing is not None else "Save rule", key="ar_save", type="primary",
              on_click=_save, args=(engine, symbols, sym_y, sym_x))
    if editing is not None:
        b2.button("Cancel edit", key="ar_cancel", on_click=_reset_form, args=(symbols, sym_y, sym_x))
    note = st.session_state.pop("_ar_note", None)
    if note:
        (st.error if note[0] == "error" else st.success)(note[1])  # user parts escaped when it was built
    rules = engine.rules.list()
    st.markdown(f"**Rules** ({len(rules)})")
    for r in rules:
        c1, c2, c3, c4 = st.columns([6, 1, 1, 1])
        err = engine.errors.get(r.id)
        hook = f" · webhook {md_text(mask_url(r.webhook_url))}" if r.webhook_url else ""
        c1.markdown(f"`#{r.id}` **{md_text(r.name)}** — {md_text(r.describe())} · {r.severity} · cooldown {r.cooldown_s:g} s{hook}"
                    + (f" · :red[{md_text(err)}]" if err else ""))
        enabled = c2.toggle("on", value=r.enabled, key=f"rule_on_{r.id}")
        if enabled != r.enabled:
            engine.rules.save(AlertRule(**{**r.to_dict(), "enabled": enabled}))
            engine.reload_rules()
            st.rerun()
        c3.button("Edit", key=f"rule_edit_{r.id}", on_click=_load_rule, args=(r, symbols))
        if c4.button("Delete", key=f"rule_del_{r.id}"):
            engine.rules.delete(r.id)
            engine.reload_rules()
            st.rerun()
    c1, c2 = st.columns(2)
    c1.download_button("Export rules (JSON, webhook URLs masked)", engine.rules.export_json(), "alphastream_rules.json",
                       "application/json", key="rules_export", on_click="ignore")
    up = c2.file_uploader("Import rules (JSON)", type=["json"], key="rules_import", max_upload_size=1)
    if up is not None and st.session_state.get("_rules_imported") != up.file_id:
        try:
            added = engine.rules.import_json(up.getvalue().decode("utf-8", errors="replace"))
            engine.reload_rules()
            st.success(f"Imported {len(added)} rule(s)" + "".join(f"; {md_text(n)}" for n in engine.rules.last_import_notes))
        except RuleError as exc:
            st.error(f"Import refused, nothing saved — {md_text(exc)}")
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
    table = shown.sort_values("fired_at", ascending=False)
    table = table.assign(rule_id=table["rule_id"].map(lambda r: f"#{r}"))
    st.dataframe(table, width="stretch", hide_index=True,
                 column_order=["fired_at", "rule_id", "rule_name", "severity", "message", "value", "threshold", "bar_time",
                               "acknowledged", "webhook_status", "latency_ms"],
                 column_config={
                     "fired_at": st.column_config.DatetimeColumn("fired (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                     "rule_id": st.column_config.TextColumn("rule"), "rule_name": st.column_config.TextColumn("rule name"),
                     "bar_time": st.column_config.DatetimeColumn("bar (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                     "value": st.column_config.NumberColumn(format="%.4g"), "threshold": st.column_config.NumberColumn(format="%.4g"),
                     "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.0f"),
                     "webhook_status": st.column_config.TextColumn("webhook")})
    open_ids = shown.loc[~shown["acknowledged"], "id"].tolist()
    if open_ids and st.button(f"Acknowledge {len(open_ids)} shown", key="alert_ack"):
        for i in open_ids:
            engine.acknowledge(int(i))
        st.rerun(scope="fragment")
    st.download_button("Export history (CSV)", to_csv(shown.set_index("fired_at"), "fired_at"), "alphastream_alerts.csv", "text/csv",
                       key="alerts_csv", on_click="ignore")
