"""Baskets: Johansen against statsmodels, rank under null/alternative (Monte Carlo), a real basket backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from analytics.baskets import backtest_basket, basket_table, johansen
from analytics.costs import CostModel
from tests.recordings import multi_bars


@pytest.mark.parametrize(("det_order", "k_ar_diff"), [(0, 1), (0, 3), (-1, 1), (1, 2)])
def test_johansen_equals_statsmodels_on_real_bars(data_dir, det_order, k_ar_diff):
    logp = np.log(multi_bars(data_dir).dropna()[["BTCUSDT", "ETHUSDT", "SOLUSDT", "LTCUSDT"]].iloc[-3000:])
    ours = johansen(logp, det_order, k_ar_diff)
    ref = coint_johansen(logp.to_numpy(), det_order, k_ar_diff)
    # without demeaning (det_order -1) the moment matrices of log levels (~11) are ill-conditioned: statsmodels'
    # non-symmetric eig and our symmetric-definite solver then agree to ~1e-6 only
    tol = 1e-5 if det_order == -1 else 1e-8
    assert np.allclose(ours.eigenvalues, ref.eig, rtol=tol, atol=1e-12)
    assert np.allclose(ours.trace, ref.lr1, rtol=tol) and np.allclose(ours.max_eig, ref.lr2, rtol=tol)
    assert np.array_equal(ours.trace_crit, ref.cvt) and np.array_equal(ours.max_eig_crit, ref.cvm)
    for i in range(4):  # the same vectors up to sign (each is defined up to sign)
        a, b = ours.vectors.iloc[:, i].to_numpy(), ref.evec[:, i]
        assert np.allclose(a, b, rtol=1e3 * tol, atol=1e-6) or np.allclose(a, -b, rtol=1e3 * tol, atol=1e-6)


def test_johansen_rank_under_the_null_and_the_alternative_monte_carlo():
    """Three independent random walks: rank 0 about 95 % of the time; two cointegrating relations among
    three legs (one common trend): rank 2 about 95 % of the time (both relations found every time; the
    last test, "is the common trend stationary too", wrongly rejects at its 5 % size)."""
    rng = np.random.default_rng(2)
    n, reps = 1500, 200
    null_rank0 = alt_rank2 = 0
    for _ in range(reps):
        walks = np.cumsum(rng.normal(0, 0.01, (n, 3)), axis=0)
        null_rank0 += johansen(pd.DataFrame(walks, columns=list("abc"))).rank() == 0
        trend = np.cumsum(rng.normal(0, 0.01, n))
        legs = np.column_stack([trend, 0.7 * trend + rng.normal(0, 0.003, n), 1.3 * trend + rng.normal(0, 0.003, n)])
        alt_rank2 += johansen(pd.DataFrame(legs, columns=list("abc"))).rank() == 2
    assert 0.90 <= null_rank0 / reps <= 0.99, null_rank0
    assert 0.90 <= alt_rank2 / reps <= 0.99, alt_rank2


def test_a_real_basket_fitted_before_it_trades(data_dir):
    closes = multi_bars(data_dir).dropna()[["ETHUSDT", "BTCUSDT", "SOLUSDT"]]
    logp = np.log(closes.iloc[:12_000])
    formation, trading_start = logp.iloc[:4000], logp.index[4000]
    fit = johansen(formation)
    w = fit.weights
    assert w.iloc[0] == 1.0 and list(w.index) == ["ETHUSDT", "BTCUSDT", "SOLUSDT"]
    table = basket_table(logp, w, z_window=240)
    spread = (logp * w).sum(axis=1)
    assert np.allclose(table["spread"], spread)
    res = backtest_basket(table, entry=2.0, exit=0.0, costs=CostModel(fee_bps=5.0), start=trading_start)
    t = res.trades
    assert len(t) >= 3 and (t["entry_time"] > trading_start).all()  # fills after the decision, in the trading window
    legs = sum(t[f"qty_{s}"] * (t[f"exit_price_{s}"] - t[f"entry_price_{s}"]) for s in w.index)
    assert np.allclose(t["gross_pnl"], legs, atol=1e-9)
    assert np.allclose(np.abs(t["qty_ETHUSDT"] * t["entry_price_ETHUSDT"]), 10_000.0)
    ratio = (t["qty_BTCUSDT"] * t["entry_price_BTCUSDT"]) / (t["qty_ETHUSDT"] * t["entry_price_ETHUSDT"])
    assert np.allclose(ratio, w["BTCUSDT"])  # leg values in the ratio of the weights
    assert res.equity["equity"].iloc[-1] == pytest.approx(t["pnl"].sum(), abs=1e-8)
    assert res.summary["legs"] == 3.0
    # the summary is of the trading window: its bars and its elapsed time, not the flat formation bars
    assert res.equity.index[0] == trading_start and res.summary["bars"] == (table.index >= trading_start).sum()
    assert res.summary["elapsed_days"] == pytest.approx((table.index[-1] - trading_start) / pd.Timedelta(days=1), rel=1e-3)
