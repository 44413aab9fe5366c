"""Backtest tab: run on click on the pair's table as of the click; the result and its two exports stay until the next run."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import streamlit as st

import analytics
from ingest.rest import BackfillError
from pairs import export_name, fmt_duration, to_csv
from ui import charts
from ui.controls import EXIT_LABELS, Controls

__all__ = ["backtest_tab"]

FundingSource = Callable[[str, int, int], pd.Series]


def _fmt_money(v: object) -> str:
    return f"{v:,.2f}" if isinstance(v, float) and math.isfinite(v) else "—"


_N = st.column_config.NumberColumn
_T = st.column_config.DatetimeColumn
TRADE_ORDER = ["entry_time", "exit_time", "side", "pnl", "return_pct", "exit_reason", "holding_s", "entry_z", "exit_z", "gross_pnl",
               "fees", "slippage", "funding", "beta", "qty_y", "qty_x", "entry_price_y", "entry_price_x", "exit_price_y",
               "exit_price_x", "holding_bars"]
TRADE_COLUMN_CONFIG = {
    "entry_time": _T("entry (UTC)", format="YYYY-MM-DD HH:mm:ss"), "exit_time": _T("exit (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "side": "side", "beta": _N("β (frozen)", format="%.4f"), "qty_y": _N("qty Y (base)", format="%.6g"),
    "qty_x": _N("qty X (base)", format="%.6g"), "entry_price_y": _N("entry Y", format="%.6g"), "entry_price_x": _N("entry X", format="%.6g"),
    "exit_price_y": _N("exit Y", format="%.6g"), "exit_price_x": _N("exit X", format="%.6g"), "entry_z": _N("z at entry", format="%+.2f"),
    "exit_z": _N("z at exit", format="%+.2f"), "gross_pnl": _N("gross PnL (quote)", format="%.2f"), "fees": _N("fees (quote)", format="%.2f"),
    "pnl": _N("net PnL (quote)", format="%.2f"), "return_pct": _N("return (% of notional)", format="%.3f"),
    "holding_bars": _N("held (bars)", format="%d"), "holding_time": None, "holding_s": _N("held (s)", format="%,.0f"),
    "slippage": _N("slippage (quote)", format="%.2f"), "funding": _N("funding (quote)", format="%.2f"),
    "exit_reason": "exit reason",
}


def _request_backtest() -> None:
    st.session_state["_backtest_requested"] = True


def backtest_tab(table: pd.DataFrame | None, ctl: Controls, funding_source: FundingSource | None = None) -> None:
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
                            except BackfillError as exc:  # the exchange is unreachable: say what it means, run without it
                                notes.append(("warning", f"No funding charged for {sym}: its funding history could not be "
                                                         f"fetched ({exc.plain()}). Net PnL of this run leaves {sym}'s funding out."))
                            except (ValueError, OSError):  # a malformed answer
                                notes.append(("warning", f"No funding charged for {sym}: Binance's funding history answer could "
                                                         f"not be read. Net PnL of this run leaves {sym}'s funding out."))
                    res = analytics.backtest(table, entry=entry, exit=exit_, stop=stop if stop > 0 else None, costs=costs,
                                             notional=notional, bar_seconds=ctl.timeframe.bar_seconds, **fund)
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
        f"{s['avg_holding_bars']:,.0f} bars ({fmt_duration(hold) if math.isfinite(hold) else '—'}); turnover "
        + (f"{s['turnover_per_year']:,.0f}× notional per year" if math.isfinite(s["turnover_per_year"]) else f"{s['turnover']:,.1f}× notional (under a day: not annualised)")
        if s["trades"] else "No trade in this sample."
    )
    st.plotly_chart(charts.equity_figure(res.equity, f"bt-{shown['pair']}"), key="equity_chart")
    st.dataframe(res.trades, width="stretch", hide_index=True, column_config=TRADE_COLUMN_CONFIG,
                 column_order=[c for c in TRADE_ORDER if c in res.trades.columns])
    d1, d2 = st.columns(2)
    d1.download_button("Download trades CSV", to_csv(res.trades.set_index("entry_time"), "entry_time"),
                       export_name("backtest_trades", shown["pair"], shown["tf"], index), "text/csv", key="dl_bt_trades", on_click="ignore")
    d2.download_button("Download equity CSV", to_csv(res.equity), export_name("backtest_equity", shown["pair"], shown["tf"], index),
                       "text/csv", key="dl_bt_equity", on_click="ignore")
