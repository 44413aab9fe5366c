"""Multi-asset tab: the watchlist of every pair in view, the correlation heatmap, per-symbol statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pairs import BarSource, fmt_duration, fmt_price, pair_scanner, returns_matrix, symbol_stats
from pairs.universe import watch_rows
from ui import charts
from ui.controls import Controls, set_widgets_next_run
from ui.live_chart import live_chart
from ui.tables import styled

__all__ = ["multi_asset"]

_N = st.column_config.NumberColumn
WATCHLIST_ROWS = 100
SCAN_ROWS = 2000


def _open_pair(rows: list[dict]) -> None:
    """Watchlist click (a callback: runs before the sidebar's widgets exist, so it may set them)."""
    sel = st.session_state.get("watchlist", {}).get("selection", {}).get("rows", [])
    if sel and sel[0] < len(rows):
        y, x = rows[sel[0]]["y"], rows[sel[0]]["x"]
        if st.session_state.get("source") == "Uploaded history":
            set_widgets_next_run(ds_y=y, ds_x=x, tab="Dataset pair")
        else:
            set_widgets_next_run(sym_y=y, sym_x=x, tab="Live pair")
        st.session_state["_viewing_note"] = f"Now viewing {y} / {x}."


def watchlist(source: BarSource, ctl: Controls) -> None:
    """Every pair of the symbols in view: z and β now, EG q, half-life in time — click a row to open it."""
    scan = pair_scanner(source, ctl.symbols, ctl.timeframe, ctl.params)
    if scan.empty:
        st.info("The watchlist needs at least two symbols with bars.")
        return
    if len(scan) > WATCHLIST_ROWS:  # sorted by q: the pairs worth a look first
        st.caption(f"The {WATCHLIST_ROWS} pairs with the lowest q of {len(scan):,} (Research → Universe scan lists every pair).")
    df = watch_rows(source, scan.head(WATCHLIST_ROWS), ctl.timeframe, ctl.params)
    rows = df[["y", "x"]].to_dict("records")
    shown = df.assign(half_life=[fmt_duration(v) if np.isfinite(v) or v == np.inf else "—" for v in df["half_life_s"]])
    shown = shown.drop(columns=["half_life_s"])
    kalman = ctl.params.method == "Kalman"
    st.dataframe(
        styled(shown, {"z": "{:+.2f}", "beta_now": "{:.4f}", "qvalue": "{:.4f}", "pvalue": "{:.4f}", "beta_formation": "{:.4f}",
                       "n_bars": "{:,.0f}", "last_bar": lambda t: f"{t:%Y-%m-%d %H:%M:%S}" if pd.notna(t) else "—"}),
        width="stretch", hide_index=True, key="watchlist", on_select=lambda: _open_pair(rows), selection_mode="single-row",
        column_order=["y", "x", "z", "beta_now", "qvalue", "pvalue", "half_life", "beta_formation", "n_bars", "last_bar"],
        column_config={
            "y": st.column_config.TextColumn("Y"), "x": st.column_config.TextColumn("X"),
            "z": _N("z now", help="The pair's z-score on its newest closed bar"
                                  + (f" (Kalman on the last {2 * ctl.params.formation_bars:,} bars)" if kalman else "")),
            "beta_now": _N(f"β now ({ctl.params.method}, rolling)",
                           help="The hedge the z-score uses: the rolling fit of the hedge window (or the Kalman filter)."),
            "qvalue": _N("EG q (BY)", help="False-discovery-rate adjusted (Benjamini-Yekutieli); < 0.05 = worth a look"),
            "pvalue": _N("EG p (worse direction)"),
            "half_life": st.column_config.TextColumn("half-life", help="Of the formation-window residual, in time"),
            "beta_formation": _N("β (formation, fixed)",
                                 help="The static OLS hedge of the formation window that Engle-Granger tests (may differ from β now)."),
            "n_bars": _N("bars tested"),
            "last_bar": st.column_config.TextColumn("last bar (UTC)"),
        })
    st.caption(st.session_state.pop("_viewing_note", "Click a row to view that pair."))


SCAN_COLUMN_CONFIG = {
    "y": st.column_config.TextColumn("Y"),
    "x": st.column_config.TextColumn("X"),
    "pvalue": _N("EG p (worse direction)"),
    "qvalue": _N("q (BY FDR)"),
    "half_life_bars": _N("half-life (bars)"),
    "beta": _N("β (formation, fixed)"),
    "n_bars": _N("bars tested"),
    "pvalue_y_on_x": _N("p, Y on X"),
    "pvalue_x_on_y": _N("p, X on Y"),
}


def multi_asset(source: BarSource, ctl: Controls) -> None:
    tf = source.effective(ctl.timeframe)
    st.markdown(f"**Watchlist** — every pair of the symbols in view ({tf}); q = Benjamini-Yekutieli false-discovery-rate "
                "adjusted Engle-Granger p over all pairs (flag pairs with q < 0.05, not p < 0.05)")
    watchlist(source, ctl)
    rets = returns_matrix(source, ctl.symbols, ctl.timeframe, ctl.params.window)
    c1, c2 = st.columns([1, 1])
    if rets.shape[1] >= 2 and len(rets) >= 3:
        with c1:  # persistent chart: a live scan refreshes every 15 s, st.plotly_chart would remount (flash) each time
            live_chart(charts.heatmap_figure(rets.corr(), f"heat-{tf}"), key="heatmap")
    else:
        c1.info("Correlation heatmap: needs at least two symbols with overlapping bars.")
    c2.markdown(f"**Per-symbol statistics** (last {ctl.params.window} {tf} bars)")
    stats = symbol_stats(source, ctl.symbols, ctl.timeframe, ctl.params.window)
    c2.dataframe(styled(stats, {
        "last price": fmt_price, "return over the window (%)": "{:+.3f}", "volatility (annualised, %)": "{:.1f}",
        "volume (base units)": "{:,.2f}", "quote volume (USDT)": "{:,.0f}", "trades per s": "{:.1f}", "bars": "{:,.0f}"}),
        width="stretch", column_config={
            "volatility (annualised, %)": _N(help="Log returns scaled by their own elapsed time, annualised"),
            "trades per s": _N(help="— where the data carry no trade count (uploaded bars)"),
            "bars": _N("bars in memory")})
    if not source.live:
        st.caption("Uploaded bars: quote volume and trade counts are only known where the file had them.")


def scan_table(scan: pd.DataFrame, key: str | None = None) -> None:
    """A scan's rows with labelled, formatted columns (``—`` where a pair was not tested)."""
    fmt = {c: "{:.4f}" for c in ("pvalue", "qvalue", "pvalue_first_half", "pvalue_second_half", "pvalue_y_on_x", "pvalue_x_on_y", "beta")}
    fmt.update({"half_life_bars": "{:,.1f}", "n_bars": "{:,.0f}"})
    if len(scan) > SCAN_ROWS:
        st.caption(f"The first {SCAN_ROWS:,} of {len(scan):,} pairs (flagged first, then by q); the CSV holds every pair.")
    st.dataframe(styled(scan.head(SCAN_ROWS), fmt), width="stretch", hide_index=True, column_config=SCAN_COLUMN_CONFIG, key=key)
