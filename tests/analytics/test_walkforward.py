"""Walk-forward: no trading-window bar in any choice (look-ahead property), the deflated Sharpe under the
null and the alternative (Monte Carlo), and a run on real bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.costs import CostModel
from analytics.pair import PairParams
from analytics.walkforward import GRID_FIELDS, deflated_sharpe, parameter_grid, walk_forward
from tests.recordings import multi_bars


def _cointegrated(n: int, seed: int) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2025-01-01", periods=n, freq="1min", tz="UTC")
    x = 8.0 + np.cumsum(rng.normal(0, 0.002, n))
    u = np.zeros(n)
    for t in range(1, n):
        u[t] = 0.93 * u[t - 1] + rng.normal(0, 0.0015)
    return pd.Series(np.exp(0.5 + 0.9 * x + u), idx), pd.Series(np.exp(x), idx)


def test_no_trading_window_bar_enters_a_choice():
    """Replace every bar from T on by another market: the folds that end by T are unchanged, and the
    fold whose trading window starts at T still chooses the same parameters (its formation ends before T)."""
    y, x = _cointegrated(3300, 1)
    grid = parameter_grid(PairParams(formation_bars=300), windows=(40, 80), entries=(1.5, 2.0), exits=(0.0, 0.5))
    kw = {"formation_bars": 600, "trading_bars": 300, "costs": CostModel(fee_bps=1.0)}
    base = walk_forward(y, x, grid, **kw)
    cut = 1500  # fold 2 trades [1200, 1500); fold 3 forms on [900, 1500) and trades from 1500
    other_y, other_x = _cointegrated(3300, 99)
    y2 = pd.concat([y.iloc[:cut], other_y.iloc[cut:] * (y.iloc[cut - 1] / other_y.iloc[cut])])
    x2 = pd.concat([x.iloc[:cut], other_x.iloc[cut:] * (x.iloc[cut - 1] / other_x.iloc[cut])])
    moved = walk_forward(y2, x2, grid, **kw)
    assert len(base.folds) == len(moved.folds) == 9
    fields = list(GRID_FIELDS) + ["formation_sharpe"]
    pd.testing.assert_frame_equal(base.folds.iloc[:4][fields], moved.folds.iloc[:4][fields])
    pd.testing.assert_series_equal(base.folds["oos_pnl"].iloc[:3], moved.folds["oos_pnl"].iloc[:3])
    before = base.equity.index < y.index[cut]
    assert np.array_equal(base.equity["equity"].to_numpy()[before], moved.equity["equity"].to_numpy()[before])
    assert not base.folds["oos_pnl"].iloc[3:].equals(moved.folds["oos_pnl"].iloc[3:])  # the test can see a change
    # every trade lies inside its fold's trading window, entered after that window's first bar
    for _, tr in base.trades.iterrows():
        f = base.folds.iloc[int(tr["fold"])]
        assert f["trading_start"] < tr["entry_time"] <= tr["exit_time"] <= f["trading_end"]


def test_deflated_sharpe_under_the_null_and_the_alternative_monte_carlo():
    """40 zero-skill strategies, the best picked: its plain PSR(0) says "skill" most of the time, the
    deflated Sharpe about 5 % of the time (its size). With real skill the DSR sees it."""
    rng = np.random.default_rng(7)
    reps, n_bars, n_cfg = 300, 2000, 40
    psr_hits = dsr_hits = alt_hits = 0
    for _ in range(reps):
        r = rng.normal(0, 1e-3, (n_bars, n_cfg))
        sr = r.mean(0) / r.std(0, ddof=1)
        best = int(np.argmax(sr))
        d = deflated_sharpe(r[:, best], n_cfg, float(np.var(sr, ddof=1)))
        psr_hits += d["psr0"] > 0.95
        dsr_hits += d["dsr"] > 0.95
        r[:, 0] += 1.2e-4  # one configuration with a true per-bar Sharpe of 0.12
        sr = r.mean(0) / r.std(0, ddof=1)
        best = int(np.argmax(sr))
        alt_hits += deflated_sharpe(r[:, best], n_cfg, float(np.var(sr, ddof=1)))["dsr"] > 0.95
    assert psr_hits / reps > 0.5, psr_hits
    assert dsr_hits / reps <= 0.10, dsr_hits
    assert alt_hits / reps >= 0.8, alt_hits


def test_parameter_grid_keeps_valid_combinations_only():
    g = parameter_grid(PairParams(), windows=(50, 100), entries=(0.5, 2.0), exits=(0.0, 0.5))
    assert len(g) == 6 and all(p.exit < p.entry for p in g)
    k = parameter_grid(PairParams(method="Kalman"), entries=(2.0,), exits=(0.0,), kalman=((1e-5, 1e-4), (1e-6, 1e-4)))
    assert [p.kalman_delta for p in k] == [1e-5, 1e-6]
    with pytest.raises(ValueError, match="empty"):
        parameter_grid(PairParams(), entries=(0.5,), exits=(1.0,))


def test_walk_forward_on_real_bars_reports_out_of_sample_only(data_dir):
    bars = multi_bars(data_dir).dropna()[["ETHUSDT", "BTCUSDT"]].iloc[:12_000]
    grid = parameter_grid(PairParams(formation_bars=2000), windows=(60, 240), entries=(2.0, 2.5), exits=(0.0,))
    seen = []
    res = walk_forward(bars["ETHUSDT"], bars["BTCUSDT"], grid, 4000, 2000, costs=CostModel(fee_bps=4.0),
                       progress=lambda done, total: seen.append((done, total)))
    assert len(res.folds) == 4 and seen[-1] == (4 * 4 * 2, 4 * 4 * 2)
    assert res.equity.index[0] == bars.index[4000] and res.equity.index[-1] == bars.index[-1]
    assert res.summary["oos_pnl"] == pytest.approx(res.folds["oos_pnl"].sum())
    assert res.summary["oos_bars"] == 8000 and res.summary["configs"] == 4
    assert 0.0 <= res.summary["deflated_sharpe"] <= res.summary["psr_vs_zero"] + 1e-12 <= 1.0 + 1e-12
