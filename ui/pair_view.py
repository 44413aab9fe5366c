"""The pair tab: tiles and notes of a :class:`pairs.PairView`, the z-score chart and the slower pair charts.

Everything shown comes from :func:`pairs.pair_view` (the same computation the
push channel, the read API and uploaded history use); this module only lays it out.
"""

from __future__ import annotations

import html
import math
from dataclasses import replace

import pandas as pd
import streamlit as st

import analytics
from pairs import BarSource, PairView, Timeframe, fmt_duration, pair_view
from ui import charts
from ui.controls import Controls
from ui.live_chart import live_chart
from ui.text import md_text

__all__ = ["charts_panel", "cointegration_panel", "fallback_panel", "render_notes", "render_tiles", "session_view"]

TONES = {"red": "#ff4b4b", "orange": "#ffa421", "green": "#21c354", "gray": "#a3a8b8"}


def session_view(source: BarSource, ctl: Controls, stale_after_s: float, key: str = "_view_cache") -> PairView:
    """The pair's view for this session (table and diagnostic cached in the session until a bar closes)."""
    cache = st.session_state.setdefault(key, {})
    return pair_view(source, ctl.sym_y, ctl.sym_x, ctl.timeframe, ctl.params, stale_after_s, cache)


def render_notes(view: PairView) -> None:
    for n in view.notes:
        {"info": st.info, "warning": st.warning, "error": st.error}[n.level](md_text(n.text, 1000))


def render_tiles(view: PairView, keys: tuple[str, ...] | None = None, per_row: int = 5) -> None:
    """The view's tiles, ``per_row`` to a row; the z-score in its colour."""
    tiles = [t for t in view.tiles if keys is None or t.key in keys]
    for i in range(0, len(tiles), per_row):
        for col, t in zip(st.columns(per_row), tiles[i:i + per_row], strict=False):
            if t.tone in TONES:  # a coloured value, in a metric's own size (every text escaped: shown as text)
                col.markdown(f'<div data-testid="stMetricLabel" title="{html.escape(t.help)}" style="font-size:0.875rem">'
                             f'{html.escape(t.label)}</div><div data-testid="stMetricValue" style="font-size:1.45rem;'
                             f'color:{TONES[t.tone]}">{html.escape(t.value)}</div>', unsafe_allow_html=True)
            else:
                col.metric(t.label, t.value, help=t.help or None)


def newest_caption(view: PairView) -> str:
    """``Newest tick on screen: … (age …) — last ids …`` (the browser tests read it)."""
    from pairs import fmt_age

    ids = " · ".join(f"{s} #{t.agg_id}" for s, t in view.last.items() if t is not None and t.agg_id is not None)
    if not view.newest_ms:
        return "Newest tick on screen: none yet"
    return (f"Newest tick on screen: {pd.Timestamp(view.newest_ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S.%f} UTC "
            f"(age {fmt_age(view.age_s)}) — last ids {ids}")


def seeded_caption(seeded: dict, ctl: Controls) -> None:
    """Where the history of a 1m/5m live view comes from (exchange klines fetched at start)."""
    got = [seeded.get((s, ctl.timeframe.value)) for s in (ctl.sym_y, ctl.sym_x)]
    if ctl.timeframe.closed_only and all(got):
        upto = min(b[1] for b in got)
        st.caption(f"{ctl.timeframe} bars up to {upto:%Y-%m-%d %H:%M} UTC are exchange klines (Binance REST, fetched at start); "
                   "later bars are built from the recorded trades.")


def z_chart(view: PairView, ctl: Controls, max_points: int, key: str = "z_chart") -> None:
    """The z-score chart, or — while there is no z yet — a line saying so (never an empty axis)."""
    table = view.table
    if table is None or not table["zscore"].notna().any():
        st.caption("The z-score chart appears with the first z-score.")
        return
    shown = charts.decimate(table, max_points)
    if len(shown) < len(table):
        st.caption(f"Charts show the latest {len(shown):,} of {len(table):,} rows; computations use all of them.")
    note = f" — data {view.tile('age').value} old" if view.stale else ""
    live_chart(charts.zscore_figure(shown, ctl.params.entry, ctl.params.exit, f"{ctl.pair_label}-{view.timeframe}", note=note),
               key=key, priority=1)


def fallback_panel(view: PairView, ctl: Controls, max_points: int, seeded: dict) -> None:
    """What the pushed panel shows, drawn by a rerun (a replay, push disabled, or a socket that cannot open)."""
    st.caption(newest_caption(view))
    render_notes(view)
    seeded_caption(seeded, ctl)
    render_tiles(view)
    z_chart(view, ctl, max_points)


def charts_panel(source: BarSource, view: PairView, ctl: Controls, max_points: int) -> None:
    """Slower charts: spread, prices, β, correlation, volume and volume profile (from the view's table)."""
    table = view.table
    if table is None or table.empty:
        return
    shown = charts.decimate(charts.with_spread_band(table, ctl.params.window), max_points)
    if len(shown) < len(table):
        st.caption(f"Charts show the latest {len(shown):,} of {len(table):,} rows; computations use all of them.")
    rev = f"{ctl.pair_label}-{view.timeframe}"
    c1, c2 = st.columns(2)
    with c1:
        live_chart(charts.spread_figure(shown, ctl.params.window, ctl.band_k, rev), key="spread_chart")
    with c2:
        live_chart(charts.prices_figure(shown, ctl.sym_y, ctl.sym_x, rev), key="prices_chart")
    betas = {ctl.params.method: shown["beta"]}
    if ctl.overlay_methods:
        for m in analytics.HEDGE_METHODS:
            if m != ctl.params.method:
                other = analytics.pair_analytics(table["price_y"], table["price_x"],
                                                 replace(ctl.params, method=m, kalman_delta=None, kalman_obs_var=None),
                                                 stale=table["stale"].to_numpy())
                betas[m] = other["beta"].reindex(shown.index)
    c3, c4 = st.columns(2)
    with c3:
        band = shown["beta_std"] if ctl.params.method == "Kalman" and "beta_std" in shown else None
        live_chart(charts.beta_figure(betas, rev, band=band), key="beta_chart")
    with c4:
        live_chart(charts.correlation_figure(shown, rev), key="corr_chart")
    c5, c6 = st.columns([2, 1])
    bars_y = source.bars(ctl.sym_y, view.timeframe.bars)
    bars_y = bars_y[bars_y.index >= shown.index[0]]
    if len(bars_y):
        with c5:
            live_chart(charts.volume_figure(charts.decimate(bars_y, max_points), ctl.sym_y, rev,
                                            side_known=source.side_known(ctl.sym_y)), key="volume_chart")
    prof = _volume_profile(source, ctl.sym_y, shown.index[0], view.timeframe)
    if prof is not None:
        with c6:
            live_chart(charts.volume_profile_figure(prof, ctl.sym_y, rev), key="profile_chart")


def _volume_profile(source: BarSource, symbol: str, since: pd.Timestamp, tf: Timeframe) -> pd.DataFrame | None:
    """Volume by price bucket since ``since``: from the trades in memory (live), else from the bars' typical price."""
    store = getattr(source, "store", None)
    side_known = source.side_known(symbol)
    if store is not None:
        ticks = store.buffer.snapshot(symbol, int(since.value // 1_000_000), None, ("price", "qty", "is_buyer_maker"))
        if len(ticks):
            return analytics.volume_profile(ticks["price"], ticks["qty"], bins=30, is_buyer_maker=ticks["is_buyer_maker"] if side_known else None)
        return None
    bars = source.bars(symbol, tf.bars)
    bars = bars[bars.index >= since]
    if bars.empty:
        return None
    typical = ((bars["high"] + bars["low"] + bars["close"]) / 3).to_numpy(dtype=float)
    return analytics.volume_profile(typical, bars["volume"].to_numpy(dtype=float), bins=30)


def cointegration_panel(view: PairView | None, ctl: Controls) -> None:
    """The formation-window Engle-Granger diagnostic in full, and the Kalman calibration check."""
    if not st.button("Cointegration test and calibration details", key="adf_button"):
        return
    d = view.diag if view is not None else None
    if d is None:
        st.warning(f"Not enough data yet: the test needs {analytics.MIN_DIAGNOSTIC_BARS} bars.")
        return
    hl = (f"{d.half_life_bars:,.1f} bars ({fmt_duration(d.half_life_seconds)})" if math.isfinite(d.half_life_bars)
          else "∞ (no mean reversion)" if d.half_life_bars == math.inf else "—")
    rows = {
        "bars in the formation window": f"{d.n_bars:,}",
        "window": f"{d.start:%Y-%m-%d %H:%M} → {d.end:%Y-%m-%d %H:%M} UTC" if d.start is not None else "—",
        f"hedge β ({d.price_space} prices, fixed over the window)": f"{d.beta:.6g}",
        "α": f"{d.alpha:.6g}",
        "Engle-Granger statistic": f"{d.eg_statistic:.3f}",
        "Engle-Granger p-value": f"{d.eg_pvalue:.4f}",
        "critical value 5 %": f"{d.eg_critical_5:.3f}",
        "ADF p of the residual (Dickey-Fuller values: reference only)": f"{d.adf_pvalue:.4f}",
        "half-life": hl,
        "Hurst exponent of the residual": f"{d.hurst:.3f}",
        "residual std": f"{d.residual_std:.6g}",
    }
    c1, c2 = st.columns(2)
    c1.markdown("**Engle-Granger on the formation window** (hedge fixed once; MacKinnon cointegration critical values)")
    c1.table(pd.DataFrame({"value": list(rows.values())}, index=list(rows)))
    table = view.table if view is not None else None
    if ctl.params.method == "Kalman" and table is not None:
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
