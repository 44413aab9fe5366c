"""Hedge estimators against independent oracles (statsmodels, a reference Kalman recursion)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS

from analytics import kalman_hedge, ols, rolling_huber, rolling_ols


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    mask = np.isfinite(b)
    assert np.array_equal(np.isfinite(a), mask), "NaN pattern differs"
    return float(np.max(np.abs(a[mask] - b[mask]) / np.maximum(np.abs(b[mask]), 1e-300)))


def _exact_window_fit(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Well-conditioned per-window OLS: centre x, solve, un-centre."""
    mx = x.mean()
    res = sm.OLS(y, sm.add_constant(x - mx)).fit()
    return res.params[0] - res.params[1] * mx, res.params[1]


@pytest.mark.parametrize("log_prices", [True, False])
def test_rolling_ols_matches_exact_per_window_fits_on_real_bars(minute_bars, log_prices):
    btc, eth = minute_bars
    x, y = btc["close"].iloc[:20_000], eth["close"].iloc[:20_000]
    if log_prices:
        x, y = np.log(x), np.log(y)
    window = 120
    ours = rolling_ols(y, x, window)
    assert ours.index.equals(y.index)
    assert ours["beta"].iloc[: window - 1].isna().all()
    xv, yv = x.to_numpy(), y.to_numpy()
    for end in range(window - 1, len(yv), 7):
        a, b = _exact_window_fit(yv[end - window + 1 : end + 1], xv[end - window + 1 : end + 1])
        assert abs(ours["beta"].iloc[end] - b) <= 1e-9 * abs(b)
        assert abs(ours["alpha"].iloc[end] - a) <= 1e-9 * (abs(a) + abs(b * xv[end]))


def test_rolling_ols_agrees_with_statsmodels_rolling_ols(minute_bars):
    """RollingOLS updates X'X incrementally and drifts (up to ~1e-6 relative when
    beta is near 0, measured); we agree with it to that level and with exact
    per-window fits to 1e-9 (test above)."""
    btc, eth = minute_bars
    x, y = np.log(btc["close"].iloc[:20_000]), np.log(eth["close"].iloc[:20_000])
    window = 120
    ours = rolling_ols(y, x, window)
    ref = RollingOLS(y.to_numpy(), sm.add_constant(x.to_numpy() - x.mean()), window=window).fit()
    mask = np.isfinite(ref.params[:, 1])
    assert np.array_equal(mask, ours["beta"].notna().to_numpy())
    scale = np.abs(ref.params[mask, 1]) + 1e-2
    assert np.max(np.abs(ours["beta"].to_numpy()[mask] - ref.params[mask, 1]) / scale) <= 1e-6
    assert np.allclose(ours["r2"].to_numpy()[mask], ref.rsquared[mask], rtol=1e-6, atol=1e-9)


def test_rolling_ols_keeps_precision_over_one_million_rows():
    rng = np.random.default_rng(7)
    n, window = 1_000_000, 500
    x = 60_000 + np.cumsum(rng.normal(0, 5, n))
    y = 0.05 * x + 100 + rng.normal(0, 2, n)
    ours = rolling_ols(y, x, window)
    for end in (window - 1, 250_123, 777_777, n - 1):
        lo = end - window + 1
        a, b = _exact_window_fit(y[lo : end + 1], x[lo : end + 1])
        assert abs(ours["beta"].iloc[end] - b) / abs(b) <= 1e-9
        assert abs(ours["alpha"].iloc[end] - a) / (abs(a) + abs(b * x[end])) <= 1e-9


def test_static_ols_matches_statsmodels(minute_bars):
    btc, eth = minute_bars
    res = ols(np.log(eth["close"]), np.log(btc["close"]))
    ref = sm.OLS(np.log(eth["close"]).to_numpy(), sm.add_constant(np.log(btc["close"]).to_numpy())).fit()
    assert res.beta == pytest.approx(ref.params[1], rel=1e-9)
    assert res.alpha == pytest.approx(ref.params[0], rel=1e-9)
    assert res.r2 == pytest.approx(ref.rsquared, rel=1e-9)


def _reference_kalman(y, x, delta, ve, p0):
    """Textbook matrix-form Kalman recursion (independent of the compiled kernel)."""
    theta = np.zeros(2)
    p = np.eye(2) * p0
    vw = delta / (1 - delta) * np.eye(2)
    out = np.empty((len(y), 4))
    for t in range(len(y)):
        r = p + vw
        h = np.array([x[t], 1.0])
        e = y[t] - h @ theta
        q = h @ r @ h + ve
        k = r @ h / q
        theta = theta + k * e
        p = r - np.outer(k, h) @ r
        out[t] = (theta[0], theta[1], e, q)
    return out


@pytest.mark.parametrize("delta,ve", [(1e-4, 1e-3), (1e-5, 1e-6), (1e-3, 1e-2)])
def test_kalman_matches_reference_recursion(minute_bars, delta, ve):
    btc, eth = minute_bars
    x = np.log(btc["close"].to_numpy()[:5_000])
    y = np.log(eth["close"].to_numpy()[:5_000])
    ours = kalman_hedge(y, x, delta=delta, obs_var=ve)
    ref = _reference_kalman(y, x, delta, ve, 1.0)
    for col, k in (("beta", 0), ("alpha", 1), ("forecast_var", 3)):
        assert _rel_err(ours[col].to_numpy(), ref[:, k]) <= 1e-9, col
    err = np.abs(ours["forecast_error"].to_numpy() - ref[:, 2])
    assert np.max(err / np.sqrt(ref[:, 3])) <= 1e-9  # error measured in forecast std units
    assert np.allclose(ours["zscore"], ref[:, 2] / np.sqrt(ref[:, 3]), rtol=0, atol=1e-9)


def test_kalman_signal_uses_prior_state_not_posterior():
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(size=300)) + 100
    y = 2 * x + rng.normal(size=300)
    out = kalman_hedge(y, x, delta=1e-4, obs_var=1.0)
    # e_t = y_t - (beta_{t-1} x_t + alpha_{t-1}): rebuilt from the previous posterior
    rebuilt = y[1:] - (out["beta"].to_numpy()[:-1] * x[1:] + out["alpha"].to_numpy()[:-1])
    assert np.allclose(out["forecast_error"].to_numpy()[1:], rebuilt, rtol=0, atol=1e-9)
    posterior_resid = y - (out["beta"] * x + out["alpha"])
    assert not np.allclose(out["forecast_error"], posterior_resid)


@pytest.mark.parametrize("log_prices", [True, False])
def test_rolling_huber_matches_statsmodels_rlm(minute_bars, log_prices):
    btc, eth = minute_bars
    x, y = btc["close"].to_numpy()[:4_000], eth["close"].to_numpy()[:4_000]
    if log_prices:
        x, y = np.log(x), np.log(y)
    window = 150
    ours = rolling_huber(y, x, window)
    worst = 0.0
    for end in range(window - 1, len(y), 19):
        xs, ys = x[end - window + 1 : end + 1], y[end - window + 1 : end + 1]
        mx = xs.mean()  # centred design: statsmodels' own rounding stays ~1e-12
        ref = sm.RLM(ys, sm.add_constant(xs - mx), M=sm.robust.norms.HuberT(t=1.345)).fit()
        b, a = ref.params[1], ref.params[0] - ref.params[1] * mx
        # alpha is judged against the level it contributes (|alpha| + |beta x|): the
        # intercept of an uncentred design is ill-conditioned on its own
        level = abs(a) + abs(b * mx)
        worst = max(worst, abs(ours["beta"].iloc[end] - b) / abs(b), abs(ours["alpha"].iloc[end] - a) / level)
    assert worst <= 1e-8


def test_rolling_huber_matches_uncentred_rlm_and_resists_outliers():
    rng = np.random.default_rng(11)
    x = np.linspace(0, 10, 400) + rng.normal(0, 0.1, 400)
    y = 1.5 * x + 2 + rng.normal(0, 0.2, 400)
    y[::37] += 25  # bad ticks spread over the sample
    y[380::5] += 25  # and a burst at the end, which drags an OLS slope
    ours = rolling_huber(y, x, 100)
    for end in (99, 250, 399):
        ref = sm.RLM(y[end - 99 : end + 1], sm.add_constant(x[end - 99 : end + 1]), M=sm.robust.norms.HuberT()).fit()
        assert ours["beta"].iloc[end] == pytest.approx(ref.params[1], rel=1e-8)
        assert ours["alpha"].iloc[end] == pytest.approx(ref.params[0], rel=1e-8)
    assert abs(ours["beta"].iloc[-1] - 1.5) < abs(rolling_ols(y, x, 100)["beta"].iloc[-1] - 1.5)


@pytest.mark.parametrize("fn", [rolling_ols, rolling_huber])
def test_rolling_edge_cases(fn):
    with pytest.raises(ValueError):
        fn([1.0, 2.0], [1.0], 2)
    with pytest.raises(ValueError):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1)
    short = fn([1.0, 2.0], [2.0, 3.0], 5)
    assert len(short) == 2 and short["beta"].isna().all()
    empty = fn([], [], 5)
    assert len(empty) == 0
    const = fn(np.arange(10.0), np.full(10, 3.0), 5)
    assert const["beta"].isna().all()  # zero variance in x: undefined, not inf
    y = np.arange(20.0) * 2 + 1
    x = np.arange(20.0)
    x_nan = x.copy()
    x_nan[7] = np.nan
    out = fn(y, x_nan, 5)
    assert out["beta"].iloc[7:12].isna().all()
    assert out["beta"].iloc[12] == pytest.approx(2.0)


def test_kalman_edge_cases():
    with pytest.raises(ValueError):
        kalman_hedge([1.0], [1.0], delta=1.5)
    with pytest.raises(ValueError):
        kalman_hedge([1.0], [1.0], obs_var=0)
    out = kalman_hedge([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    assert np.isnan(out["beta"].iloc[1]) and np.isfinite(out["beta"].iloc[2])
    assert len(kalman_hedge([], [])) == 0


def test_ols_edge_cases():
    with pytest.raises(ValueError, match="zero variance"):
        ols([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="at least 3"):
        ols([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    s = pd.Series([1.0, 2.0, 3.0], index=[1, 2, 3])
    with pytest.raises(ValueError, match="same index"):
        rolling_ols(s, pd.Series([1.0, 2.0, 3.0], index=[4, 5, 6]), 2)


def test_rolling_huber_with_tied_residuals_matches_rlm():
    """Tick-sized prices make many |residuals| equal: the MAD bracket overflows
    and the kernel must fall back to a full selection (ties at the median)."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 10, 600).astype(float)
    y = 2.0 * x + 3.0 + rng.choice([-1.0, 0.0, 0.0, 1.0, 4.0], 600)
    ours = rolling_huber(y, x, 120)
    for end in range(119, 600, 23):
        ref = sm.RLM(y[end - 119 : end + 1], sm.add_constant(x[end - 119 : end + 1]), M=sm.robust.norms.HuberT()).fit()
        assert ours["beta"].iloc[end] == pytest.approx(ref.params[1], rel=1e-8)
        assert ours["alpha"].iloc[end] == pytest.approx(ref.params[0], rel=1e-8)
