"""Streamlit views: status strip, KPI tiles, live charts, multi-asset, backtest, minute stats, exports."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import streamlit as st

import analytics
from analytics import PairParams
from ui import charts
from ui.controls import Controls
from ui.live_chart import live_chart
from ui.pipeline import (
    BAR_SECONDS,
    PairFrame,
    compute_table,
    export_name,
    needed_rows,
    pair_frame,
    pair_scanner,
    returns_matrix,
    spread_diagnostics,
    symbol_stats,
    to_csv,
)
from ui.runtime import Runtime

STATE_BADGE = {
    "live": "LIVE", "connected": "connected", "connecting": "connecting…", "backoff": "reconnecting",
    "stale": "STALE", "blocked": "BLOCKED (HTTP 451)", "stopped": "stopped",
}


def _age(ms: int | None) -> str:
    if ms is None:
        return "—"
    age = time.time() - ms / 1000
    return f"{age * 1000:.0f} ms" if age < 1 else f"{age:.1f} s" if age < 120 else f"{age / 60:.0f} min"


def status_strip(rt: Runtime, ctl: Controls) -> None:
    """Connection state per stream, rates, ages, latency, gaps, persistence. Never a fake green."""
    src = rt.source
    st_store = rt.store.status()
    if src is None:
        st.info("Live ingestion is disabled (ALPHASTREAM_INGEST_ENABLED=false): showing stored data only.")
        state, message = "stopped", "ingestion disabled"
    else:
        h = src.health
        state, message = h.state, h.message
        if state == "blocked":
            st.error("Binance: blocked (HTTP 451: Binance refuses this location). Use replay or uploaded history, "
                     "or run the app from a permitted region; ALPHASTREAM_WS_URL can point at another endpoint.")
        elif state in ("connecting", "backoff", "stale") and not any(s.get("ticks") for s in st_store.symbols.values()):
            st.warning(f"No data yet — cannot reach Binance: {message}. Retrying automatically.")
    w = st_store.writer
    if w.state not in ("ok", "starting"):
        st.error(f"Storage: {w.message}")
    rows = []
    for sym in ctl.symbols:
        b = st_store.symbols.get(sym, {})
        sh = src.health.symbols.get(sym) if src is not None else None
        d = sh.as_dict() if sh is not None else {}
        rows.append({
            "stream": sym,
            "state": STATE_BADGE.get(state, state) if src is not None else "stored data",
            "frames/s": d.get("frames_per_s", 0.0),
            "last tick age": _age(b.get("last_time")) if b.get("ticks") else "no data yet",
            "last agg id": b.get("last_agg_id"),
            "latency p50/p99 ms": (f"{d['latency_p50_ms']:.0f} / {d['latency_p99_ms']:.0f}" if d.get("latency_p50_ms") is not None else "—"),
            "gaps filled / unfillable": f"{d.get('gaps_filled', 0)} / {d.get('gaps_unfillable', 0)}",
            "ticks in memory": b.get("ticks", 0),
        })
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Feed", STATE_BADGE.get(state, state), help=message)
    c2.metric("Reconnects", src.health.reconnects if src else 0)
    c3.metric("Rows in SQLite", f"{st_store.rows_in_sqlite:,}", help=w.message)
    c4.metric("Malformed frames", src.health.malformed if src else 0, help=(src.health.last_malformed if src else ""))
    st.dataframe(pd.DataFrame(rows).set_index("stream"), width="stretch")


def _z_color(z: float, entry: float) -> str:
    if not math.isfinite(z):
        return "gray"
    return "red" if abs(z) >= entry else "orange" if abs(z) >= entry / 2 else "green"


def kpis(table: pd.DataFrame, ctl: Controls, diag: dict[str, float], last_y: float, last_x: float) -> None:
    last = table.iloc[-1]
    cols = st.columns(8)
    cols[0].metric(f"{ctl.sym_y}", f"{last_y:,.2f}")
    cols[1].metric(f"{ctl.sym_x}", f"{last_x:,.2f}")
    cols[2].metric("β", f"{last['beta']:.4f}" if math.isfinite(last["beta"]) else "—")
    cols[3].metric("α", f"{last['alpha']:.4f}" if math.isfinite(last["alpha"]) else "—")
    cols[4].metric("spread", f"{last['spread']:.5f}" if math.isfinite(last["spread"]) else "—")
    z = float(last["zscore"])
    cols[5].markdown(f"**z-score**  \n:{_z_color(z, ctl.params.entry)}[**{z:+.2f}**]" if math.isfinite(z) else "**z-score**  \n—")
    cols[6].metric("corr (returns)", f"{last['correlation']:.3f}" if math.isfinite(last["correlation"]) else "—")
    p, hl = diag["adf_pvalue"], diag["half_life"]
    cols[7].metric("ADF p / half-life", f"{p:.3f} / {hl:.0f}" if math.isfinite(p) and math.isfinite(hl) else (f"{p:.3f} / ∞" if math.isfinite(p) else "—"))


def progress_note(pf: PairFrame, params: PairParams) -> str | None:
    need = needed_rows(params)
    if pf.rows < need:
        unit = "ticks" if pf.timeframe == "tick" else f"{pf.timeframe} bars"
        return f"collecting {unit}: {pf.rows} of {need} needed for a {params.window}-bar window"
    return None


def live_pair(rt: Runtime, ctl: Controls) -> pd.DataFrame | None:
    """Fast live view (every refresh): newest tick, KPIs and the z-score chart.

    Returns the analytics table (None while collecting) for the slower views.
    """
    if ctl.sym_y == ctl.sym_x:
        st.error("Choose two different symbols for Y and X.")
        return None
    pf = pair_frame(rt.store, ctl.sym_y, ctl.sym_x, ctl.timeframe)
    note = progress_note(pf, ctl.params)
    leg_stats = {s: rt.store.buffer.buffer(s).stats() for s in (ctl.sym_y, ctl.sym_x)}
    newest = max((v.get("last_time") or 0) for v in leg_stats.values())
    ids = " · ".join(f"{s} #{v['last_agg_id']}" for s, v in leg_stats.items() if v.get("last_agg_id") is not None)
    st.caption(
        f"Newest tick on screen: {pd.Timestamp(newest, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S.%f} UTC (age {_age(newest)}) — last ids {ids}"
        if newest else "Newest tick on screen: none yet"
    )
    if note:
        st.info(note + (" — 1m/5m views use closed bars only." if pf.closed_only else ""))
    if pf.rows < 3:
        return None
    cache = st.session_state.setdefault("_table_cache", {})
    try:
        table = compute_table(pf, ctl.params, cache)
    except ValueError as exc:
        st.error(f"Cannot compute analytics: {exc}")
        return None
    last_y = rt.store.buffer.buffer(ctl.sym_y).snapshot(newest - 60_000, None, ("price",))["price"]
    last_x = rt.store.buffer.buffer(ctl.sym_x).snapshot(newest - 60_000, None, ("price",))["price"]
    kpis(table, ctl, spread_diagnostics(table), float(last_y[-1]) if len(last_y) else float("nan"), float(last_x[-1]) if len(last_x) else float("nan"))
    shown = charts.decimate(table, rt.settings.max_chart_points)
    if len(shown) < len(table):
        st.caption(f"Charts show the latest {len(shown):,} of {len(table):,} rows; computations use all of them.")
    live_chart(charts.zscore_figure(shown, ctl.params.entry, ctl.params.exit, f"{ctl.pair_label}-{ctl.timeframe}"), key="z_chart", priority=1)
    return table


def live_charts(rt: Runtime, ctl: Controls, table: pd.DataFrame | None) -> None:
    """Slower live view: spread, prices, β, correlation, volume and volume profile."""
    if table is None or table.empty:
        return
    shown = charts.decimate(table, rt.settings.max_chart_points)
    rev = f"{ctl.pair_label}-{ctl.timeframe}"
    c1, c2 = st.columns(2)
    with c1:
        live_chart(charts.spread_figure(shown, ctl.params.window, ctl.band_k, rev), key="spread_chart")
    with c2:
        live_chart(charts.prices_figure(shown, ctl.sym_y, ctl.sym_x, rev), key="prices_chart")
    betas = {ctl.params.method: shown["beta"]}
    if ctl.overlay_methods:
        for m in analytics.HEDGE_METHODS:
            if m != ctl.params.method:
                other = analytics.pair_analytics(table["price_y"], table["price_x"], PairParams(**{**ctl.params.__dict__, "method": m}))
                betas[m] = other["beta"].reindex(shown.index)
    c3, c4 = st.columns(2)
    with c3:
        live_chart(charts.beta_figure(betas, rev), key="beta_chart")
    with c4:
        live_chart(charts.correlation_figure(shown, rev), key="corr_chart")
    vol_tf = "1s" if ctl.timeframe == "tick" else ctl.timeframe
    c5, c6 = st.columns([2, 1])
    bars_y = rt.store.bars(ctl.sym_y, vol_tf)
    bars_y = bars_y[bars_y.index >= shown.index[0]]
    if len(bars_y):
        with c5:
            live_chart(charts.volume_figure(charts.decimate(bars_y, rt.settings.max_chart_points), ctl.sym_y, rev), key="volume_chart")
    ticks = rt.store.buffer.snapshot(ctl.sym_y, int(shown.index[0].value // 1_000_000), None, ("price", "qty", "is_buyer_maker"))
    if len(ticks):
        prof = analytics.volume_profile(ticks["price"], ticks["qty"], bins=30, is_buyer_maker=ticks["is_buyer_maker"])
        with c6:
            live_chart(charts.volume_profile_figure(prof, ctl.sym_y, rev), key="profile_chart")


def adf_panel(table: pd.DataFrame | None, ctl: Controls) -> None:
    if not st.button("Run ADF / Engle-Granger on the current spread", key="adf_button"):
        return
    if table is None or table["spread"].notna().sum() < 30:
        st.warning("Not enough data yet: the tests need at least 30 bars of spread.")
        return
    spread = table["spread"].dropna()
    res = analytics.adf(spread)
    ly, lx = (np.log(table["price_y"]), np.log(table["price_x"])) if ctl.params.log_prices else (table["price_y"], table["price_x"])
    eg = analytics.engle_granger(ly, lx)
    hl = analytics.half_life(spread)
    c1, c2 = st.columns(2)
    c1.markdown("**ADF on the out-of-sample spread** (Dickey-Fuller critical values)")
    c1.table(pd.DataFrame({"value": [res.statistic, res.pvalue, res.lags, res.nobs, hl] + list(res.critical_values.values())},
                          index=["statistic", "p-value", "lags", "nobs", "half-life (bars)"] + [f"critical {k}" for k in res.critical_values]))
    c2.markdown("**Engle-Granger** (MacKinnon cointegration critical values)")
    c2.table(pd.DataFrame({"value": [eg.statistic, eg.pvalue, eg.lags, eg.beta, eg.alpha] + list(eg.critical_values.values())},
                          index=["statistic", "p-value", "lags", "hedge β", "α"] + [f"critical {k}" for k in eg.critical_values]))
    if eg.reject("5%"):
        verdict = f"Cointegrated at 5 % (EG p = {eg.pvalue:.3f}); the spread mean-reverts with a half-life of about {hl:.0f} bars."
    elif res.reject("5%"):
        verdict = f"The spread looks stationary (ADF p = {res.pvalue:.3f}) but Engle-Granger does not confirm cointegration (p = {eg.pvalue:.3f}): treat with care."
    else:
        verdict = f"No evidence of mean reversion (ADF p = {res.pvalue:.3f}, EG p = {eg.pvalue:.3f}): do not trade this spread on these data."
    st.info(verdict)


def multi_asset(rt: Runtime, ctl: Controls) -> None:
    rets = returns_matrix(rt.store, ctl.symbols, ctl.timeframe, ctl.params.window)
    c1, c2 = st.columns([1, 1])
    if rets.shape[1] >= 2 and len(rets) >= 3:
        with c1:  # persistent chart: the scan refreshes every 15 s, st.plotly_chart would remount (flash) each time
            live_chart(charts.heatmap_figure(rets.corr(), f"heat-{ctl.timeframe}"), key="heatmap")
    else:
        c1.info("Correlation heatmap: needs at least two symbols with overlapping bars.")
    c2.markdown("**Per-symbol statistics** (last window)")
    c2.dataframe(symbol_stats(rt.store, ctl.symbols, ctl.timeframe, ctl.params.window).round(4), width="stretch")
    st.markdown("**Pair scanner** — Engle-Granger p-value, half-life, current |z|")
    st.dataframe(pair_scanner(rt.store, ctl.symbols, ctl.timeframe, ctl.params).round(4), width="stretch")


def backtest_tab(table: pd.DataFrame | None, ctl: Controls) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    entry = c1.number_input("entry |z|", 0.1, 10.0, float(ctl.params.entry), 0.1, key="bt_entry")
    exit_ = c2.number_input("exit z", -5.0, 5.0, float(ctl.params.exit), 0.1, key="bt_exit")
    fee = c3.number_input("fee (bps per leg per fill)", 0.0, 100.0, 4.0, 0.5, key="bt_fee")
    notional = c4.number_input("notional (quote)", 10.0, 1e9, 10_000.0, 1000.0, key="bt_notional")
    stop = c5.number_input("stop |z| (0 = off)", 0.0, 20.0, 0.0, 0.5, key="bt_stop")
    # the click reruns the whole page, so ``table`` is the newest one at that moment
    if not st.button("Run backtest", key="bt_run"):
        st.caption("Runs on the current pair's table as of the click (decisions at bar t fill at bar t+1).")
        return
    if table is None or table["zscore"].notna().sum() < 2:
        st.info("Not enough data yet: the backtest needs the pair's z-score. Try again once it shows.")
        return
    try:
        with st.spinner("running backtest…"):
            res = analytics.backtest(
                table["price_y"], table["price_x"], table["zscore"], table, entry=entry, exit=exit_,
                stop=stop if stop > 0 else None, fee_bps=fee, notional=notional,
                price_space="log" if ctl.params.log_prices else "raw", bar_seconds=BAR_SECONDS[ctl.timeframe],
            )
    except ValueError as exc:
        st.error(f"Backtest rejected: {exc}")
        return
    s = res.summary
    st.caption(f"{len(table):,} bars, {table.index[0]:%Y-%m-%d %H:%M:%S} → {table.index[-1]:%Y-%m-%d %H:%M:%S} UTC.")
    cols = st.columns(6)
    cols[0].metric("Total PnL", f"{s['total_pnl']:,.2f}")
    cols[1].metric("Trades", f"{s['trades']:.0f}")
    cols[2].metric("Hit rate", f"{s['hit_rate'] * 100:.0f} %" if math.isfinite(s["hit_rate"]) else "—")
    cols[3].metric("Sharpe (ann.)", f"{s['sharpe']:.2f}" if math.isfinite(s["sharpe"]) else "—")
    cols[4].metric("Max drawdown", f"{s['max_drawdown']:,.2f}")
    cols[5].metric("Exposure", f"{s['exposure'] * 100:.0f} %")
    st.plotly_chart(charts.equity_figure(res.equity, f"bt-{ctl.pair_label}"), key="equity_chart")
    st.dataframe(res.trades, width="stretch")
    d1, d2 = st.columns(2)
    d1.download_button("Download trades CSV", to_csv(res.trades.set_index("entry_time"), "entry_time"), export_name("backtest_trades", ctl.pair_label, ctl.timeframe, table.index), "text/csv", key="dl_bt_trades")
    d2.download_button("Download equity CSV", to_csv(res.equity), export_name("backtest_equity", ctl.pair_label, ctl.timeframe, table.index), "text/csv", key="dl_bt_equity")


def minute_stats_tab(rt: Runtime | None, table: pd.DataFrame | None, ctl: Controls) -> None:
    if table is None or ctl.timeframe == "5m":
        st.info("Minute stats need the tick, 1s or 1m view with data.")
        return
    vy = rt.store.bars(ctl.sym_y, "1m")["volume"] if rt is not None else None
    vx = rt.store.bars(ctl.sym_x, "1m")["volume"] if rt is not None else None
    ms = analytics.minute_stats(table, vy, vx)
    st.dataframe(ms.round(6), width="stretch")
    st.download_button("Download minute stats CSV", to_csv(ms, "minute"), export_name("minute_stats", ctl.pair_label, ctl.timeframe, ms.index), "text/csv", key="dl_minute")


def exports(rt: Runtime, ctl: Controls) -> None:
    st.markdown("All CSVs use ISO-8601 UTC timestamps; file names carry pair, timeframe and range.")
    live_exports(rt, ctl)
    gaps = rt.store.status().gaps
    if gaps:
        st.markdown("**Known gaps** (ids the feed skipped, and whether REST filled them)")
        st.dataframe(pd.DataFrame([g.__dict__ for g in gaps]), width="stretch")


@st.fragment
def live_exports(rt: Runtime, ctl: Controls) -> None:
    """Export live tables in two steps: *Prepare* snapshots one as CSV, then it downloads.

    A one-click (deferred) ``st.download_button`` builds its file on click, but
    Streamlit (1.67) drops such a file at the second script run after building
    it, and the live fragments run several times a second: a busy browser then
    fetches a deleted file (a broken, hash-named download). A prepared CSV is an
    ordinary download tied to this session and stays valid. Only the latest
    snapshot is kept (memory); this fragment reruns alone, not the whole page.
    """
    c1, c2 = st.columns(2)
    sym = c1.selectbox("Symbol", ctl.symbols, key="exp_symbol")
    tf = c2.selectbox("Bars timeframe", ("1s", "1m", "5m"), key="exp_tf")
    kinds = {
        "analytics": f"Processed analytics {ctl.pair_label} {ctl.timeframe} (prices, β, α, spread, z, correlation, signal)",
        "bars": f"OHLCV bars {sym} {tf}",
        "ticks": f"Raw ticks {sym} (everything stored)",
    }
    clicked = [kind for kind, label in kinds.items() if st.button(f"Prepare CSV: {label}", key=f"prep_{kind}")]
    table = st.session_state.get("_table")  # the live fragment's newest table, not the last full run's
    if clicked == ["analytics"] and table is None:
        st.info("Not enough data yet: the processed analytics need the pair's first window of bars.")
    elif clicked:
        kind = clicked[0]
        with st.spinner("building the CSV…"):
            if kind == "analytics":
                data, name, rows = to_csv(table), export_name("analytics", ctl.pair_label, ctl.timeframe, table.index), len(table)
            elif kind == "bars":
                bars = rt.store.bars(sym, tf)
                data, name, rows = to_csv(bars), export_name("ohlcv", sym, tf, bars.index), len(bars)
            else:
                ticks = rt.store.ticks_export(sym)  # one read: the file's name and row count describe the file
                times = pd.DatetimeIndex(pd.to_datetime(ticks["trade_time"], unit="ms", utc=True))
                data, name, rows = ticks.to_csv(index=False), export_name("ticks", sym, "tick", times), len(ticks)
        st.session_state["_export"] = {"label": kinds[kind], "data": data, "name": name, "rows": rows, "at": pd.Timestamp.now(tz="UTC")}
    prepared = st.session_state.get("_export")
    if prepared is not None:
        st.download_button(f"Download {prepared['name']}", prepared["data"], prepared["name"], "text/csv",
                           key="dl_prepared", on_click="ignore", type="primary")
        st.caption(f"{prepared['label']}: {prepared['rows']:,} rows, a snapshot taken {prepared['at']:%H:%M:%S} UTC; "
                   "prepare again for newer data.")
