"""Streamlit views: status strip, KPI tiles, live charts, multi-asset, backtest, minute stats, exports."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

import analytics
from analytics import PairParams
from server.pipeline import (
    BAR_SECONDS,
    PairFrame,
    compute_table,
    diagnostics_of,
    export_name,
    needed_rows,
    pair_frame,
    pair_scanner,
    returns_matrix,
    symbol_stats,
    to_csv,
)
from server.runtime import Runtime
from server.status import FeedStatus, feed_status, fmt_age
from ui import charts
from ui.controls import EXIT_LABELS, Controls
from ui.live_chart import live_chart


def _latency_cell(d: dict) -> str:
    p50, p99 = d.get("latency_p50_ms"), d.get("latency_p99_ms")
    if p50 is None:
        return "—"
    if p50 > 3_600_000:  # receive time - exchange time over an hour: a recording or a wrong clock
        return "n/a (clock mismatch: replayed or recorded data?)"
    return f"{p50:,.0f} / {p99:,.0f}"


def status_strip(rt: Runtime, ctl: Controls) -> FeedStatus:
    """Feed state per stream, rates, ages, latency, gaps, persistence — never old data shown as live."""
    fs = feed_status(rt, ctl.symbols)
    st_store = rt.store.status()
    if fs.severity in ("warning", "error"):
        (st.error if fs.severity == "error" else st.warning)(fs.message)
    elif fs.severity == "info":
        st.info(fs.message)
    w = st_store.writer
    if w.state not in ("ok", "starting"):
        last = f"last successful write {fmt_age(time.time() - w.last_commit_at)} ago" if w.last_commit_at else "nothing written since start"
        st.error(f"Storage: {w.message} — {w.pending_rows:,} ticks waiting in memory; {last}.")
    src = rt.source
    rows = []
    for sym in ctl.symbols:
        s_ = fs.symbols[sym]
        b = st_store.symbols.get(sym, {})
        sh = src.health.symbols.get(sym) if src is not None else None
        d = sh.as_dict() if sh is not None else {}
        rows.append({
            "stream": sym,
            "state": s_.state,
            "frames/s": d.get("frames_per_s", 0.0),
            "last trade (UTC)": f"{pd.Timestamp(s_.last_time_ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S}" if s_.last_time_ms else "no trade yet",
            "age": fmt_age(s_.age_s),
            "last agg id": f"{s_.last_agg_id:,}".replace(",", " ") if s_.last_agg_id is not None else "—",
            "latency p50 / p99 (ms)": _latency_cell(d),
            "gaps filled / unfillable": f"{d.get('gaps_filled', 0)} / {d.get('gaps_unfillable', 0)}",
            "ticks in memory": f"{b.get('ticks', 0):,}",
        })
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Feed", fs.state, help=fs.message)
    if fs.attempts:
        c2.metric("Connection attempts", f"{fs.attempts}", help=f"Consecutive failed attempts; {fs.reconnects} reconnects after a connection was up.")
    else:
        c2.metric("Reconnects", f"{fs.reconnects}", help="Connections lost after they were up (each one backfilled over REST).")
    c3.metric("Rows in PostgreSQL" if rt.store.backend == "postgresql" else "Rows in SQLite", f"{st_store.rows_stored:,}", help=w.message)
    c4.metric("Malformed frames", f"{src.health.malformed if src else 0:,}", help=(src.health.last_malformed if src else "") or None)
    st.table(pd.DataFrame(rows).set_index("stream"))  # static HTML: far cheaper to re-render every second than a data grid
    return fs


def _z_color(z: float, entry: float) -> str:
    if not math.isfinite(z):
        return "gray"
    return "red" if abs(z) >= entry else "orange" if abs(z) >= entry / 2 else "green"


KPI_HELP = {
    "beta": "Hedge ratio of the current fit: units of X per unit of Y (raw prices) or value of X per value of Y (log prices).",
    "z": "How many standard deviations the spread is from its recent mean (the trading signal; entry at ±entry).",
    "corr": "Rolling correlation of the legs' returns over the hedge window (on 1 s returns for the tick view).",
    "eg": "Engle-Granger cointegration p-value of a hedge fixed over the formation window (H0: no cointegration; "
          "< 0.05 = cointegrated at 5 %). Not the rolling-hedge spread, which looks stationary by construction.",
    "hl": "Half-life of the formation-window residual: bars (and time) for half of a deviation to decay.",
}


def fmt_price(p: float) -> str:
    """Price at a precision that suits its size, with thousands separators (never SI units)."""
    if not math.isfinite(p):
        return "—"
    a = abs(p)
    decimals = 2 if a >= 1000 else 3 if a >= 100 else 4 if a >= 1 else 6 if a >= 0.01 else 8
    return f"{p:,.{decimals}f}"


def fmt_half_life(d: analytics.PairDiagnostics) -> str:
    """The half-life in time when known (bars otherwise): short enough for a tile."""
    hl = d.half_life_bars
    if hl == math.inf:
        return "∞"
    if not math.isfinite(hl):
        return "—"
    return _duration(d.half_life_seconds) if math.isfinite(d.half_life_seconds) else f"{hl:,.0f} bars"


def half_life_label(d: analytics.PairDiagnostics) -> str:
    hl = d.half_life_bars
    return f"half-life ({hl:,.0f} bars)" if math.isfinite(hl) else "half-life"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def kpis(table: pd.DataFrame, ctl: Controls, diag: analytics.PairDiagnostics, last_y: float, last_x: float,
         stale_age: str | None = None) -> None:
    last = table.iloc[-1]
    old = f" ({stale_age} old)" if stale_age else ""
    cols = st.columns(4)
    cols[0].metric(f"{ctl.sym_y}{old}", fmt_price(last_y))
    cols[1].metric(f"{ctl.sym_x}{old}", fmt_price(last_x))
    z = float(last["zscore"])
    color = "gray" if stale_age else _z_color(z, ctl.params.entry)
    cols[2].markdown(f"**z-score{old}**  \n:{color}[**{z:+.2f}**]" if math.isfinite(z)
                     else "**z-score**  \n" + ("stale leg" if bool(last.get("stale", False)) else "—"), help=KPI_HELP["z"])
    cols[3].metric("β", f"{last['beta']:.4f}" if math.isfinite(last["beta"]) else "—", help=KPI_HELP["beta"])
    cols = st.columns(4)
    corr_label = "corr (1 s returns)" if ctl.timeframe == "tick" else "corr (returns)"
    cols[0].metric(corr_label, f"{last['correlation']:.3f}" if math.isfinite(last["correlation"]) else "—", help=KPI_HELP["corr"])
    cols[1].metric("EG p (formation)", f"{diag.eg_pvalue:.3f}" if math.isfinite(diag.eg_pvalue) else "—", help=KPI_HELP["eg"])
    cols[2].metric(half_life_label(diag), fmt_half_life(diag), help=KPI_HELP["hl"])
    unit = "log points" if ctl.params.log_prices else f"{ctl.sym_y} quote units"
    cols[3].metric(f"spread ({unit})", f"{last['spread']:.5f}" if math.isfinite(last["spread"]) else "—",
                   help="Y minus the hedged X (out-of-sample: the hedge fitted up to the previous bar).")
    st.caption(f"Cointegration: {diag.verdict} — {diag.describe()}")


def progress_note(pf: PairFrame, params: PairParams) -> str | None:
    need = needed_rows(params)
    if pf.rows < need:
        unit = "ticks" if pf.timeframe == "tick" else f"{pf.timeframe} bars"
        what = (f"the {params.window}-bar hedge and the {params.zscore_window}-bar z-score" if params.method != "Kalman"
                else "the first Kalman fit" if params.kalman_fitted else "the Kalman initialisation")
        return f"collecting {unit}: {pf.rows:,} of {need:,} that {what} need before the first z-score"
    return None


def live_pair(rt: Runtime, ctl: Controls) -> pd.DataFrame | None:
    """Fast live view (every refresh): newest tick, KPIs and the z-score chart.

    Returns the analytics table (None while collecting) for the slower views.
    Every figure says how old it is when the newest tick is older than the
    staleness limit (on the view's clock: the replay clock for a replay).
    """
    if ctl.sym_y == ctl.sym_x:
        st.error("Choose two different symbols for Y and X.")
        return None
    now_ms = rt.now_ms()
    pf = pair_frame(rt.store, ctl.sym_y, ctl.sym_x, ctl.timeframe, ctl.params, now_ms=now_ms)
    leg_stats = {s: rt.store.buffer.buffer(s).stats() for s in (ctl.sym_y, ctl.sym_x)}
    newest = max((v.get("last_time") or 0) for v in leg_stats.values())
    ids = " · ".join(f"{s} #{v['last_agg_id']}" for s, v in leg_stats.items() if v.get("last_agg_id") is not None)
    age_s = max(0.0, (now_ms - newest) / 1000) if newest else None  # clock skew can put a trade a few ms "ahead"
    st.caption(
        f"Newest tick on screen: {pd.Timestamp(newest, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S.%f} UTC (age {fmt_age(age_s)}) — last ids {ids}"
        if newest else "Newest tick on screen: none yet"
    )
    stale = age_s is not None and age_s > rt.settings.stale_after_s
    if stale:
        st.warning(f"These figures are {fmt_age(age_s)} old: the last trade of {ctl.sym_y}/{ctl.sym_x} was at "
                   f"{pd.Timestamp(newest, unit='ms', tz='UTC'):%H:%M:%S} UTC. Not live.")
    if pf.rows == 0:
        waiting = [s for s, v in leg_stats.items() if not v.get("ticks")]
        st.info(f"Waiting for the first trade of {', '.join(waiting)}." if waiting else
                "Waiting for both legs to trade in the same bar.")
        return None
    note = progress_note(pf, ctl.params)
    if note:
        st.info(note + (" — 1m/5m views use closed bars only." if pf.closed_only else
                        " — Binance has no 1 s klines, so 1 s history builds up from the recorded trades."))
    seeded = [rt.seeded.get((s, ctl.timeframe)) for s in (ctl.sym_y, ctl.sym_x)]
    if pf.closed_only and all(seeded):
        upto = min(b[1] for b in seeded)
        st.caption(f"{ctl.timeframe} bars up to {upto:%Y-%m-%d %H:%M} UTC are exchange klines (Binance REST, fetched at start); "
                   "later bars are built from the recorded trades.")
    if pf.rows < 3:
        return None
    cache = st.session_state.setdefault("_table_cache", {})
    table = _session_table(pf, ctl, cache)
    if table is None:
        return None
    last_y = rt.store.buffer.buffer(ctl.sym_y).snapshot(newest - 60_000, None, ("price",))["price"]
    last_x = rt.store.buffer.buffer(ctl.sym_x).snapshot(newest - 60_000, None, ("price",))["price"]
    kpis(table, ctl, diagnostics_of(table, ctl.params, cache), float(last_y[-1]) if len(last_y) else float("nan"),
         float(last_x[-1]) if len(last_x) else float("nan"), stale_age=fmt_age(age_s) if stale else None)
    shown = charts.decimate(table, rt.settings.max_chart_points)
    if len(shown) < len(table):
        st.caption(f"Charts show the latest {len(shown):,} of {len(table):,} rows; computations use all of them.")
    title_note = f" — data {fmt_age(age_s)} old" if stale else ""
    live_chart(charts.zscore_figure(shown, ctl.params.entry, ctl.params.exit, f"{ctl.pair_label}-{ctl.timeframe}", note=title_note),
               key="z_chart", priority=1)
    return table


def _session_table(pf: PairFrame, ctl: Controls, cache: dict) -> pd.DataFrame | None:
    """The pair's analytics table from this session's cache, or None with the reason on screen."""
    try:
        return compute_table(pf, ctl.params, cache)
    except ValueError as exc:
        st.error(f"Cannot compute analytics: {exc}")
        return None


def live_table(rt: Runtime, ctl: Controls) -> pd.DataFrame | None:
    """Pushed mode's slow part (the panel above shows ticks, KPIs and z): the table for the other
    views and tabs, the formation-window diagnostic and where the bars come from."""
    if ctl.sym_y == ctl.sym_x:
        st.error("Choose two different symbols for Y and X.")
        return None
    pf = pair_frame(rt.store, ctl.sym_y, ctl.sym_x, ctl.timeframe, ctl.params, now_ms=rt.now_ms())
    if pf.rows < 3:
        return None
    cache = st.session_state.setdefault("_table_cache", {})
    table = _session_table(pf, ctl, cache)
    if table is None:
        return None
    diag = diagnostics_of(table, ctl.params, cache)
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.metric("EG p (formation)", f"{diag.eg_pvalue:.3f}" if math.isfinite(diag.eg_pvalue) else "—", help=KPI_HELP["eg"])
    c2.metric(half_life_label(diag), fmt_half_life(diag), help=KPI_HELP["hl"])
    c3.caption(f"Cointegration: {diag.verdict} — {diag.describe()}")
    seeded = [rt.seeded.get((s, ctl.timeframe)) for s in (ctl.sym_y, ctl.sym_x)]
    if pf.closed_only and all(seeded):
        upto = min(b[1] for b in seeded)
        st.caption(f"{ctl.timeframe} bars up to {upto:%Y-%m-%d %H:%M} UTC are exchange klines (Binance REST, fetched at start); "
                   "later bars are built from the recorded trades.")
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
                other = analytics.pair_analytics(table["price_y"], table["price_x"], replace(ctl.params, method=m, kalman_delta=None, kalman_obs_var=None),
                                                 stale=table["stale"].to_numpy())
                betas[m] = other["beta"].reindex(shown.index)
    c3, c4 = st.columns(2)
    with c3:
        band = shown["beta_std"] if ctl.params.method == "Kalman" and "beta_std" in shown else None
        live_chart(charts.beta_figure(betas, rev, band=band), key="beta_chart")
    with c4:
        live_chart(charts.correlation_figure(shown, rev), key="corr_chart")
    vol_tf = "1s" if ctl.timeframe == "tick" else ctl.timeframe
    c5, c6 = st.columns([2, 1])
    bars_y = rt.store.bars(ctl.sym_y, vol_tf)
    bars_y = bars_y[bars_y.index >= shown.index[0]]
    if len(bars_y):
        with c5:
            live_chart(charts.volume_figure(charts.decimate(bars_y, rt.settings.max_chart_points), ctl.sym_y, rev,
                                            side_known=rt.side_known.get(ctl.sym_y, True)), key="volume_chart")
    ticks = rt.store.buffer.snapshot(ctl.sym_y, int(shown.index[0].value // 1_000_000), None, ("price", "qty", "is_buyer_maker"))
    if len(ticks):
        side = ticks["is_buyer_maker"] if rt.side_known.get(ctl.sym_y, True) else None
        prof = analytics.volume_profile(ticks["price"], ticks["qty"], bins=30, is_buyer_maker=side)
        with c6:
            live_chart(charts.volume_profile_figure(prof, ctl.sym_y, rev), key="profile_chart")


def cointegration_panel(table: pd.DataFrame | None, ctl: Controls) -> None:
    """The formation-window Engle-Granger diagnostic in full, and the Kalman calibration check."""
    if not st.button("Cointegration test and calibration details", key="adf_button"):
        return
    if table is None or len(table) < analytics.MIN_DIAGNOSTIC_BARS:
        st.warning(f"Not enough data yet: the test needs {analytics.MIN_DIAGNOSTIC_BARS} bars.")
        return
    d = analytics.pair_diagnostics(table["price_y"], table["price_x"], ctl.params)
    rows = {
        "bars in the formation window": f"{d.n_bars:,}",
        "window": f"{d.start:%Y-%m-%d %H:%M} → {d.end:%Y-%m-%d %H:%M} UTC" if d.start is not None else "—",
        f"hedge β ({d.price_space} prices)": f"{d.beta:.6g}",
        "α": f"{d.alpha:.6g}",
        "Engle-Granger statistic": f"{d.eg_statistic:.3f}",
        "Engle-Granger p-value": f"{d.eg_pvalue:.4f}",
        "critical value 5 %": f"{d.eg_critical_5:.3f}",
        "ADF p of the residual (Dickey-Fuller values: reference only)": f"{d.adf_pvalue:.4f}",
        "half-life": f"{d.half_life_bars:,.1f} bars ({fmt_half_life(d)})" if math.isfinite(d.half_life_bars) else fmt_half_life(d),
        "Hurst exponent of the residual": f"{d.hurst:.3f}",
        "residual std": f"{d.residual_std:.6g}",
    }
    c1, c2 = st.columns(2)
    c1.markdown("**Engle-Granger on the formation window** (hedge fixed once; MacKinnon cointegration critical values)")
    c1.table(pd.DataFrame({"value": list(rows.values())}, index=list(rows)))
    if ctl.params.method == "Kalman":
        z = table["zscore"].dropna().iloc[-ctl.params.formation_bars :]
        q, p = analytics.ljung_box(z, lags=10)
        fit = table.attrs.get("kalman", {})
        cal = {
            "δ in force": f"{fit['delta']:.3g}" if fit else "—",
            "Ve in force": f"{fit['obs_var']:.3g}" if fit else "—",
            "source": "maximum likelihood, refitted every formation/8 bars" if ctl.params.kalman_fitted else "fixed by you",
            "E[z²] (≈ 1 when calibrated)": f"{float((z**2).mean()):.3f}" if len(z) else "—",
            "share of bars with |z| > 2 (≈ 5 % if Gaussian)": f"{float((z.abs() > 2).mean()) * 100:.1f} %" if len(z) else "—",
            "Ljung-Box p, 10 lags (small = innovations autocorrelated)": f"{p:.3g}" if math.isfinite(p) else "—",
        }
        c2.markdown(f"**Kalman calibration check** (last {len(z):,} z values)")
        c2.table(pd.DataFrame({"value": list(cal.values())}, index=list(cal)))
    (st.success if d.cointegrated else st.info)(d.describe())


def _open_pair(rows: list[dict]) -> None:
    """Watchlist click (a callback: runs before the sidebar's widgets exist, so it may set them)."""
    sel = st.session_state.get("watchlist", {}).get("selection", {}).get("rows", [])
    if sel and sel[0] < len(rows):
        st.session_state["sym_y"], st.session_state["sym_x"] = rows[sel[0]]["y"], rows[sel[0]]["x"]
        st.session_state["_opened_pair"] = f"{rows[sel[0]]['y']} / {rows[sel[0]]['x']}"


def watchlist(rt: Runtime, ctl: Controls) -> None:
    """Every pair of the symbols in view: current z, β, EG q, half-life, last bar — click a row to open it."""
    scan = pair_scanner(rt.store, ctl.symbols, ctl.timeframe, ctl.params)
    if scan.empty:
        st.info("The watchlist needs at least two symbols with bars.")
        return
    rows = []
    for r in scan.itertuples(index=False):
        z = beta = np.nan
        last = None
        try:
            pf = pair_frame(rt.store, r.y, r.x, ctl.timeframe, ctl.params, now_ms=rt.now_ms())
            if pf.rows >= 3:
                t = compute_table(pf, ctl.params)
                z, beta, last = float(t["zscore"].iloc[-1]), float(t["beta"].iloc[-1]), t.index[-1]
        except ValueError:
            pass
        rows.append({"y": r.y, "x": r.x, "z": z, "β": beta, "EG q (BY)": r.qvalue, "EG p": r.pvalue,
                     "half-life (bars)": r.half_life_bars, "bars": r.n_bars, "last bar (UTC)": last})
    df = pd.DataFrame(rows)
    st.dataframe(df, width="stretch", hide_index=True, key="watchlist", on_select=lambda: _open_pair(rows),
                 selection_mode="single-row", column_config={
                     "z": st.column_config.NumberColumn(format="%+.2f"), "β": st.column_config.NumberColumn(format="%.4f"),
                     "EG q (BY)": st.column_config.NumberColumn(format="%.4f", help="False-discovery-rate adjusted (Benjamini-Yekutieli); < 0.05 = worth a look"),
                     "EG p": st.column_config.NumberColumn(format="%.4f"), "half-life (bars)": st.column_config.NumberColumn(format="%.1f"),
                     "bars": st.column_config.NumberColumn(format="%d"),
                     "last bar (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})
    if st.session_state.pop("_opened_pair", None):
        st.session_state["_viewing_note"] = f"Now viewing {st.session_state['sym_y']} / {st.session_state['sym_x']} — see the Live pair tab."
        st.rerun()  # the whole page (sidebar included) follows the new pair
    st.caption(st.session_state.pop("_viewing_note", "Click a row to view that pair."))


def multi_asset(rt: Runtime, ctl: Controls) -> None:
    st.markdown(f"**Watchlist** — every pair of the symbols in view ({ctl.timeframe})")
    watchlist(rt, ctl)
    rets = returns_matrix(rt.store, ctl.symbols, ctl.timeframe, ctl.params.window)
    c1, c2 = st.columns([1, 1])
    if rets.shape[1] >= 2 and len(rets) >= 3:
        with c1:  # persistent chart: the scan refreshes every 15 s, st.plotly_chart would remount (flash) each time
            live_chart(charts.heatmap_figure(rets.corr(), f"heat-{ctl.timeframe}"), key="heatmap")
    else:
        c1.info("Correlation heatmap: needs at least two symbols with overlapping bars.")
    c2.markdown("**Per-symbol statistics** (last window)")
    c2.dataframe(symbol_stats(rt.store, ctl.symbols, ctl.timeframe, ctl.params.window), width="stretch", column_config={
        "last price": _N(format="%.6g"), "return over the window (%)": _N(format="%+.3f"), "volatility (annualised, %)": _N(format="%.1f"),
        "volume (base units)": _N(format="localized"), "quote volume (USDT)": _N(format="localized"), "trades per s": _N(format="%.1f"),
        "bars": _N(format="localized")})
    st.markdown("**Pair scanner** — Engle-Granger in both directions on the formation window; q = Benjamini-Yekutieli "
                "false-discovery-rate adjusted p over all pairs scanned (flag pairs with q < 0.05, not p < 0.05)")
    scan = pair_scanner(rt.store, ctl.symbols, ctl.timeframe, ctl.params)
    st.dataframe(scan, width="stretch", hide_index=True, column_config=SCAN_COLUMN_CONFIG)


SCAN_COLUMN_CONFIG = {
    "y": st.column_config.TextColumn("Y"),
    "x": st.column_config.TextColumn("X"),
    "pvalue": st.column_config.NumberColumn("EG p (worse direction)", format="%.4f"),
    "qvalue": st.column_config.NumberColumn("q (BY FDR)", format="%.4f"),
    "half_life_bars": st.column_config.NumberColumn("half-life (bars)", format="%.1f"),
    "beta": st.column_config.NumberColumn("β", format="%.4f"),
    "n_bars": st.column_config.NumberColumn("bars", format="%d"),
    "pvalue_y_on_x": st.column_config.NumberColumn("p, Y on X", format="%.4f"),
    "pvalue_x_on_y": st.column_config.NumberColumn("p, X on Y", format="%.4f"),
}


_N = st.column_config.NumberColumn
_T = st.column_config.DatetimeColumn
TRADE_COLUMN_CONFIG = {
    "entry_time": _T("entry (UTC)", format="YYYY-MM-DD HH:mm:ss"), "exit_time": _T("exit (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "side": "side", "beta": _N("β (frozen)", format="%.4f"), "qty_y": _N("qty Y (base)", format="%.6g"),
    "qty_x": _N("qty X (base)", format="%.6g"), "entry_price_y": _N("entry Y", format="%.6g"), "entry_price_x": _N("entry X", format="%.6g"),
    "exit_price_y": _N("exit Y", format="%.6g"), "exit_price_x": _N("exit X", format="%.6g"), "entry_z": _N("z at entry", format="%+.2f"),
    "exit_z": _N("z at exit", format="%+.2f"), "gross_pnl": _N("gross PnL (quote)", format="%.2f"), "fees": _N("fees (quote)", format="%.2f"),
    "pnl": _N("net PnL (quote)", format="%.2f"), "return_pct": _N("return (% of notional)", format="%.3f"),
    "holding_bars": _N("held (bars)", format="%d"), "holding_time": None, "holding_s": _N("held (s)", format="%.0f"),
    "exit_reason": "exit reason",
}


def _fmt_money(v: object) -> str:
    return f"{v:,.2f}" if isinstance(v, float) and math.isfinite(v) else "—"


def _request_backtest() -> None:
    st.session_state["_backtest_requested"] = True


def backtest_tab(table: pd.DataFrame | None, ctl: Controls, funding_source=None) -> None:
    """Run on click; the result (and its two exports) stays until the next run.

    ``funding_source(symbol, start_ms, end_ms)``: the symbol's real funding events (rate per interval on a
    UTC index), e.g. Binance ``/fapi/v1/fundingRate``; None hides the funding option."""
    c1, c2, c3, c4, c5 = st.columns(5)
    entry = c1.number_input("entry |z|", 0.1, 10.0, float(ctl.params.entry), 0.1, key="bt_entry")
    exit_ = c2.number_input("exit z", -5.0, 5.0, float(ctl.params.exit), 0.1, key="bt_exit")
    fee = c3.number_input("fee (bps per leg per fill)", 0.0, 100.0, 4.0, 0.5, key="bt_fee")
    notional = c4.number_input("notional (quote)", 10.0, 1e9, 10_000.0, 1000.0, key="bt_notional")
    stop = c5.number_input("stop |z| (0 = off)", 0.0, 20.0, 0.0, 0.5, key="bt_stop")
    k1, k2, k3 = st.columns(3)
    half_spread = k1.number_input("slippage: half-spread (bps per fill, 0 = none)", 0.0, 100.0, 0.0, 0.5, key="bt_slip")
    with_funding = k2.checkbox("charge funding (Binance funding history)", value=funding_source is not None, key="bt_funding",
                               disabled=funding_source is None,
                               help="Each open leg pays or receives qty × price × rate at every real funding time of its symbol.")
    k3.caption("Fee tiers (bps, maker/taker): " + ", ".join(f"{k} {m:g}/{t:g}" for k, (m, t) in list(analytics.FEE_TIERS.items())[:4]) + " …")
    bounds = f"β > {ctl.params.beta_min:g}" if ctl.params.beta_max >= 1e5 else f"{ctl.params.beta_min:g} < β < {ctl.params.beta_max:g}"
    st.caption(f"Exits and stops judged {EXIT_LABELS[ctl.params.exit_on]}; entries only when {bounds}; decisions at bar t "
               f"fill at bar t+1; β in {ctl.params.price_space} prices, as in the table.")
    # The click only records the request (a callback, run before the script): a run preempted by another
    # rerun before it reaches this point still backtests on the next one, and what the run had to say
    # stays on screen until the next click instead of vanishing with the next rerun.
    st.button("Run backtest", key="bt_run", on_click=_request_backtest)
    if st.session_state.get("_backtest_requested"):
        notes: list[tuple[str, str]] = []
        if table is None or table["zscore"].notna().sum() < 2:
            notes.append(("info", "Not enough data yet: the backtest needs the pair's z-score. Try again once it shows."))
        else:
            try:
                with st.spinner("running backtest…"):
                    costs = analytics.CostModel(fee_bps=fee, slippage="half_spread" if half_spread > 0 else "none", half_spread_bps=half_spread)
                    fund = {}
                    if with_funding and funding_source is not None and isinstance(table.index, pd.DatetimeIndex):
                        lo, hi = int(table.index[0].value // 1_000_000), int(table.index[-1].value // 1_000_000)
                        for leg, sym in (("funding_y", ctl.sym_y), ("funding_x", ctl.sym_x)):
                            try:
                                fund[leg] = funding_source(sym, lo, hi)
                            except Exception as exc:  # the exchange is unreachable: say so, run without it
                                notes.append(("warning", f"Funding history of {sym} unavailable ({type(exc).__name__}: "
                                                         f"{str(exc)[:120]}); this run charges no funding for it."))
                    res = analytics.backtest(table, entry=entry, exit=exit_, stop=stop if stop > 0 else None, costs=costs,
                                             notional=notional, bar_seconds=BAR_SECONDS[ctl.timeframe], **fund)
                st.session_state["_backtest"] = {"result": res, "index": table.index, "pair": ctl.pair_label, "tf": ctl.timeframe,
                                                 "at": pd.Timestamp.now(tz="UTC")}
            except ValueError as exc:
                notes.append(("error", f"Backtest rejected: {exc}"))
        st.session_state["_backtest_notes"] = notes
        del st.session_state["_backtest_requested"]
    for kind, text in st.session_state.get("_backtest_notes", []):
        {"info": st.info, "warning": st.warning, "error": st.error}[kind](text)
    shown = st.session_state.get("_backtest")
    if shown is None:
        st.caption("Runs on the current pair's table as of the click; the result stays here until you run again.")
        return
    res, index = shown["result"], shown["index"]
    s = res.summary
    st.caption(f"Result of the run at {shown['at']:%H:%M:%S} UTC: {shown['pair']} {shown['tf']}, {len(index):,} bars, "
               f"{index[0]:%Y-%m-%d %H:%M:%S} → {index[-1]:%Y-%m-%d %H:%M:%S} UTC. Run again for newer data.")
    cols = st.columns(6)
    cols[0].metric("Net PnL", _fmt_money(s["total_pnl"]), help="Gross PnL of the legs minus fees, slippage and funding (quote currency).")
    cols[1].metric("Gross PnL", _fmt_money(s["gross_pnl"]))
    cols[2].metric("Fees", _fmt_money(s["total_fees"]))
    cols[3].metric("Slippage", _fmt_money(s.get("total_slippage", 0.0)))
    cols[4].metric("Funding", _fmt_money(s.get("total_funding", 0.0)), help="Paid (+) or received (−) at the legs' real funding times.")
    cols[5].metric("Trades", f"{s['trades']:.0f}", help=f"{s['exits']:.0f} exits, {s['stops']:.0f} stops")
    cols = st.columns(4)
    sharpe = s["sharpe"]
    if math.isfinite(sharpe):
        cols[0].metric("Sharpe (annualised)", f"{sharpe:.2f}", help=str(s["sharpe_basis"]))
        cols[0].caption(f"95 % CI {s['sharpe_ci_low']:.2f} … {s['sharpe_ci_high']:.2f}")
    else:
        per = s["sharpe_per_period"]
        cols[0].metric("Sharpe per bar (not annualised)", f"{per:.4f}" if math.isfinite(per) else "—", help=str(s["sharpe_basis"]))
        lo, hi = s["sharpe_per_period_ci"]
        cols[0].caption(f"95 % CI {lo:.4f} … {hi:.4f}; under a day of data is never annualised" if math.isfinite(per)
                        else str(s["sharpe_basis"]))
    cols[1].metric("Hit rate", f"{s['hit_rate'] * 100:.0f} %" if math.isfinite(s["hit_rate"]) else "—")
    cols[2].metric("Max drawdown", _fmt_money(s["max_drawdown"]))
    cols[3].metric("Exposure", f"{s['exposure'] * 100:.0f} %")
    hold = s["avg_holding_s"]
    st.caption(
        f"Per trade: average return {s['avg_trade_return_pct']:.3f} % of notional, average holding "
        f"{s['avg_holding_bars']:,.0f} bars ({_duration(hold) if math.isfinite(hold) else '—'}); turnover "
        + (f"{s['turnover_per_year']:,.0f}× notional per year" if math.isfinite(s["turnover_per_year"]) else f"{s['turnover']:,.1f}× notional (under a day: not annualised)")
        if s["trades"] else "No trade in this sample."
    )
    st.plotly_chart(charts.equity_figure(res.equity, f"bt-{shown['pair']}"), key="equity_chart")
    st.dataframe(res.trades, width="stretch", hide_index=True, column_config=TRADE_COLUMN_CONFIG)
    d1, d2 = st.columns(2)
    d1.download_button("Download trades CSV", to_csv(res.trades.set_index("entry_time"), "entry_time"),
                       export_name("backtest_trades", shown["pair"], shown["tf"], index), "text/csv", key="dl_bt_trades", on_click="ignore")
    d2.download_button("Download equity CSV", to_csv(res.equity), export_name("backtest_equity", shown["pair"], shown["tf"], index),
                       "text/csv", key="dl_bt_equity", on_click="ignore")


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
