"""Spread, z-score, correlation, price and volume statistics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics import (
    log_returns,
    mean,
    realized_volatility,
    rolling_correlation,
    rolling_volatility,
    simple_returns,
    spread,
    taker_imbalance,
    variance,
    volume_profile,
    volume_zscore,
    vwap,
    zscore,
)


def test_spread_uses_previous_bar_hedge():
    y = pd.Series([10.0, 11.0, 12.0, 13.0])
    x = pd.Series([1.0, 2.0, 3.0, 4.0])
    hedge = pd.DataFrame({"alpha": [0.0, 1.0, 2.0, 3.0], "beta": [1.0, 2.0, 3.0, 4.0]})
    out = spread(y, x, hedge, lag=1)
    assert math.isnan(out.iloc[0])
    assert out.iloc[1] == 11.0 - (1.0 * 2.0 + 0.0)
    assert out.iloc[3] == 13.0 - (3.0 * 4.0 + 2.0)
    in_sample = spread(y, x, hedge, lag=0)
    assert in_sample.name == "spread_in_sample"
    assert in_sample.iloc[3] == 13.0 - (4.0 * 4.0 + 3.0)


def test_zscore_uses_only_previous_window():
    rng = np.random.default_rng(0)
    s = pd.Series(rng.normal(size=200))
    z = zscore(s, 20)
    for t in (20, 57, 199):
        prev = s.iloc[t - 20 : t]
        assert z.iloc[t] == pytest.approx((s.iloc[t] - prev.mean()) / prev.std(ddof=1), rel=1e-12)
    assert z.iloc[:20].isna().all()
    z0 = zscore(s, 20, lag=0)
    cur = s.iloc[180:200]
    assert z0.iloc[199] == pytest.approx((s.iloc[199] - cur.mean()) / cur.std(ddof=1), rel=1e-12)
    partial = zscore(s, 20, min_periods=5)
    assert partial.iloc[:5].isna().all() and partial.iloc[5:].notna().all()


def test_zscore_of_constant_series_is_nan_not_inf():
    z = zscore(pd.Series(np.full(50, 3.0)), 10)
    assert z.isna().all()
    with pytest.raises(ValueError):
        zscore(pd.Series(np.ones(5)), 1)


def test_rolling_correlation_on_returns_and_levels():
    rng = np.random.default_rng(1)
    a = pd.Series(100 + np.cumsum(rng.normal(size=300)))
    b = pd.Series(50 + np.cumsum(rng.normal(size=300)))
    c = rolling_correlation(a, b, 30)
    ra, rb = a.pct_change().iloc[-30:], b.pct_change().iloc[-30:]
    assert c.iloc[-1] == pytest.approx(np.corrcoef(ra, rb)[0, 1], rel=1e-9)
    assert c.name == "corr_returns"
    lv = rolling_correlation(a, b, 30, on="levels")
    assert lv.name == "corr_levels"
    assert lv.iloc[-1] == pytest.approx(np.corrcoef(a.iloc[-30:], b.iloc[-30:])[0, 1], rel=1e-9)


def test_price_statistics():
    p = pd.Series([100.0, 101.0, 99.0, 102.0])
    assert simple_returns(p).iloc[1] == pytest.approx(0.01)
    assert log_returns(p).iloc[2] == pytest.approx(math.log(99 / 101))
    assert mean(p) == pytest.approx(100.5)
    assert variance(p) == pytest.approx(np.var(p.to_numpy(), ddof=1))
    r = np.diff(np.log(p.to_numpy()))
    assert realized_volatility(p, 60) == pytest.approx(r.std(ddof=1) * math.sqrt(525_600))
    assert rolling_volatility(p, 2, 60).iloc[-1] == pytest.approx(r[-2:].std(ddof=1) * math.sqrt(525_600))
    with pytest.raises(ValueError):
        log_returns([1.0, 0.0])
    assert math.isnan(mean([]))


def test_volatility_counts_elapsed_time_not_bars():
    """True 80 % volatility sampled on half-filled seconds: a return across a missing second
    carries two seconds of variance. Counted as one bar each, it showed 113 %."""
    rng = np.random.default_rng(9)
    n = 400_000
    sigma = 0.8 / math.sqrt(365 * 86400)
    full = 100 * np.exp(np.cumsum(rng.normal(0, sigma, n)))
    idx = pd.date_range("2025-01-01", periods=n, freq="1s")
    keep = np.sort(rng.choice(n, n // 2, replace=False))
    half = pd.Series(full[keep], index=idx[keep])
    assert realized_volatility(half) == pytest.approx(0.8, rel=0.01)
    naive = np.diff(np.log(half.to_numpy())).std(ddof=1) * math.sqrt(365 * 86400)
    assert naive == pytest.approx(0.8 * math.sqrt(2), rel=0.02)  # the old answer, for contrast
    assert rolling_volatility(half, 50_000).iloc[-1] == pytest.approx(0.8, rel=0.02)
    with pytest.raises(ValueError, match="bar_seconds"):
        realized_volatility([100.0, 101.0, 102.0])


def test_volume_metrics():
    assert vwap([10.0, 20.0], [1.0, 3.0]) == pytest.approx(17.5)
    assert math.isnan(vwap([10.0], [0.0]))
    imb = taker_imbalance(pd.Series([3.0, 0.0]), pd.Series([1.0, 0.0]))
    assert imb.iloc[0] == pytest.approx(0.5) and math.isnan(imb.iloc[1])
    v = pd.Series([1.0] * 10 + [1.5, 10.0])
    vz = volume_zscore(v, 5)
    prev = v.iloc[-6:-1]
    assert vz.iloc[-1] == pytest.approx((10.0 - prev.mean()) / prev.std(ddof=1), rel=1e-12)
    assert math.isnan(vz.iloc[8])  # a flat previous window has no spread: NaN, not inf
    prof = volume_profile([1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], bins=2, is_buyer_maker=[True, False, False, True])
    assert prof["volume"].sum() == pytest.approx(10.0)
    assert prof["buy_volume"].sum() == pytest.approx(5.0) and prof["sell_volume"].sum() == pytest.approx(5.0)
    assert list(prof["volume"]) == [3.0, 7.0]
