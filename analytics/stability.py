"""Is the hedge stable? Recursive residuals and the CUSUM test of Brown, Durbin & Evans (1975).

For the OLS hedge ``y_t = alpha + beta x_t + e_t`` over a window, the recursive
residual at bar *t* is the one-step forecast error of the fit on bars before
*t*, scaled to unit variance under a constant hedge:
``w_t = (y_t - x_t' b_{t-1}) / sqrt(1 + x_t' (X_{t-1}' X_{t-1})^-1 x_t)``,
``t = k .. n-1`` (``k = 2`` parameters). With a constant hedge the ``w_t`` are
independent with one variance, so their scaled cumulative sum
``W_t = sum w / s`` (``s`` their standard deviation, ddof 1) stays inside the
lines ``±a (sqrt(n-k) + 2 (t-k) / sqrt(n-k))`` with probability ``1 - alpha``
(``a`` = 0.850 / 0.948 / 1.143 for 10 / 5 / 1 %). A crossing says the
relationship changed: the hedge **broke**. Oracle: statsmodels ``RecursiveLS``
(``resid_recursive``, ``cusum``; its 10 % constant is misprinted as 0.950 there).

A pair's residual is not independent: a cointegrated spread is autocorrelated
(AR(1) coefficients of 0.9+ on 1-minute bars), and the plain CUSUM then calls a
constant hedge broken most of the time. ``long_run=True`` (the default) scales
the sum by the **long-run** standard deviation instead, from an AR(1) fit of
the recursive residuals (``s_LR = s_u / (1 - rho)``): under a constant hedge
``W_t`` is then again a Brownian motion and the same lines hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics._validate import ArrayLike, aligned_pair

__all__ = ["CUSUM_CRITICAL", "CusumResult", "cusum_test", "recursive_residuals"]

CUSUM_CRITICAL = {0.10: 0.850, 0.05: 0.948, 0.01: 1.143}
_K = 2  # regressors: intercept and x


@dataclass(frozen=True)
class CusumResult:
    """``cusum`` W_t and its ``bound`` (same index: bars ``k .. n-1``); ``statistic`` = max |W_t| / bound_t
    (above 1: the hedge broke at level ``alpha``); ``first_break`` the first bar beyond the bound."""

    cusum: pd.Series
    bound: pd.Series
    statistic: float
    broke: bool
    first_break: object | None
    alpha: float

    def describe(self) -> str:
        if not math.isfinite(self.statistic):
            return "not enough bars for the CUSUM test"
        if self.broke:
            return (f"the OLS hedge broke: the CUSUM of recursive residuals left its {self.alpha:.0%} band at "
                    f"{self.first_break} (peak {self.statistic:.2f}× the bound)")
        return f"stable: the CUSUM of recursive residuals peaks at {self.statistic:.2f}× its {self.alpha:.0%} bound"


def recursive_residuals(y: ArrayLike, x: ArrayLike) -> pd.Series:
    """Standardised recursive residuals of the OLS of ``y`` on ``[1, x]`` (module docstring).

    The first ``k = 2`` bars start the recursion (NaN there; more while x repeats its first value:
    the start needs two distinct x). ``x`` and ``y`` are
    centred on their first value first: the residuals do not change (the
    intercept absorbs it) and log prices (~11) keep full precision.
    """
    ys, xs = aligned_pair(y, x)
    yv, xv = ys.to_numpy(dtype=float), xs.to_numpy(dtype=float)
    n = len(yv)
    out = np.full(n, np.nan)
    if n <= _K or not (np.isfinite(yv).all() and np.isfinite(xv).all()):
        return pd.Series(out, index=ys.index, name="recursive_residual")
    yv, xv = yv - yv[0], xv - xv[0]
    # start on the fewest first bars with two distinct x values (a quiet leg repeats its price): their exact OLS
    moved = np.flatnonzero(xv != 0.0)
    if not len(moved):
        return pd.Series(out, index=ys.index, name="recursive_residual")
    m = int(moved[0]) + 1
    X = np.column_stack([np.ones(m), xv[:m]])
    xtx = X.T @ X
    p = np.linalg.inv(xtx)
    alpha, beta = (float(v) for v in p @ (X.T @ yv[:m]))
    p00, p01, p11 = float(p[0, 0]), float(p[0, 1]), float(p[1, 1])  # order [1, x]
    for t in range(m, n):
        xt, yt = xv[t], yv[t]
        e = yt - (alpha + beta * xt)
        ph0 = p00 + p01 * xt  # P h with h = [1, x]
        ph1 = p01 + p11 * xt
        f = 1.0 + ph0 + xt * ph1
        out[t] = e / math.sqrt(f)
        alpha += ph0 * e / f
        beta += ph1 * e / f
        p00 -= ph0 * ph0 / f
        p01 -= ph0 * ph1 / f
        p11 -= ph1 * ph1 / f
    return pd.Series(out, index=ys.index, name="recursive_residual")


def _long_run_sd(w: np.ndarray) -> float:
    """AR(1)-prewhitened long-run standard deviation ``s_u / (1 - rho)`` (rho capped at 0.99)."""
    a, b = w[:-1] - w[:-1].mean(), w[1:] - w[1:].mean()
    rho = float(np.dot(a, b) / np.dot(a, a)) if np.dot(a, a) > 0 else 0.0
    rho = min(max(rho, -0.99), 0.99)
    u = b - rho * a
    return float(np.std(u, ddof=2)) / (1.0 - rho)


def cusum_test(y: ArrayLike, x: ArrayLike, alpha: float = 0.05, long_run: bool = True) -> CusumResult:
    """CUSUM of recursive residuals of the OLS hedge of ``y`` on ``x`` over the bars given (module docstring).

    ``long_run=False`` is the textbook statistic (statsmodels ``RecursiveLS.cusum``), valid for
    independent residuals only."""
    if alpha not in CUSUM_CRITICAL:
        raise ValueError(f"alpha must be one of {sorted(CUSUM_CRITICAL)}, got {alpha}")
    w = recursive_residuals(y, x)
    finite = np.flatnonzero(np.isfinite(w.to_numpy()))
    start = int(finite[0]) if len(finite) else len(w)
    tail = w.iloc[start:]
    n = len(w)
    if len(tail) < 10 or not np.isfinite(tail.to_numpy()).all():
        empty = pd.Series(dtype=float)
        return CusumResult(empty, empty, math.nan, False, None, alpha)
    sd = _long_run_sd(tail.to_numpy()) if long_run else float(np.std(tail.to_numpy(), ddof=1))
    if not sd > 0:
        empty = pd.Series(dtype=float)
        return CusumResult(empty, empty, math.nan, False, None, alpha)
    cusum = tail.cumsum() / sd
    a, root = CUSUM_CRITICAL[alpha], math.sqrt(n - start)
    bound = pd.Series(a * root + 2 * a * (np.arange(start, n) - start) / root, index=tail.index)
    ratio = np.abs(cusum.to_numpy()) / bound.to_numpy()
    over = np.flatnonzero(ratio > 1.0)
    return CusumResult(cusum.rename("cusum"), bound.rename("bound"), float(ratio.max()), bool(len(over)),
                       tail.index[over[0]] if len(over) else None, alpha)
