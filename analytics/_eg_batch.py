"""Compiled batch Engle-Granger: every ordered pair of a price matrix in one parallel kernel.

Private module; the public wrapper is :func:`analytics.universe.scan_universe`.

Per ordered pair (y on x) it does what :func:`analytics.stationarity.engle_granger`
does — OLS ``y = a + b x``, then ADF without constant on the residual ``e`` with the
lag chosen by AIC over ``0..maxlag`` on a common sample and the chosen lag refitted
on its own full sample — but without building regression matrices:

* the Gram matrix of ``[e_{t-1}, Δe_{t-1} … Δe_{t-p}, Δe_t]`` over the rows
  ``t = p+1 … T-1`` needs only the first row of lagged-difference products (``p+1``
  sums of length ``T``): the other entries follow down each diagonal by adding the
  row that enters and removing the row that leaves the shifted window;
* one Cholesky factor of that Gram matrix gives the residual sum of squares of
  *every* nested lag model at once (``SSR_k = Σ_{i≥k} L[K, i]²``), hence all AICs;
* the refit at the chosen lag adds the few extra rows its longer sample has.

Cost per pair: O(T·p) for the sums plus O(p³) for the factor — about 0.1 ms at
T = 2,000, p = 26, against ~10 ms for statsmodels ``coint``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, error_model="numpy")
def _cholesky(g, k):
    """Lower Cholesky factor of the leading k×k block of ``g`` (NaN where not positive definite)."""
    out = np.zeros((k, k))
    for j in range(k):
        s = g[j, j]
        for m in range(j):
            s -= out[j, m] * out[j, m]
        if not s > 0.0:
            out[:, :] = np.nan
            return out
        d = math.sqrt(s)
        out[j, j] = d
        for i in range(j + 1, k):
            s = g[i, j]
            for m in range(j):
                s -= out[i, m] * out[j, m]
            out[i, j] = s / d
    return out


@njit(cache=True, error_model="numpy")
def _eg_one(yv, xv, maxlag, gram, final):
    """(ADF statistic, chosen lag, beta, alpha) of one ordered pair; see the module docstring."""
    n = yv.shape[0]
    # OLS y = a + b x
    mx = 0.0
    my = 0.0
    for t in range(n):
        mx += xv[t]
        my += yv[t]
    mx /= n
    my /= n
    sxx = 0.0
    sxy = 0.0
    syy = 0.0
    for t in range(n):
        dx = xv[t] - mx
        dy = yv[t] - my
        sxx += dx * dx
        sxy += dx * dy
        syy += dy * dy
    if not (sxx > 0.0 and syy > 0.0):
        return np.nan, -1, np.nan, np.nan
    b = sxy / sxx
    a = my - b * mx
    ssr = syy - b * sxy
    if ssr / syy < 100.0 * math.sqrt(2.220446049250313e-16):  # (almost) collinear: statsmodels gives -inf
        return -np.inf, 0, b, a
    e = np.empty(n)
    for t in range(n):
        e[t] = yv[t] - a - b * xv[t]
    d = np.empty(n - 1)
    for s in range(n - 1):
        d[s] = e[s + 1] - e[s]
    p = maxlag
    lo = p
    hi = n - 2  # rows r = t - 1 in [p, n-2]: y = d[r], lag i = d[r - i], level = e[r]
    m = hi - lo + 1
    kk = p + 2  # [level, D1..Dp, y]
    # first row of lagged-difference products, then down the diagonals
    dd = np.empty((p + 1, p + 1))
    for c in range(p + 1):
        s = 0.0
        for r in range(lo, hi + 1):
            s += d[r] * d[r - c]
        dd[0, c] = s
    for i in range(p):
        for j in range(i, p):
            dd[i + 1, j + 1] = dd[i, j] - d[hi - i] * d[hi - j] + d[lo - 1 - i] * d[lo - 1 - j]
    for i in range(p + 1):
        for j in range(i):
            dd[i, j] = dd[j, i]
    ld = np.empty(p + 1)
    for j in range(p + 1):
        s = 0.0
        for r in range(lo, hi + 1):
            s += e[r] * d[r - j]
        ld[j] = s
    ll = 0.0
    for r in range(lo, hi + 1):
        ll += e[r] * e[r]
    # Gram of [level, D1..Dp, y=D0]
    gram[0, 0] = ll
    for i in range(1, p + 1):
        gram[0, i] = ld[i]
        gram[i, 0] = ld[i]
        for j in range(1, p + 1):
            gram[i, j] = dd[i, j]
        gram[i, kk - 1] = dd[i, 0]
        gram[kk - 1, i] = dd[i, 0]
    gram[0, kk - 1] = ld[0]
    gram[kk - 1, 0] = ld[0]
    gram[kk - 1, kk - 1] = dd[0, 0]
    chol = _cholesky(gram, kk)
    if not math.isfinite(chol[kk - 1, kk - 1]):
        return np.nan, -1, b, a
    best_ic = np.inf
    best_k = 1
    tail = 0.0
    ssr_from = np.empty(kk)
    for i in range(kk - 1, -1, -1):
        tail += chol[kk - 1, i] * chol[kk - 1, i]
        ssr_from[i] = tail
    for k in range(1, p + 2):  # k regressors: level and k-1 lags
        s = ssr_from[k]
        llf = -m / 2.0 * (math.log(2.0 * math.pi) + math.log(s / m) + 1.0)
        ic = -2.0 * llf + 2.0 * k
        if ic < best_ic:
            best_ic = ic
            best_k = k
    u = best_k - 1  # lags used
    # refit: rows r in [u, n-2]; order [D1..Du, level, y]
    lo2 = u
    kf = u + 2
    for i in range(kf):
        for j in range(kf):
            final[i, j] = 0.0
    # start from the common-sample sums, then add rows r = u .. p-1
    for i in range(1, u + 1):
        for j in range(1, u + 1):
            final[i - 1, j - 1] = dd[i, j]
        final[i - 1, u] = ld[i]
        final[u, i - 1] = ld[i]
        final[i - 1, u + 1] = dd[i, 0]
        final[u + 1, i - 1] = dd[i, 0]
    final[u, u] = ll
    final[u, u + 1] = ld[0]
    final[u + 1, u] = ld[0]
    final[u + 1, u + 1] = dd[0, 0]
    for r in range(lo2, lo):
        for i in range(1, u + 1):
            vi = d[r - i]
            for j in range(1, u + 1):
                final[i - 1, j - 1] += vi * d[r - j]
            final[i - 1, u] += vi * e[r]
            final[u, i - 1] += vi * e[r]
            final[i - 1, u + 1] += vi * d[r]
            final[u + 1, i - 1] += vi * d[r]
        final[u, u] += e[r] * e[r]
        final[u, u + 1] += e[r] * d[r]
        final[u + 1, u] += e[r] * d[r]
        final[u + 1, u + 1] += d[r] * d[r]
    m2 = hi - lo2 + 1
    cf = _cholesky(final, kf)
    k = kf - 1
    rk = cf[k, k - 1]  # R[k-1, k] of the QR = L[k, k-1]
    dk = cf[k - 1, k - 1]
    s_res = abs(cf[k, k]) / math.sqrt(m2 - k)
    if not (math.isfinite(rk) and dk != 0.0 and s_res > 0.0):
        return np.nan, u, b, a
    return rk / s_res, u, b, a


@njit(cache=True, parallel=True, error_model="numpy")
def eg_batch(series, ys, xs, maxlag):
    """Engle-Granger ADF statistics for the ordered pairs (``ys[i]`` on ``xs[i]``) of ``series`` (n × T, one row per symbol)."""
    npairs = ys.shape[0]
    stat = np.empty(npairs)
    lags = np.empty(npairs, dtype=np.int64)
    beta = np.empty(npairs)
    alpha = np.empty(npairs)
    kk = maxlag + 2
    for i in prange(npairs):
        gram = np.empty((kk, kk))
        final = np.empty((kk, kk))
        s, lag, b, a = _eg_one(series[ys[i]], series[xs[i]], maxlag, gram, final)
        stat[i] = s
        lags[i] = lag
        beta[i] = b
        alpha[i] = a
    return stat, lags, beta, alpha


def default_maxlag(n: int) -> int:
    """statsmodels' default for ADF without deterministic terms: ``ceil(12 (n/100)^{1/4})``, at most ``n/2 - 1``."""
    return int(min(n // 2 - 1, math.ceil(12.0 * (n / 100.0) ** 0.25)))


def warm_up() -> None:
    rng = np.random.default_rng(0)
    p = np.ascontiguousarray(np.cumsum(rng.normal(size=(3, 64)), axis=1))
    eg_batch(p, np.array([0, 1]), np.array([1, 2]), 4)
