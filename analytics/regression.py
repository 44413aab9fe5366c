"""Hedge-ratio estimators: static and rolling OLS, Kalman filter, rolling Huber.

All regress ``y`` (dependent leg) on ``[1, x]`` (independent leg) and return
``alpha`` (intercept, in y's units) and ``beta`` (hedge ratio, y units per x
unit). Pass log prices for a hedge in return space, raw prices for a hedge in
quantity space; the functions do not transform their inputs. Every output row
*t* uses observations up to and including *t* only (causal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics import _kernels
from analytics._validate import ArrayLike, aligned_pair, check_window

__all__ = ["OLSResult", "kalman_hedge", "ols", "rolling_huber", "rolling_ols"]


@dataclass(frozen=True)
class OLSResult:
    """Full-sample OLS of y on [1, x]."""

    alpha: float
    beta: float
    r2: float
    resid: pd.Series
    nobs: int


def ols(y: ArrayLike, x: ArrayLike) -> OLSResult:
    """Static OLS ``y = alpha + beta x + e`` over every finite row (in-sample).

    Raises
    ------
    ValueError
        Fewer than 3 finite rows or zero variance in ``x``.
    """
    ys, xs = aligned_pair(y, x)
    mask = np.isfinite(ys.to_numpy()) & np.isfinite(xs.to_numpy())
    yv = ys.to_numpy()[mask]
    xv = xs.to_numpy()[mask]
    if yv.size < 3:
        raise ValueError(f"ols needs at least 3 finite observations, got {yv.size}")
    mx, my = xv.mean(), yv.mean()
    dx, dy = xv - mx, yv - my
    sxx = float(dx @ dx)
    if not sxx > 1e-12 * float(xv @ xv):
        raise ValueError("ols: x has zero variance; the hedge ratio is undefined")
    beta = float(dx @ dy) / sxx
    alpha = my - beta * mx
    resid = ys - (alpha + beta * xs)
    syy = float(dy @ dy)
    r2 = 1.0 - float(np.nansum(resid.to_numpy() ** 2)) / syy if syy > 0 else np.nan
    return OLSResult(alpha=float(alpha), beta=beta, r2=r2, resid=resid, nobs=int(yv.size))


def rolling_ols(y: ArrayLike, x: ArrayLike, window: int) -> pd.DataFrame:
    """Rolling OLS of ``y`` on ``[1, x]`` over the trailing ``window`` rows.

    Returns
    -------
    DataFrame
        ``alpha, beta, r2`` on y's index. The first ``window-1`` rows, windows
        containing a NaN, and windows where x is constant are NaN.

    Notes
    -----
    O(n): sliding sums around a shift that is reset, with an exact
    recomputation, every ``window`` rows, so rounding never accumulates past
    one window (relative error ~1e-12 against a per-window fit, even at 1M rows).
    """
    ys, xs = aligned_pair(y, x)
    window = check_window(window)
    a, b, r2 = _kernels.rolling_ols_kernel(ys.to_numpy(), xs.to_numpy(), window)
    return pd.DataFrame({"alpha": a, "beta": b, "r2": r2}, index=ys.index)


def kalman_hedge(
    y: ArrayLike,
    x: ArrayLike,
    delta: float = 1e-4,
    obs_var: float = 1e-3,
    initial_beta: float = 0.0,
    initial_alpha: float = 0.0,
    initial_var: float = 1.0,
) -> pd.DataFrame:
    """Time-varying hedge by a Kalman filter with state ``[beta, alpha]``.

    Model: ``y_t = beta_t x_t + alpha_t + v_t``, ``v_t ~ N(0, obs_var)``;
    ``theta_t = theta_{t-1} + w_t``, ``w_t ~ N(0, delta/(1-delta) I)``.
    Prior ``theta_0 ~ N([initial_beta, initial_alpha], initial_var I)``.

    Returns
    -------
    DataFrame
        ``alpha, beta`` — filtered (posterior) state using data up to t;
        ``forecast_error`` — ``e_t = y_t - (beta_{t|t-1} x_t + alpha_{t|t-1})``
        from the prior state; ``forecast_var`` — its variance ``Q_t``;
        ``zscore`` — ``e_t / sqrt(Q_t)``, the trading signal. Never use the
        residual against the updated state as a signal: it has seen ``y_t``.
    """
    ys, xs = aligned_pair(y, x)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not obs_var > 0.0:
        raise ValueError(f"obs_var must be > 0, got {obs_var}")
    if not initial_var > 0.0:
        raise ValueError(f"initial_var must be > 0, got {initial_var}")
    yv, xv = ys.to_numpy(), xs.to_numpy()
    all_finite = bool(np.isfinite(yv).all() and np.isfinite(xv).all())
    out = _kernels.kalman_kernel(
        yv, xv, float(delta), float(obs_var), float(initial_beta), float(initial_alpha), float(initial_var), all_finite,
        np.empty((len(yv), 5)),
    )
    return pd.DataFrame(out, index=ys.index, columns=["alpha", "beta", "forecast_error", "forecast_var", "zscore"], copy=False)


def rolling_huber(
    y: ArrayLike, x: ArrayLike, window: int, epsilon: float = 1.345, maxiter: int = 50, tol: float = 1e-8
) -> pd.DataFrame:
    """Rolling Huber M-estimator of ``y`` on ``[1, x]`` (robust to outlier ticks).

    Each trailing window is fitted exactly as statsmodels
    ``RLM(y, add_constant(x), M=HuberT(t=epsilon)).fit()`` does: IRLS from the
    OLS start, MAD scale (centre 0, /0.6745) re-estimated each iteration,
    deviance convergence ``tol``, ``maxiter`` iterations. The loop also stops once
    the parameters have converged to rounding level (relative step < 1e-11).

    Returns
    -------
    DataFrame
        ``alpha, beta, iterations``; NaN for the first ``window-1`` rows,
        windows with a NaN and windows with constant x.
    """
    ys, xs = aligned_pair(y, x)
    window = check_window(window)
    if window < 3:
        raise ValueError("rolling_huber needs window >= 3")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    a, b, it = _kernels.rolling_huber_kernel(
        ys.to_numpy(), xs.to_numpy(), window, float(epsilon), int(maxiter), float(tol), 1e-11
    )
    return pd.DataFrame({"alpha": a, "beta": b, "iterations": it}, index=ys.index)
