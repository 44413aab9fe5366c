"""Kalman hedge calibrated to the data: maximum-likelihood δ and Ve, refitted causally.

Model (as :func:`analytics.kalman_hedge`): ``y_t = beta_t x_t + alpha_t + v_t``,
``v_t ~ N(0, Ve)``, ``[beta, alpha]`` a random walk with covariance
``Vw I``, ``Vw = δ / (1 - δ)``. The fixed defaults of textbooks (δ = 1e-4,
Ve = 1e-3) are meaningless in log-price units: the state noise swamps the
observation noise and z is ~0. Here ``Vw`` and ``Ve`` are estimated by
**maximum likelihood** (prediction-error decomposition, ``Ve`` profiled out
analytically, one-dimensional search over ``log10(Vw / Ve)``), so they are in
the units of the prices given (log or raw) whatever those are.

Causality: :func:`kalman_calibrated` refits every ``refit_every`` bars on the
trailing ``formation_bars`` bars **before** the refit bar and uses the fit for
the bars that follow; rows before the first fit are NaN. Row *t* therefore
depends on data up to *t* only.

State initialisation: OLS of the first ``KALMAN_INIT_BARS`` bars (more when x has
not moved twice by then: :func:`init_bars`), with prior covariance ``Ve (X'X)^-1``
(the posterior of a flat prior on those bars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics import _kernels
from analytics._validate import ArrayLike, aligned_pair

__all__ = ["KALMAN_INIT_BARS", "KALMAN_MIN_FIT_BARS", "KalmanFit", "fit_kalman", "kalman_calibrated", "ljung_box"]

KALMAN_INIT_BARS = 30  # bars whose OLS fit is the filter's starting state
KALMAN_MIN_FIT_BARS = 200  # bars the first maximum-likelihood fit needs
_LOG10_RATIO_RANGE = (-14.0, 1.0)  # search range of log10(Vw / Ve)


@dataclass(frozen=True)
class KalmanFit:
    """Maximum-likelihood calibration of the random-walk hedge on one window.

    ``delta`` and ``obs_var`` are in the units of the regressed prices
    (``Vw = delta / (1 - delta)``); ``n_bars`` the bars fitted; ``loglik`` the
    maximised log-likelihood (of bars after the initialisation ones).
    """

    delta: float
    obs_var: float
    state_var: float
    n_bars: int
    loglik: float

    def as_dict(self) -> dict[str, float]:
        return {"delta": self.delta, "obs_var": self.obs_var, "state_var": self.state_var, "n_bars": float(self.n_bars), "loglik": self.loglik}


def _finite_pair(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(y) & np.isfinite(x)
    return np.ascontiguousarray(y[ok]), np.ascontiguousarray(x[ok])


def init_bars(x: np.ndarray) -> int | None:
    """Rows of the OLS start: the first ``KALMAN_INIT_BARS``, or more until ``x`` has moved twice.

    A leg that did not trade at the start of a 1 s series is flat there (BTC for its
    first 30 s is common): OLS on those rows has no solution, and a fixed-length start
    left the filter blank for good. ``x``: finite values only. None when ``x`` never
    moves twice.
    """
    moves = np.flatnonzero(np.diff(x) != 0)
    if len(moves) < 2:
        return None
    return max(KALMAN_INIT_BARS, int(moves[1]) + 2)


def _fit_arrays(y: np.ndarray, x: np.ndarray, warm: KalmanFit | None = None) -> KalmanFit | None:
    yv, xv = _finite_pair(y, x)
    n = yv.shape[0]
    m = init_bars(xv)
    if m is None or n < max(m + 10, 40):
        return None
    start = math.log10(warm.state_var / warm.obs_var) if warm is not None else math.nan
    ratio, ve, nll = _kernels.kalman_mle(yv, xv, 0, n, m, *_LOG10_RATIO_RANGE, start)
    if not (math.isfinite(ratio) and math.isfinite(ve) and ve > 0):
        return None
    vw = ratio * ve
    return KalmanFit(delta=vw / (1.0 + vw), obs_var=ve, state_var=vw, n_bars=n, loglik=-nll)


def fit_kalman(y: ArrayLike, x: ArrayLike) -> KalmanFit:
    """Maximum-likelihood δ and Ve for the random-walk hedge of ``y`` on ``x`` (in-sample).

    Raises
    ------
    ValueError
        Fewer than 40 finite bars, or fewer than 10 after x has first moved twice.
    """
    ys, xs = aligned_pair(y, x)
    fit = _fit_arrays(ys.to_numpy(), xs.to_numpy())
    if fit is None:
        raise ValueError("fit_kalman needs at least 40 finite bars, 10 of them after x has moved twice")
    return fit


def _prior(y: np.ndarray, x: np.ndarray, ve: float) -> tuple[int, tuple[float, float, float, float, float]] | None:
    """Row where filtering starts and the prior ``(b, a, p00, p01, p11)`` from OLS of the first finite bars."""
    ok = np.flatnonzero(np.isfinite(y) & np.isfinite(x))
    m = init_bars(x[ok])
    if m is None or len(ok) < m:
        return None
    rows = ok[:m]
    yv, xv = np.ascontiguousarray(y[rows]), np.ascontiguousarray(x[rows])
    b, a, p00, p01, p11, good = _kernels.ols_prior(yv, xv, 0, m)
    if not good:
        return None
    return int(rows[-1]) + 1, (b, a, p00 * ve, p01 * ve, p11 * ve)


_COLUMNS = ["alpha", "beta", "forecast_error", "forecast_var", "zscore", "kalman_delta", "kalman_obs_var", "beta_std"]


def kalman_calibrated(
    y: ArrayLike,
    x: ArrayLike,
    formation_bars: int = 2000,
    refit_every: int | None = None,
    delta: float | None = None,
    obs_var: float | None = None,
) -> pd.DataFrame:
    """Causal Kalman hedge with maximum-likelihood (or fixed) δ and Ve.

    Parameters
    ----------
    y, x
        Aligned legs in the units the hedge is estimated in (log or raw prices).
    formation_bars
        Trailing bars each maximum-likelihood fit uses.
    refit_every
        Bars between refits (default ``max(50, formation_bars // 8)``). The
        first fit happens at bar ``KALMAN_MIN_FIT_BARS`` (or ``formation_bars``
        if smaller) on the bars before it.
    delta, obs_var
        Both given: fixed parameters, no fitting (rows before the
        ``KALMAN_INIT_BARS`` initialisation bars are NaN). Both None: fitted.

    Returns
    -------
    DataFrame
        ``alpha, beta`` (posterior state at t), ``forecast_error`` ``e_t``
        (against the prior state), ``forecast_var`` ``Q_t``, ``zscore`` =
        ``e_t / sqrt(Q_t)``, and the ``kalman_delta``/``kalman_obs_var`` in force
        at each row, ``beta_std`` — the posterior standard deviation of beta
        (``sqrt(P_t[0,0])``, the filter's own uncertainty: β ± 2·beta_std is
        its 95 % band under the model). Rows before the first fit are NaN.
    """
    ys, xs = aligned_pair(y, x)
    if (delta is None) != (obs_var is None):
        raise ValueError("give both Kalman delta and obs_var, or neither (maximum likelihood)")
    if delta is not None and not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if obs_var is not None and not obs_var > 0.0:
        raise ValueError(f"obs_var must be > 0, got {obs_var}")
    if int(formation_bars) != formation_bars or formation_bars < 50:
        raise ValueError(f"formation_bars must be an integer >= 50, got {formation_bars}")
    yv, xv = ys.to_numpy(dtype=float), xs.to_numpy(dtype=float)
    n = len(yv)
    out = np.full((n, len(_COLUMNS)), np.nan)
    frame = pd.DataFrame(out, index=ys.index, columns=_COLUMNS, copy=False)
    if n == 0:
        return frame
    vw = np.empty(n)
    ve = np.empty(n)
    if delta is not None:
        vw[:] = delta / (1.0 - delta)
        ve[:] = obs_var
        first_valid = 0
    else:
        step = max(50, formation_bars // 8) if refit_every is None else int(refit_every)
        if step < 1:
            raise ValueError("refit_every must be >= 1")
        c0 = min(KALMAN_MIN_FIT_BARS, int(formation_bars))
        if n <= c0:
            return frame
        fits: list[tuple[int, KalmanFit]] = []
        for c in range(c0, n, step):
            lo = max(0, c - int(formation_bars))
            fit = _fit_arrays(yv[lo:c], xv[lo:c], fits[-1][1] if fits else None)
            if fit is None:
                fit = fits[-1][1] if fits else None
            if fit is not None:
                fits.append((c, fit))
        if not fits:
            return frame
        first_valid = fits[0][0]
        bounds = [c for c, _ in fits] + [n]
        vw[: bounds[0]] = fits[0][1].state_var
        ve[: bounds[0]] = fits[0][1].obs_var
        for (c, fit), end in zip(fits, bounds[1:], strict=True):
            vw[c:end] = fit.state_var
            ve[c:end] = fit.obs_var
    prior = _prior(yv, xv, float(ve[0]))
    if prior is None:
        return frame
    start, (b0, a0, p00, p01, p11) = prior
    res = np.full((n, 6), np.nan)
    if start < n:
        _kernels.kalman_schedule_kernel(
            np.ascontiguousarray(yv[start:]), np.ascontiguousarray(xv[start:]), vw[start:], ve[start:],
            b0, a0, p00, p01, p11, res[start:],
        )
    valid_from = max(start, first_valid)
    out[valid_from:, :5] = res[valid_from:, :5]
    out[valid_from:, 5] = vw[valid_from:] / (1.0 + vw[valid_from:])
    out[valid_from:, 6] = ve[valid_from:]
    out[valid_from:, 7] = res[valid_from:, 5]
    return frame


def ljung_box(values: ArrayLike, lags: int = 10) -> tuple[float, float]:
    """Ljung-Box ``(Q statistic, p-value)`` of the finite values for ``lags`` autocorrelations.

    ``Q = n (n + 2) sum_k rho_k^2 / (n - k)``, chi-square with ``lags`` degrees
    of freedom (H0: no autocorrelation). NaN when fewer than ``lags + 10`` values.
    """
    from scipy.stats import chi2

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = v.shape[0]
    if n < lags + 10 or lags < 1:
        return math.nan, math.nan
    d = v - v.mean()
    denom = float(d @ d)
    if denom == 0.0:
        return math.nan, math.nan
    acf = np.array([float(d[k:] @ d[:-k]) / denom for k in range(1, lags + 1)])
    q = float(n * (n + 2) * np.sum(acf**2 / (n - np.arange(1, lags + 1))))
    return q, float(chi2.sf(q, lags))
