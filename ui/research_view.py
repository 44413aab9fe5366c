"""Research tab: universe scan, Johansen basket, OU-optimal bands, hedge stability, walk-forward.

Everything runs on the view's bar source — the recorded bars in memory (exchange klines plus
bars built from the recorded trades), a replay, or an uploaded dataset — on a click, and the
result stays on screen, with its CSV, until the next run. A click only records the request (a
callback, run before the script): the work happens on the next run that reaches the panel, so
a rerun that pre-empts the click's own run (a live fragment, a second click) loses nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

import analytics
from analytics import CostModel
from analytics.ou import round_trip_cost
from pairs import BarSource, PairView, Timeframe, closes_matrix, ffill_bars, fmt_duration, pair_frame, to_csv
from ui import charts
from ui.controls import Controls
from ui.multi_view import scan_table

__all__ = ["research_tab"]


def _numbers(text: str, kind=float) -> list:
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if part:
            out.append(kind(float(part)) if kind is int else kind(part))
    return out


def _tf(source: BarSource, ctl: Controls) -> Timeframe:
    return source.effective(ctl.timeframe).bars


def _request(key: str) -> None:
    st.session_state[key] = True


def _requested(key: str) -> bool:
    """Whether the button behind ``key`` was clicked since the last run that handled it (and mark it handled)."""
    return bool(st.session_state.pop(key, False))


def _download(label: str, frame: pd.DataFrame, name: str, key: str, index_label: str = "timestamp") -> None:
    st.download_button(label, to_csv(frame, index_label=index_label), file_name=name, mime="text/csv", key=key)


def universe_scan(source: BarSource, ctl: Controls) -> None:
    st.markdown("**Universe scan** — every pair of the symbols in view: Engle-Granger both directions, Benjamini-Yekutieli "
                "q-values, a liquidity filter (quote volume over the window) and a stability filter (cointegrated in both "
                "halves of the formation window). Each pair is tested on its own last formation bars.")
    c1, c2, c3 = st.columns(3)
    formation = c1.number_input("formation bars", 100, 50_000, min(2000, ctl.params.formation_bars), 100, key="rs_form")
    min_qv = c2.number_input("min quote volume (USDT, over the window)", 0.0, 1e12, 0.0, 1e6, key="rs_minqv")
    q_level = c3.number_input("q level", 0.001, 0.5, 0.05, 0.01, key="rs_q", format="%.3f")
    st.button("Scan the universe", key="rs_run", on_click=_request, args=("_rs_requested",))
    if _requested("_rs_requested"):
        tf = _tf(source, ctl)
        closes = closes_matrix(source, ctl.symbols, tf, ffill_limit=ffill_bars(tf, ctl.params))
        if closes.shape[1] < 2:
            st.session_state["_rs_scan"] = "The scan needs bars of at least two symbols."
        else:
            qv = pd.Series({s: float(source.bars(s, tf)["quote_volume"].iloc[-int(formation):].sum()) for s in closes.columns})
            try:
                with st.spinner("scanning…"):
                    scan = analytics.scan_universe(closes, int(formation), ctl.params.log_prices, quote_volume=qv,
                                                   min_quote_volume=float(min_qv), q_level=float(q_level))
                st.session_state["_rs_scan"] = (scan, pd.Timestamp.now(tz="UTC"))
            except ValueError as exc:
                st.session_state["_rs_scan"] = f"Scan not possible: {exc}"
    shown = st.session_state.get("_rs_scan")
    if isinstance(shown, str):
        st.warning(shown)
    elif shown is not None:
        scan, at = shown
        st.caption(f"Scanned at {at:%H:%M:%S} UTC: {len(scan):,} pairs, {int(scan['flagged'].sum())} flagged (q below the level "
                   "and stable in both halves).")
        scan_table(scan, key="rs_table")
        _download("Download scan (CSV)", scan, f"alphastream_universe_scan_{at:%Y%m%dT%H%M%SZ}.csv", "rs_dl", index_label="row")


def _fit_basket(source: BarSource, ctl: Controls, legs: list[str], z_window: int, entry: float, fee: float):
    """Johansen on the first two thirds of the common bars, traded on the rest; or a message saying why not."""
    if len(legs) < 3:
        return "Choose at least three legs (a pair is the pair tab)."
    closes = closes_matrix(source, tuple(legs), _tf(source, ctl)).dropna()
    if len(closes) < 300:
        return f"The basket needs at least 300 common bars; there are {len(closes):,}."
    try:
        logp = np.log(closes)
        cut = int(len(logp) * 2 / 3)
        fit = analytics.johansen(logp.iloc[:cut])
        table = analytics.basket_table(logp, fit.weights, z_window)
        res = analytics.backtest_basket(table, entry=entry, costs=CostModel(fee_bps=fee), start=logp.index[cut])
    except ValueError as exc:
        return f"Basket not possible: {exc}"
    return fit, table, res, logp.index[cut]


def basket(source: BarSource, ctl: Controls) -> None:
    st.markdown("**Basket (Johansen)** — three or more legs: trace and max-eigenvalue tests (constant restricted to the "
                "relation: driftless prices), the first cointegrating vector as weights, fitted on the first two thirds "
                "of the common bars and traded on the last third only.")
    choices = list(ctl.symbols)
    legs = st.multiselect("legs", choices, default=choices[:3], key="rb_legs")
    c1, c2, c3 = st.columns(3)
    z_window = c1.number_input("z window (bars)", 10, 5000, 240, 10, key="rb_zw")
    entry = c2.number_input("entry |z|", 0.5, 10.0, 2.0, 0.1, key="rb_entry")
    fee = c3.number_input("fee (bps per leg per fill)", 0.0, 100.0, 4.0, 0.5, key="rb_fee")
    st.button("Fit and backtest the basket", key="rb_run", on_click=_request, args=("_rb_requested",))
    if _requested("_rb_requested"):
        with st.spinner("fitting…"):
            st.session_state["_rb"] = _fit_basket(source, ctl, legs, int(z_window), float(entry), float(fee))
    shown = st.session_state.get("_rb")
    if isinstance(shown, str):  # why the last click could not fit a basket: stays until the next click
        st.info(shown)
        return
    if shown is None:
        return
    fit, table, res, start = shown
    tests = pd.DataFrame({"null rank ≤": range(len(fit.trace)), "trace": fit.trace, "trace 95 % crit": fit.trace_crit[:, 1],
                          "max-eig": fit.max_eig, "max-eig 95 % crit": fit.max_eig_crit[:, 1]})
    c1, c2 = st.columns([2, 1])
    c1.dataframe(tests, hide_index=True, width="stretch")
    c2.dataframe(fit.weights.to_frame(), width="stretch")
    c2.caption(f"rank (trace, 95 %): {fit.rank()} · {fit.nobs:,} formation bars up to {start:%Y-%m-%d %H:%M} UTC")
    s = res.summary
    st.caption(f"Out-of-sample from {start:%Y-%m-%d %H:%M} UTC: {int(s.get('trades', 0))} trades, net PnL {s.get('total_pnl', math.nan):,.2f} "
               f"(gross {s.get('gross_pnl', math.nan):,.2f}, fees {s.get('total_fees', math.nan):,.2f}).")
    st.plotly_chart(charts.series_figure({"basket z": table["zscore"]}, "Basket z-score (weights from the formation part)", "basket"),
                    key="rb_chart")
    _download("Download basket trades (CSV)", res.trades, "alphastream_basket_trades.csv", "rb_dl", index_label="row")


def ou_and_stability(view: PairView | None, ctl: Controls) -> None:
    st.markdown("**OU model and optimal bands · hedge stability** — on the formation window of the pair in view, with the "
                "hedge fixed by OLS over that window.")
    table = view.table if view is not None else None
    if table is None or len(table) < 200:
        st.info("Needs at least 200 bars of the pair in view.")
        return
    window = table.iloc[-ctl.params.formation_bars:]
    y, x = window["price_y"].astype(float), window["price_x"].astype(float)
    if ctl.params.log_prices:
        y, x = np.log(y), np.log(x)
    diag = view.diag if view is not None else None
    if diag is not None and diag.cointegrated:
        fee = st.number_input("fee for the bands (bps per leg per fill)", 0.0, 100.0, 4.0, 0.5, key="ro_fee")
        fit = analytics.ols(y, x)
        spread = y - (fit.beta * x + fit.alpha)
        ou = analytics.fit_ou(spread)
        cost = round_trip_cost(float(fee), fit.beta, ctl.params.log_prices, float(window["price_y"].iloc[-1]), float(window["price_x"].iloc[-1]))
        c = st.columns(5)
        c[0].metric("θ (per hour)", f"{ou.theta * 3600:.3f}" if ou.mean_reverting else "not mean-reverting")
        c[1].metric("half-life", fmt_duration(ou.half_life_s))
        c[2].metric("σ stationary", f"{ou.sigma_stationary:.5f}" if ou.mean_reverting else "—")
        if ou.mean_reverting and cost > 0:
            bands = analytics.bertram_bands(ou, cost)
            c[3].metric("optimal entry (Bertram)", f"±{bands.entry_z:.2f} σ" if math.isfinite(bands.entry_z) else "—")
            c[4].metric("expected cycle", fmt_duration(bands.expected_cycle_s))
            st.caption(f"Bertram: enter at μ ∓ {bands.distance:.5f}, exit at μ ± {bands.distance:.5f} (symmetric bands), "
                       f"round-trip cost {cost:.5f} spread units; your bands: entry ±{ctl.params.entry:g} z, exit {ctl.params.exit:g} z. "
                       "Assumes the spread is an OU process with the fitted θ, μ, σ (exact AR(1) mapping).")
    else:
        why = diag.describe() if diag is not None else "the formation window has too few bars"
        st.info(f"No OU fit and no optimal bands: they assume a mean-reverting spread, and the formation-window test "
                f"finds no evidence of one — {why}")
    cus = analytics.cusum_test(y, x)
    st.caption(f"Hedge stability (CUSUM of recursive residuals, long-run scaled, {len(window):,} bars): {cus.describe()}")
    if len(cus.cusum):
        fig = charts.cusum_figure(cus.cusum, cus.bound, f"cusum-{ctl.pair_label}")
        st.plotly_chart(fig, key="ro_cusum")


def walk_forward(source: BarSource, ctl: Controls) -> None:
    st.markdown("**Walk-forward** — parameters chosen on each formation window only, PnL on the following trading "
                "window only; deflated Sharpe for the number of configurations tried.")
    tf = _tf(source, ctl)
    frame = pair_frame(source, ctl.sym_y, ctl.sym_x, tf, ctl.params).frame
    frame = frame[frame["closed"].astype(bool)][["close_y", "close_x"]].dropna()
    # defaults that fit the bars in memory: about five folds, a formation window four trading windows long
    form_default = int(min(2000, max(200, len(frame) * 4 // 9 // 100 * 100)))
    c = st.columns(6)
    formation = c[0].number_input("formation bars", 200, 50_000, form_default, 100, key="wf_form")
    trading = c[1].number_input("trading bars", 50, 50_000, max(50, form_default // 4), 50, key="wf_trade")
    windows = c[2].text_input("hedge windows", "60, 120, 240", key="wf_windows")
    entries = c[3].text_input("entries |z|", "1.5, 2, 2.5", key="wf_entries")
    exits = c[4].text_input("exits z", "0, 0.5", key="wf_exits")
    fee = c[5].number_input("fee (bps)", 0.0, 100.0, 4.0, 0.5, key="wf_fee")
    st.caption(f"{len(frame):,} closed {tf} bars of {ctl.pair_label} with both legs.")
    st.button("Run walk-forward", key="wf_run", on_click=_request, args=("_wf_requested",))
    if _requested("_wf_requested"):
        bar = st.progress(0.0, text="walk-forward: starting")
        try:
            grid = analytics.parameter_grid(ctl.params, windows=_numbers(windows, int), entries=_numbers(entries), exits=_numbers(exits))
            res = analytics.walk_forward(frame["close_y"], frame["close_x"], grid, int(formation), int(trading),
                                         costs=CostModel(fee_bps=float(fee)),
                                         progress=lambda d, t: bar.progress(d / t, text=f"walk-forward: {d:,} of {t:,} backtests"))
            st.session_state["_wf"] = (res, ctl.pair_label, tf)
        except ValueError as exc:
            st.session_state["_wf"] = f"Walk-forward not possible: {exc}"
        finally:
            bar.empty()
    shown = st.session_state.get("_wf")
    if isinstance(shown, str):
        st.warning(shown)
        return
    if shown is None:
        st.caption(f"Runs on the closed {tf} bars of {ctl.pair_label}; the result stays here until you run again.")
        return
    res, pair, tf = shown
    s = res.summary
    m = st.columns(5)
    m[0].metric("OOS net PnL", f"{s['oos_pnl']:,.2f}")
    m[1].metric("OOS Sharpe", f"{s['sharpe']:.2f}" if math.isfinite(s["sharpe"]) else f"{s['sharpe_per_bar']:.4f}/bar",
                help=str(s["sharpe_basis"]))
    m[2].metric("deflated Sharpe (prob.)", f"{s['deflated_sharpe']:.2f}" if math.isfinite(s["deflated_sharpe"]) else "—",
                help="Probability that the true Sharpe beats the best of this many zero-skill configurations")
    m[3].metric("folds · configs", f"{s['folds']} · {s['configs']}")
    m[4].metric("parameter changes", f"{s['parameter_changes']}")
    st.caption(f"{pair} {tf}: {s['oos_bars']:,} out-of-sample bars, {s['oos_trades']} trades; the best single configuration "
               f"in hindsight earned {s['best_fixed_config_pnl']:,.2f} (not knowable in advance).")
    eq = res.equity["equity"]
    st.plotly_chart(charts.equity_figure(pd.DataFrame({"equity": eq, "drawdown": eq - eq.cummax()}), f"wf-{pair}"), key="wf_equity")
    st.dataframe(res.folds, hide_index=True, width="stretch")
    _download("Download folds (CSV)", res.folds, f"alphastream_walkforward_folds_{pair}_{tf}.csv", "wf_dl_f", index_label="row")
    _download("Download OOS equity (CSV)", res.equity, f"alphastream_walkforward_equity_{pair}_{tf}.csv", "wf_dl_e")


def research_tab(source: BarSource, ctl: Controls, view: PairView | None) -> None:
    """The tab's four panels, each independent (one failing says so and leaves the others)."""
    for panel in (lambda: universe_scan(source, ctl), lambda: basket(source, ctl), lambda: ou_and_stability(view, ctl),
                  lambda: walk_forward(source, ctl)):
        try:
            panel()
        except (ValueError, np.linalg.LinAlgError) as exc:
            st.warning(f"This panel cannot be computed on the current data: {exc}")
        st.divider()
