"""Backtest rules: hand-computed trades, exact PnL reconciliation, next-bar fills."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import PairParams, backtest, pair_analytics, target_positions


def _two_trade_case():
    idx = pd.date_range("2025-01-01", periods=8, freq="1min")
    y = pd.Series([10, 10, 11, 10, 9, 10, 10, 12], index=idx, dtype=float)
    x = pd.Series([5, 5, 5, 6, 5, 5, 4, 5], index=idx, dtype=float)
    z = pd.Series([0, 2.5, 1.0, -0.1, 0, -2.5, -1, 0.5], index=idx, dtype=float)
    hedge = pd.DataFrame({"alpha": 0.0, "beta": 2.0}, index=idx)
    return y, x, z, hedge


def test_hand_computed_two_trades():
    y, x, z, hedge = _two_trade_case()
    res = backtest(y, x, z, hedge, entry=2.0, exit=0.0, fee_bps=10, notional=100.0)
    t = res.trades
    assert len(t) == 2
    first, second = t.iloc[0], t.iloc[1]
    # short spread decided at bar 1 (z=2.5), filled at bar 2; exit decided at bar 3, filled at bar 4
    assert first["side"] == "short spread"
    assert first["entry_time"] == y.index[2] and first["exit_time"] == y.index[4]
    assert first["qty_y"] == pytest.approx(-100 / 11) and first["qty_x"] == pytest.approx(200 / 11)
    fee_in = 0.001 * (100 / 11 * 11 + 200 / 11 * 5)
    fee_out = 0.001 * (100 / 11 * 9 + 200 / 11 * 5)
    assert first["fees"] == pytest.approx(fee_in + fee_out)
    assert first["pnl"] == pytest.approx(-100 / 11 * (9 - 11) - fee_in - fee_out)
    assert first["exit_reason"] == "exit"
    # long spread decided at bar 5, filled at bar 6 (y=10, x=4); closed at the last bar
    assert second["side"] == "long spread"
    assert second["qty_y"] == pytest.approx(10.0) and second["qty_x"] == pytest.approx(-20.0)
    assert second["pnl"] == pytest.approx(10 * 2 - 20 * 1 - 0.18 - 0.22)
    assert second["exit_reason"] == "end of data"
    assert res.summary["total_pnl"] == pytest.approx(first["pnl"] + second["pnl"])
    assert res.summary["trades"] == 2
    assert res.summary["hit_rate"] == pytest.approx(0.5)
    assert list(res.equity["position"]) == [0, 0, -1, -1, 0, 0, 1, 0]


def test_no_trade_opens_on_the_last_bar():
    idx = pd.RangeIndex(5)
    y = pd.Series([10.0] * 5, index=idx)
    x = pd.Series([5.0] * 5, index=idx)
    hedge = pd.Series([1.0] * 5, index=idx)
    z = pd.Series([0, 0, 0, 3, 3], index=idx, dtype=float)  # fill would be on bar 4 = last
    assert backtest(y, x, z, hedge).trades.empty
    z2 = pd.Series([0, 0, 3, 0.5, 0.5], index=idx, dtype=float)  # fill on bar 3, fine
    assert len(backtest(y, x, z2, hedge).trades) == 1


def test_pnl_reconciles_exactly_on_real_bars(minute_bars):
    btc, eth = minute_bars
    table = pair_analytics(eth["close"].iloc[:6000], btc["close"].iloc[:6000], PairParams(window=120, entry=1.5))
    res = backtest(table.price_y, table.price_x, table.zscore, table, entry=1.5, fee_bps=4, price_space="log")
    t = res.trades
    assert len(t) > 10
    legs = t.qty_y * (t.exit_price_y - t.entry_price_y) + t.qty_x * (t.exit_price_x - t.entry_price_x)
    assert np.allclose(t.pnl, legs - t.fees, rtol=0, atol=1e-9)
    assert t.pnl.sum() == pytest.approx(res.equity["equity"].iloc[-1], abs=1e-8)
    # log-space hedge: equal value in y, beta times that value in x, at the fill
    assert np.allclose(np.abs(t.qty_y * t.entry_price_y), 10_000.0)
    assert np.allclose(np.abs(t.qty_x * t.entry_price_x), np.abs(t.beta) * 10_000.0)
    # fills happen one bar after the decision that triggered them
    pos = res.equity["position"].to_numpy()
    sig = table["signal"].to_numpy()
    opened = np.flatnonzero((pos[1:] != 0) & (pos[:-1] == 0)) + 1
    assert all(sig[i - 1] == pos[i] for i in opened)
    assert (t.holding_bars > 0).all()


def test_stop_and_validation():
    idx = pd.RangeIndex(6)
    y = pd.Series([10.0, 10, 10, 12, 12, 12], index=idx)
    x = pd.Series([5.0] * 6, index=idx)
    z = pd.Series([0, 2.5, 3.0, 4.5, 4.5, 4.5], index=idx)
    res = backtest(y, x, z, pd.Series([1.0] * 6, index=idx), stop=4.0, fee_bps=0)
    assert res.trades.iloc[0]["exit_reason"] == "stop"
    with pytest.raises(ValueError):
        backtest(y, x, z, pd.Series([1.0] * 6), entry=2.0, exit=2.5)
    with pytest.raises(ValueError):
        backtest(y.replace(12, 0.0), x, z, pd.Series([1.0] * 6))
    assert list(target_positions(pd.Series([0, 2.5, 1, -0.5, -3, np.nan, 0.1]))) == [0, -1, -1, 0, 1, 1, 0]
