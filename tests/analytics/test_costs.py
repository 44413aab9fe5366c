"""Real costs: fee tiers, slippage models and funding, checked by hand (funding over the real funding files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import PairParams, backtest, pair_analytics
from analytics.costs import FEE_TIERS, CostModel, funding_by_bar
from tests.recordings import funding_history, multi_bars


def _table(data_dir, bars: int = 6000, **kw):
    closes = multi_bars(data_dir).dropna()[["ETHUSDT", "BTCUSDT"]].iloc[:bars]
    return pair_analytics(closes["ETHUSDT"], closes["BTCUSDT"], PairParams(window=120, entry=1.5, **kw)), closes


def test_fee_tiers_and_validation():
    assert FEE_TIERS["VIP0"] == (2.0, 5.0)
    assert CostModel.tier("VIP0").fee_bps == 5.0 and CostModel.tier("VIP3", taker=False).fee_bps == 1.2
    with pytest.raises(ValueError, match="unknown fee tier"):
        CostModel.tier("VIP99")
    with pytest.raises(ValueError, match="slippage"):
        CostModel(slippage="magic").validate()


def test_funding_is_charged_at_each_real_event_a_position_is_open_through(data_dir):
    """By hand: for every trade and every real funding event between its fill and its exit,
    leg quantity × that leg's price at the last bar closed by then × the rate."""
    table, _ = _table(data_dir, 20_000)
    fy, fx = funding_history(data_dir, "ETHUSDT"), funding_history(data_dir, "BTCUSDT")
    plain = backtest(table, fee_bps=0)
    res = backtest(table, fee_bps=0, funding_y=fy, funding_x=fx)
    t = res.trades
    assert len(t) >= 10 and (t["funding"] != 0).sum() >= 3
    closes_at = table.index + pd.Timedelta(minutes=1)  # 1-minute bars: a bar closes one minute after it opens
    expected = []
    for tr in t.itertuples():
        i0, i1 = table.index.get_loc(tr.entry_time), table.index.get_loc(tr.exit_time)
        paid = 0.0
        for series, qty, col in ((fy, tr.qty_y, "price_y"), (fx, tr.qty_x, "price_x")):
            for tau, rate in series.items():
                j = int(np.searchsorted(closes_at, tau, side="right")) - 1  # the last bar closed by tau
                if i0 <= j < i1:  # the position is open after bar j (filled at i0, closed at i1)
                    paid += qty * table[col].iloc[j] * rate
        expected.append(paid)
    assert np.allclose(t["funding"].to_numpy(), expected, rtol=0, atol=1e-9)
    assert res.summary["total_funding"] == pytest.approx(sum(expected), abs=1e-9)
    # funding changes only the cash: same trades, net = gross - funding
    assert np.array_equal(t["entry_time"], plain.trades["entry_time"])
    assert np.allclose(t["pnl"], plain.trades["pnl"] - t["funding"], atol=1e-9)
    assert res.equity["equity"].iloc[-1] == pytest.approx(t["pnl"].sum(), abs=1e-8)
    # ETH and BTC fund every 8 h here: about three events a day
    days = (table.index[-1] - table.index[0]).total_seconds() / 86400
    events = funding_by_bar(table.index, 60_000, fy)
    assert (events != 0).sum() == pytest.approx(3 * days, abs=2)


def test_slippage_models_by_hand(data_dir):
    table, closes = _table(data_dir)
    base = backtest(table, fee_bps=0)
    half = backtest(table, costs=CostModel(fee_bps=0, slippage="half_spread", half_spread_bps=1.5))
    t0, t1 = base.trades, half.trades
    traded = (np.abs(t0.qty_y) * (t0.entry_price_y + t0.exit_price_y) + np.abs(t0.qty_x) * (t0.entry_price_x + t0.exit_price_x))
    assert np.allclose(t1["slippage"], traded * 1.5e-4, atol=1e-9)
    assert np.allclose(t1["pnl"], t0["pnl"] - t1["slippage"], atol=1e-9)
    vol = multi_bars(data_dir, "volume").dropna()[["ETHUSDT", "BTCUSDT"]].iloc[: len(table)]
    part = backtest(table, costs=CostModel(fee_bps=0, slippage="participation", impact_bps=20),
                    volume_y=vol["ETHUSDT"], volume_x=vol["BTCUSDT"])
    tr = part.trades.iloc[0]
    i0, i1 = table.index.get_loc(tr.entry_time), table.index.get_loc(tr.exit_time)
    cost = 0.0
    for i, py, px in ((i0, tr.entry_price_y, tr.entry_price_x), (i1, tr.exit_price_y, tr.exit_price_x)):
        for q, p, v in ((tr.qty_y, py, vol["ETHUSDT"].iloc[i]), (tr.qty_x, px, vol["BTCUSDT"].iloc[i])):
            value = abs(q) * p
            cost += value * 20e-4 * np.sqrt(value / (v * p))
    assert tr.slippage == pytest.approx(cost, rel=1e-12)
    s = part.summary
    assert s["total_pnl"] == pytest.approx(s["gross_pnl"] - s["total_fees"] - s["total_slippage"] - s["total_funding"], abs=1e-8)
