"""Kalman calibration: maximum likelihood against a direct optimisation, calibrated z on real bars."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from statsmodels.stats.diagnostic import acorr_ljungbox

from analytics import PairParams, fit_kalman, kalman_calibrated, kalman_hedge, ljung_box, pair_analytics
from analytics.kalman import KALMAN_INIT_BARS


def _reference_loglik(y: np.ndarray, x: np.ndarray, vw: float, ve: float) -> float:
    """Gaussian log-likelihood of the random-walk hedge, written out in matrix form (independent of the kernels).

    State [beta, alpha] from OLS on the first KALMAN_INIT_BARS bars with covariance Ve (X'X)^-1,
    then the prediction-error decomposition over the remaining bars."""
    m = KALMAN_INIT_BARS
    X0 = np.column_stack([x[:m], np.ones(m)])
    theta = np.linalg.lstsq(X0, y[:m], rcond=None)[0]
    P = ve * np.linalg.inv(X0.T @ X0)
    ll = 0.0
    for t in range(m, len(y)):
        R = P + vw * np.eye(2)
        h = np.array([x[t], 1.0])
        e = y[t] - h @ theta
        q = h @ R @ h + ve
        K = R @ h / q
        theta = theta + K * e
        P = R - np.outer(K, h) @ R
        ll += -0.5 * (math.log(2 * math.pi * q) + e * e / q)
    return ll


def test_maximum_likelihood_matches_a_direct_numerical_optimisation(minute_bars):
    btc, eth = minute_bars
    y, x = np.log(eth["close"].to_numpy()[:600]), np.log(btc["close"].to_numpy()[:600])
    fit = fit_kalman(y, x)
    # the same objective, optimised over both parameters directly (no profiling), from a poor start
    res = minimize(lambda p: -_reference_loglik(y, x, math.exp(p[0]), math.exp(p[1])), x0=[math.log(1e-6), math.log(1e-5)],
                   method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000})
    vw_ref, ve_ref = math.exp(res.x[0]), math.exp(res.x[1])
    assert fit.loglik == pytest.approx(-res.fun, abs=1e-3)
    assert fit.loglik >= -res.fun - 1e-6  # never worse than the direct optimum
    assert fit.obs_var == pytest.approx(ve_ref, rel=0.02)
    assert fit.state_var == pytest.approx(vw_ref, rel=0.05)
    assert _reference_loglik(y, x, fit.state_var, fit.obs_var) == pytest.approx(fit.loglik, abs=1e-6)


def test_recovers_known_noise_variances():
    rng = np.random.default_rng(3)
    n, vw, ve = 4000, 1e-7, 1e-5
    x = 10 + np.cumsum(rng.normal(0, 0.001, n))
    beta = 0.9 + np.cumsum(rng.normal(0, math.sqrt(vw), n))
    alpha = 0.5 + np.cumsum(rng.normal(0, math.sqrt(vw), n))
    y = beta * x + alpha + rng.normal(0, math.sqrt(ve), n)
    fit = fit_kalman(y, x)
    assert abs(math.log10(fit.obs_var / ve)) < 0.05
    assert abs(math.log10(fit.state_var / vw)) < 0.3


def test_default_kalman_is_calibrated_on_real_minute_bars(minute_bars):
    """The old fixed defaults (δ = 1e-4, Ve = 1e-3 on log prices) gave std(z) = 0.009 and no |z| > 2 bar."""
    btc, eth = minute_bars
    old = kalman_hedge(np.log(eth["close"]), np.log(btc["close"]), delta=1e-4, obs_var=1e-3)["zscore"].iloc[100:]
    assert old.std() < 0.05 and (old.abs() > 2).sum() == 0  # the defect, reproduced
    for log_prices in (True, False):
        table = pair_analytics(eth["close"], btc["close"], PairParams(method="Kalman", log_prices=log_prices))
        z = table["zscore"].dropna()
        share = float((z.abs() > 2).mean())
        print(f"\nKalman {'log' if log_prices else 'raw'}: mean z^2 {float((z**2).mean()):.3f}, |z|>2 on {share:.1%}, fit {table.attrs['kalman']}")
        assert len(z) > 49_000
        assert 0.5 <= float((z**2).mean()) <= 2.0
        assert 0.01 <= share <= 0.15
        assert table.attrs["kalman"]["fitted"] is True and table.attrs["kalman"]["obs_var"] > 0


def test_calibrated_filter_is_causal_and_refits_on_past_bars_only(minute_bars):
    btc, eth = minute_bars
    y, x = np.log(eth["close"].iloc[:3000]), np.log(btc["close"].iloc[:3000])
    full = kalman_calibrated(y, x, formation_bars=1000)
    cut = kalman_calibrated(y.iloc[:1700], x.iloc[:1700], formation_bars=1000)
    pd.testing.assert_frame_equal(full.iloc[:1700], cut, check_exact=True)
    assert full["zscore"].iloc[:200].isna().all() and full["zscore"].iloc[200:].notna().all()
    # refits every formation/8 = 125 bars: the parameters in force change only at those bars
    changes = np.flatnonzero(np.diff(full["kalman_obs_var"].to_numpy()[200:]) != 0) + 201
    assert len(changes) > 5 and all((c - 200) % 125 == 0 for c in changes)
    fixed = kalman_calibrated(y, x, delta=1e-8, obs_var=1e-7)
    assert fixed["zscore"].iloc[:KALMAN_INIT_BARS].isna().all() and fixed["zscore"].iloc[KALMAN_INIT_BARS:].notna().all()
    with pytest.raises(ValueError, match="both"):
        kalman_calibrated(y, x, delta=1e-8)


def test_ljung_box_matches_statsmodels():
    rng = np.random.default_rng(4)
    e = rng.normal(size=1000)
    ar = np.convolve(e, [1.0, 0.5], mode="valid")
    for v in (e, ar):
        q, p = ljung_box(v, lags=10)
        ref = acorr_ljungbox(v, lags=[10])
        assert q == pytest.approx(float(ref["lb_stat"].iloc[0]), rel=1e-10)
        assert p == pytest.approx(float(ref["lb_pvalue"].iloc[0]), rel=1e-8, abs=1e-300)
    assert math.isnan(ljung_box([1.0, 2.0])[1])


def test_kalman_starts_when_x_is_flat_at_first_on_real_1s_bars(data_dir):
    """Live at 1 s the Kalman view stayed blank for good: BTC did not move in the first 30 s, OLS of the
    start rows had no solution, and every refit window began at the same flat rows. Real USD-M 1 s bars
    from the start of BTC's longest flat stretch (139 s) in the 2025-12-16 recording."""
    from tests.recordings import recording_1s_closes

    bars = recording_1s_closes(data_dir)
    flat = (bars["BTCUSDT"].diff() != 0).cumsum()
    start = int(np.flatnonzero(flat.to_numpy() == flat.value_counts().idxmax())[0])
    window = bars.iloc[start:]
    assert window["BTCUSDT"].iloc[:KALMAN_INIT_BARS + 60].nunique() == 1  # the defect's condition, on real data
    table = pair_analytics(window["ETHUSDT"], window["BTCUSDT"], PairParams(method="Kalman"))
    z = table["zscore"]
    assert z.notna().sum() >= len(window) - 201  # from the first fit (200 bars) on, every row has a z
    assert table["beta"].iloc[-1] > 0 and math.isfinite(table.attrs["kalman"]["obs_var"])
    fixed = pair_analytics(window["ETHUSDT"], window["BTCUSDT"], PairParams(method="Kalman", kalman_delta=1e-6, kalman_obs_var=1e-8))
    assert fixed["zscore"].notna().sum() > len(window) - 160  # fixed δ/Ve: from when BTC first moved twice
    with pytest.raises(ValueError, match="moved twice"):
        fit_kalman(window["ETHUSDT"].iloc[:100], window["BTCUSDT"].iloc[:100])
