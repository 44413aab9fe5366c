"""OU fit (exact AR(1) mapping, Monte Carlo) and Bertram's bands against a direct numerical optimisation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from analytics.ou import bertram_bands, bertram_return_rate, fit_ou
from analytics.stats import SECONDS_PER_YEAR


def _ou(rng, n: int, theta: float, mu: float, sigma: float, dt: float) -> pd.Series:
    """Exact discretisation of an OU process (no Euler error)."""
    b = math.exp(-theta * dt)
    sd = sigma * math.sqrt((1 - b * b) / (2 * theta))
    x = np.empty(n)
    x[0] = mu
    eps = rng.normal(0, sd, n)
    for t in range(1, n):
        x[t] = mu + b * (x[t - 1] - mu) + eps[t]
    return pd.Series(x, index=pd.date_range("2025-01-01", periods=n, freq=f"{int(dt)}s", tz="UTC"))


def test_fit_recovers_theta_mu_sigma_monte_carlo():
    rng = np.random.default_rng(3)
    theta, mu, sigma, dt = 1 / 600, 0.02, 0.0004, 60.0  # half-life ~7 min on 1-minute bars
    fits = [fit_ou(_ou(rng, 5000, theta, mu, sigma, dt)) for _ in range(200)]
    th = np.median([f.theta for f in fits])
    assert th == pytest.approx(theta, rel=0.05)
    assert np.median([f.mu for f in fits]) == pytest.approx(mu, abs=2e-4)
    assert np.median([f.sigma for f in fits]) == pytest.approx(sigma, rel=0.03)
    f = fits[0]
    assert f.dt_s == 60.0 and f.half_life_s == pytest.approx(math.log(2) / f.theta)
    assert f.sigma_stationary == pytest.approx(f.sigma / math.sqrt(2 * f.theta))


@pytest.mark.parametrize("cost", [0.0002, 0.001, 0.004])
def test_bertram_bands_maximise_the_return_rate_like_a_direct_optimiser(cost):
    rng = np.random.default_rng(11)
    fit = fit_ou(_ou(rng, 20_000, 1 / 900, 0.0, 0.0005, 60.0))
    bands = bertram_bands(fit, cost)
    # direct: maximise (m - a - c) / E[T] over both levels, no symmetry assumed
    start = np.array([-bands.distance * 0.5, bands.distance * 1.7])
    res = minimize(lambda v: -bertram_return_rate(v[0], v[1], fit, cost) * 1e6, start, method="Nelder-Mead",
                   options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20_000})
    a, m = res.x
    assert a == pytest.approx(-bands.distance, rel=1e-4) and m == pytest.approx(bands.distance, rel=1e-4)
    assert bands.return_per_s == pytest.approx(-res.fun / 1e6, rel=1e-8)
    assert bands.distance > cost / 2  # the band pays for its own cost
    assert bands.entry_z == pytest.approx(bands.distance / fit.sigma_stationary)
    assert bands.expected_cycle_s > 0 and bands.return_per_year == pytest.approx(bands.return_per_s * SECONDS_PER_YEAR)


def test_bands_widen_with_costs_and_need_a_cost():
    fit = fit_ou(_ou(np.random.default_rng(5), 10_000, 1 / 300, 0.0, 0.001, 1.0))
    widths = [bertram_bands(fit, c).distance for c in (1e-4, 5e-4, 2e-3)]
    assert widths == sorted(widths)
    with pytest.raises(ValueError, match="positive round-trip cost"):
        bertram_bands(fit, 0.0)
