"""Ornstein-Uhlenbeck fit of a spread and Bertram's optimal trading bands.

**Model.** ``dX = θ (μ − X) dt + σ dW``. Sampled every ``Δ`` seconds its exact
discretisation is the AR(1) ``X_t = a + b X_{t−Δ} + ε`` with ``b = e^{−θΔ}``,
``a = μ (1 − b)`` and ``Var ε = σ² (1 − b²) / (2θ)``. :func:`fit_ou` estimates
``a, b, Var ε`` by OLS on the formation-window spread and inverts that mapping
(defined only for ``0 < b < 1``). ``Δ`` is the median spacing of the index; the
stationary standard deviation is ``σ / √(2θ)``. The fit does **not** test mean
reversion: OLS puts ``b`` below 1 on most random walks (the Dickey-Fuller bias),
so bands are meaningful only where the formation-window Engle-Granger verdict
says "cointegrated" — the dashboard shows them only then.

**Bands** (Bertram 2010, *Analytic solutions for optimal statistical arbitrage
trading*, Physica A 389). Enter long when the spread falls to ``μ + a``, exit at
``μ + m`` (``a < m``), mirrored for shorts. With ``α = θ``, ``η = σ`` the
expected time of one cycle (``a → m → a``) is
``E[T] = (π/α) (Erfi(m√α/η) − Erfi(a√α/η))`` and the expected return per unit
time, net of a cost ``c`` (spread units per round trip), is
``(m − a − c) / E[T]``. Its maximum is symmetric (``m = −a``) at the ``v = −a > c/2``
solving ``Erfi(v k) = (2v − c) k e^{(v k)²} / √π``, ``k = √α / η`` — found here by a
bracketed root search. Bertram's trade holds until the spread reaches the
*opposite* band (not the mean); the bands are shown beside the user's ``±z`` bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import dawsn, erfi

from analytics._validate import ArrayLike, as_series
from analytics.stats import SECONDS_PER_YEAR

__all__ = ["BertramBands", "OUFit", "bertram_bands", "bertram_return_rate", "fit_ou", "round_trip_cost"]


@dataclass(frozen=True)
class OUFit:
    """θ per second, μ in spread units, σ per √second; ``b`` the AR(1) coefficient at spacing ``dt_s``."""

    theta: float
    mu: float
    sigma: float
    b: float
    dt_s: float
    nobs: int

    @property
    def mean_reverting(self) -> bool:
        return math.isfinite(self.theta) and self.theta > 0

    @property
    def half_life_s(self) -> float:
        return math.log(2.0) / self.theta if self.mean_reverting else math.inf

    @property
    def sigma_stationary(self) -> float:
        """Standard deviation of the stationary distribution, ``σ / √(2θ)`` (spread units)."""
        return self.sigma / math.sqrt(2.0 * self.theta) if self.mean_reverting else math.nan


@dataclass(frozen=True)
class BertramBands:
    """Optimal symmetric bands around μ: enter at ``μ ∓ distance``, exit at ``μ ± distance``."""

    distance: float  # spread units
    entry_z: float  # the same distance in stationary standard deviations
    expected_cycle_s: float  # E[T] of one entry → exit → entry cycle
    return_per_s: float  # expected net return per second (spread units)
    cost: float

    @property
    def return_per_year(self) -> float:
        return self.return_per_s * SECONDS_PER_YEAR


def _spacing_s(index: pd.Index) -> float:
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        return float(np.median(np.diff(index.as_unit("ns").asi8))) / 1e9
    return math.nan


def fit_ou(spread: ArrayLike, dt_s: float | None = None) -> OUFit:
    """Exact AR(1) ↔ OU fit (module docstring) of ``spread``; ``dt_s`` defaults to the index's median spacing.

    A spread with ``b >= 1`` (no mean reversion) or ``b <= 0`` gets θ = NaN/∞ and is not mean reverting.
    """
    s = as_series(spread, "spread").dropna()
    dt = float(dt_s) if dt_s is not None else _spacing_s(s.index)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError("fit_ou: give dt_s (seconds between observations) for an index without times")
    v = s.to_numpy(dtype=float)
    if len(v) < 10:
        raise ValueError(f"fit_ou needs at least 10 observations, got {len(v)}")
    x, y = v[:-1], v[1:]
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    if sxx == 0:
        raise ValueError("fit_ou: the spread is constant")
    b = float(((x - xm) * (y - ym)).sum()) / sxx
    a = ym - b * xm
    resid = y - a - b * x
    var_eps = float(resid @ resid) / (len(resid) - 2)
    if not 0 < b < 1:
        return OUFit(math.nan, math.nan, math.nan, b, dt, len(v))
    theta = -math.log(b) / dt
    mu = a / (1 - b)
    sigma = math.sqrt(var_eps * 2 * theta / (1 - b * b))
    return OUFit(theta, mu, sigma, b, dt, len(v))


def bertram_return_rate(entry: float, exit: float, fit: OUFit, cost: float = 0.0) -> float:
    """Expected net return per second of entering at ``μ + entry`` and exiting at ``μ + exit`` (``entry < exit``)."""
    if not fit.mean_reverting or not entry < exit:
        return math.nan
    k = math.sqrt(fit.theta) / fit.sigma
    cycle = math.pi / fit.theta * (float(erfi(exit * k)) - float(erfi(entry * k)))
    return (exit - entry - cost) / cycle


def bertram_bands(fit: OUFit, cost: float) -> BertramBands:
    """The symmetric bands maximising :func:`bertram_return_rate` (closed-form condition, module docstring)."""
    if not fit.mean_reverting:
        return BertramBands(math.nan, math.nan, math.inf, math.nan, cost)
    if not cost > 0:
        raise ValueError("Bertram's bands need a positive round-trip cost: without one the optimum is a zero-width band")
    k = math.sqrt(fit.theta) / fit.sigma

    def g(v: float) -> float:  # the first-order condition times e^{-(vk)^2}: Erfi(z) e^{-z²} = 2 D(z) / √π (Dawson's D, finite everywhere)
        z = v * k
        return 2.0 * float(dawsn(z)) / math.sqrt(math.pi) - (2 * v - cost) * k / math.sqrt(math.pi)

    lo = cost / 2 + 1e-12 / k
    hi = max(lo * 2, 1.0 / k)
    while g(hi) > 0:
        hi *= 2
    v = brentq(g, lo, hi, xtol=1e-14 / k, rtol=1e-14, maxiter=200)
    rate = bertram_return_rate(-v, v, fit, cost)
    cycle = math.pi / fit.theta * 2 * float(erfi(v * k))
    return BertramBands(v, v / fit.sigma_stationary, cycle, rate, cost)


def round_trip_cost(fee_bps: float, beta: float, log_prices: bool, price_y: float, price_x: float) -> float:
    """Fees of one round trip (both legs, in and out) in spread units.

    Log prices: the spread is a return on the Y notional (X notional ``|beta|`` times it), so the cost is
    ``2 fee (1 + |beta|)``; raw prices: Y quote units per unit of Y, ``2 fee (p_y + |beta| p_x)``.
    """
    legs = (1 + abs(beta)) if log_prices else (price_y + abs(beta) * price_x)
    return 2 * fee_bps / 1e4 * legs
