"""ADF / Engle-Granger against statsmodels; half-life and Hurst on known processes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.tsa.stattools import adfuller, coint

from analytics import adf, engle_granger, half_life, hurst


def _adfuller(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adfuller(x, **kw)


def _series(minute_bars):
    btc, eth = minute_bars
    c_btc, c_eth = btc["close"].to_numpy(), eth["close"].to_numpy()
    rng = np.random.default_rng(5)
    ar = np.zeros(3000)
    for t in range(1, 3000):
        ar[t] = 0.97 * ar[t - 1] + rng.normal()
    return {
        "btc_raw_2k": c_btc[:2000],
        "eth_log_10k": np.log(c_eth[:10_000]),
        "spread_5k": c_eth[:5000] - 0.035 * c_btc[:5000],
        "ar1": ar,
    }


@pytest.mark.parametrize("regression", ["c", "n"])
@pytest.mark.parametrize("autolag", ["AIC", "BIC", "t-stat", None])
def test_adf_identical_to_adfuller(minute_bars, regression, autolag):
    for name, x in _series(minute_bars).items():
        ref = _adfuller(x, regression=regression, autolag=autolag)
        ours = adf(x, regression=regression, autolag=autolag)
        assert ours.lags == ref[2], name
        assert ours.nobs == ref[3], name
        assert abs(ours.statistic - ref[0]) <= 1e-10 * max(1.0, abs(ref[0])), name
        assert ours.pvalue == pytest.approx(ref[1], abs=1e-10), name
        assert ours.critical_values == pytest.approx(ref[4], rel=1e-12), name


def test_adf_with_trend_matches_a_well_conditioned_reference(minute_bars):
    """With a trend column, adfuller's pinv loses ~1e-9 at large n (measured at 50k);
    the statistic is checked against a scaled, centred lstsq fit instead (12k bars keep
    the same lag search, at a fraction of adfuller's run time)."""
    x = np.log(minute_bars[1]["close"].to_numpy()[:12_000])
    ref = _adfuller(x, regression="ct", autolag="AIC")
    ours = adf(x, regression="ct", autolag="AIC")
    assert ours.lags == ref[2]
    assert ours.statistic == pytest.approx(ref[0], rel=1e-8)
    lags = ours.lags
    dx = np.diff(x)
    m = len(dx) - lags
    t = np.arange(1.0, m + 1)
    cols = [np.ones(m), (t - t.mean()) / t.std()]
    cols += [dx[lags - k : lags - k + m] for k in range(1, lags + 1)]
    level = x[lags : lags + m]
    cols.append((level - level.mean()) / level.std())
    design = np.column_stack(cols)
    fit = sm.OLS(dx[lags:], design).fit()
    assert ours.statistic == pytest.approx(fit.tvalues[-1], rel=1e-10)


def test_adf_rejects_bad_input():
    with pytest.raises(ValueError, match="constant"):
        adf(np.ones(100))
    with pytest.raises(ValueError, match="NaN"):
        adf([1.0, np.nan, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="at least 4"):
        adf([1.0, 2.0])
    with pytest.raises(ValueError, match="maxlag"):
        adf(np.random.default_rng(0).normal(size=50), maxlag=40)


def test_engle_granger_matches_coint(minute_bars):
    btc, eth = minute_bars
    for n in (500, 3000, 8000):
        y, x = np.log(eth["close"].to_numpy()[:n]), np.log(btc["close"].to_numpy()[:n])
        ref = coint(y, x)
        ours = engle_granger(y, x)
        assert abs(ours.statistic - ref[0]) <= 1e-9 * abs(ref[0])
        assert ours.pvalue == pytest.approx(ref[1], abs=1e-9)
        assert [ours.critical_values[k] for k in ("1%", "5%", "10%")] == pytest.approx(list(ref[2]), rel=1e-12)
        ols = sm.OLS(y, sm.add_constant(x)).fit()
        assert ours.beta == pytest.approx(ols.params[1], rel=1e-9)
        assert ours.alpha == pytest.approx(ols.params[0], rel=1e-9)


def test_engle_granger_uses_cointegration_not_df_critical_values():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(size=1000))
    y = 0.5 * x + rng.normal(size=1000)
    res = engle_granger(y, x)
    df_5 = adf(res.residuals, regression="c").critical_values["5%"]
    assert res.critical_values["5%"] < df_5 - 0.4  # about -3.34 vs -2.86
    assert res.pvalue < 0.01 and res.reject("5%")


def test_engle_granger_size_on_independent_random_walks():
    rng = np.random.default_rng(20261124)
    pairs, n = 600, 400
    rejections = 0
    for _ in range(pairs):
        x = np.cumsum(rng.normal(size=n))
        y = np.cumsum(rng.normal(size=n))
        rejections += engle_granger(y, x).pvalue < 0.05
    rate = rejections / pairs
    assert 0.03 <= rate <= 0.07, rate


def test_half_life_exact_formula_and_known_ar1():
    rng = np.random.default_rng(2)
    phi = 0.95
    s = np.zeros(20_000)
    for t in range(1, len(s)):
        s[t] = phi * s[t - 1] + rng.normal()
    hl = half_life(s)
    lam = sm.OLS(np.diff(s), sm.add_constant(s[:-1])).fit().params[1]
    assert hl == pytest.approx(-math.log(2) / math.log(1 + lam), rel=1e-10)
    assert hl == pytest.approx(-math.log(2) / math.log(phi), rel=0.1)
    # a deterministic trend: Δs is constant, so λ = 0 exactly -> no mean reversion
    assert half_life(np.cumsum(np.ones(50))) == math.inf
    # an explosive AR(1): λ > 0 -> no mean reversion either
    boom = np.zeros(200)
    for t in range(1, 200):
        boom[t] = 1.02 * boom[t - 1] + rng.normal()
    assert half_life(boom) == math.inf
    # an oscillating one (1 + λ < 0): no half-life
    osc = np.array([(-1.0) ** t * (1 + 0.01 * t) for t in range(200)])
    assert math.isnan(half_life(osc))
    assert math.isnan(half_life([1.0, 1.0, 1.0]))
    assert math.isnan(half_life([1.0]))


def test_hurst_separates_regimes():
    rng = np.random.default_rng(4)
    walks = [hurst(np.cumsum(rng.normal(size=5000))) for _ in range(20)]
    noises = [hurst(rng.normal(size=5000)) for _ in range(20)]
    ar = np.zeros(5000)
    for t in range(1, 5000):
        ar[t] = 0.9 * ar[t - 1] + rng.normal()
    assert abs(np.median(walks) - 0.5) < 0.03 and max(abs(h - 0.5) for h in walks) < 0.1  # random walk: H = 0.5
    assert max(abs(h) for h in noises) < 0.05  # white noise: the lagged differences do not grow at all
    assert 0.05 < hurst(ar) < 0.35  # mean-reverting: in between
    assert math.isnan(hurst([1.0, 2.0, 3.0]))
