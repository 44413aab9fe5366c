"""Minute stats tab: one row per minute (prices, returns, volatility, hedge, z, volume) with units, a chart and its CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import analytics
from pairs import BarSource, Timeframe, export_name, fmt_price, to_csv
from ui import charts
from ui.controls import Controls
from ui.tables import styled

__all__ = ["minute_stats_tab"]

TABLE_MINUTES = 2000  # rows a person scrolls through; the export has them all


def minute_stats_tab(source: BarSource | None, table: pd.DataFrame | None, ctl: Controls, timeframe: Timeframe) -> None:
    """``timeframe``: the one the table was built on (a 5m table has no minutes to roll up)."""
    if timeframe is Timeframe.M5:
        st.info("Minute stats roll a tick, 1s or 1m table up to minutes: choose one of those timeframes.")
        return
    if table is None:
        st.info("Minute stats need the pair's table: it appears with the first z-score.")
        return
    vol = {}
    if source is not None:
        for leg, sym in (("y", ctl.sym_y), ("x", ctl.sym_x)):
            bars = source.bars(sym, source.effective(Timeframe.M1))
            vol[leg] = bars["volume"] if len(bars) else None
    ms = analytics.minute_stats(table, vol.get("y"), vol.get("x"))
    y, x = ctl.sym_y, ctl.sym_x
    spread_unit = "log points" if ctl.params.log_prices else f"{y} quote units"
    shown = ms.copy()
    for leg in ("y", "x"):
        for col in (f"return_{leg}", f"volatility_{leg}"):
            shown[col] = shown[col] * 100.0
    names = {
        "price_y": f"{y} close", "return_y": f"{y} return (%)", "price_x": f"{x} close", "return_x": f"{x} return (%)",
        "beta": f"β (rolling, {ctl.params.method})", "spread": f"spread ({spread_unit})", "zscore": "z-score",
        "correlation": "corr of returns", "volatility_y": f"{y} volatility (annualised %, last 30 min)",
        "volatility_x": f"{x} volatility (annualised %, last 30 min)", "volume_y": f"{y} volume (base units)",
        "volume_x": f"{x} volume (base units)",
    }
    shown = shown.rename(columns=names)
    shown.index = shown.index.map(lambda t: f"{t:%Y-%m-%d %H:%M}")
    shown.index.name = "minute (UTC)"
    fmt = {names["price_y"]: fmt_price, names["price_x"]: fmt_price, names["return_y"]: "{:+.3f}", names["return_x"]: "{:+.3f}",
           names["beta"]: "{:.4f}", names["spread"]: "{:.5f}", names["zscore"]: "{:+.2f}", names["correlation"]: "{:.3f}",
           names["volatility_y"]: "{:.1f}", names["volatility_x"]: "{:.1f}", names["volume_y"]: "{:,.3f}", names["volume_x"]: "{:,.3f}"}
    st.caption(f"{len(ms):,} minutes of {y}/{x}; returns since the previous minute present, volatility from log returns "
               "scaled by their elapsed time (a missing minute is not one minute of return).")
    vols = {f"{y} volatility": ms["volatility_y"] * 100.0, f"{x} volatility": ms["volatility_x"] * 100.0}
    st.plotly_chart(charts.series_figure(vols, "Volatility per minute (annualised %, trailing 30 minutes)", f"ms-{ctl.pair_label}",
                                         height=260, yaxis={"title": {"text": "% a year"}}), key="ms_chart")
    newest = shown.iloc[::-1].head(TABLE_MINUTES)
    if len(shown) > TABLE_MINUTES:
        st.caption(f"The table shows the newest {TABLE_MINUTES:,} of {len(shown):,} minutes; the CSV holds every one.")
    st.dataframe(styled(newest, fmt), width="stretch", height=360)
    st.download_button("Download minute stats CSV", to_csv(ms, "minute"), export_name("minute_stats", ctl.pair_label, timeframe, ms.index),
                       "text/csv", key="dl_minute")
