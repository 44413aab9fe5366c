"""Compiled (numba) inner loops for the rolling estimators.

Private module: the public, documented wrappers live in :mod:`analytics.regression`.
Every kernel takes and returns float64 NumPy arrays; NaN marks "undefined".
Compilation is cached on disk (``cache=True``) so only the first run on a machine
pays the JIT cost; :func:`warm_up` triggers it on tiny inputs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# MAD normalising constant, scipy.stats.norm.ppf(0.75): same value statsmodels uses.
GAUSSIAN_3_4 = 0.6744897501960817
_VAR_REL_EPS = 1e-10


@njit(cache=True, error_model="numpy")
def _window_sums(x, y, lo, hi, cx, cy):
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    syy = 0.0
    bad = 0
    for j in range(lo, hi):
        xv = x[j]
        yv = y[j]
        if math.isfinite(xv) and math.isfinite(yv):
            dx = xv - cx
            dy = yv - cy
            sx += dx
            sy += dy
            sxx += dx * dx
            sxy += dx * dy
            syy += dy * dy
        else:
            bad += 1
    return sx, sy, sxx, sxy, syy, bad


@njit(cache=True, error_model="numpy")
def rolling_ols_kernel(y, x, window):
    """Rolling OLS of ``y`` on ``[1, x]`` over trailing windows ending at each row.

    Sums are kept relative to a shift (the first value of the window at the last
    exact recomputation) and recomputed exactly every ``window`` rows, so the
    sliding add/remove never accumulates more than ``window`` rounding steps.
    Returns ``(alpha, beta, r2)``; rows with fewer than ``window`` points or a
    non-finite value in the window are NaN.
    """
    n = y.shape[0]
    alpha = np.full(n, np.nan)
    beta = np.full(n, np.nan)
    r2 = np.full(n, np.nan)
    if window < 2 or n < window:
        return alpha, beta, r2
    w = float(window)
    cx = 0.0
    cy = 0.0
    sx = sy = sxx = sxy = syy = 0.0
    bad = 0
    since = window  # force an exact recompute at the first full window
    for i in range(window - 1, n):
        lo = i - window + 1
        if since >= window:
            # choose a finite shift inside the window
            cx = 0.0
            cy = 0.0
            for j in range(lo, i + 1):
                if math.isfinite(x[j]) and math.isfinite(y[j]):
                    cx = x[j]
                    cy = y[j]
                    break
            sx, sy, sxx, sxy, syy, bad = _window_sums(x, y, lo, i + 1, cx, cy)
            since = 0
        else:
            # slide: add row i, drop row lo-1
            xa = x[i]
            ya = y[i]
            if math.isfinite(xa) and math.isfinite(ya):
                dx = xa - cx
                dy = ya - cy
                sx += dx
                sy += dy
                sxx += dx * dx
                sxy += dx * dy
                syy += dy * dy
            else:
                bad += 1
            xr = x[lo - 1]
            yr = y[lo - 1]
            if math.isfinite(xr) and math.isfinite(yr):
                dx = xr - cx
                dy = yr - cy
                sx -= dx
                sy -= dy
                sxx -= dx * dx
                sxy -= dx * dy
                syy -= dy * dy
            else:
                bad -= 1
        since += 1
        if bad > 0:
            continue
        varx = sxx - sx * sx / w
        if varx <= _VAR_REL_EPS * sxx or varx <= 0.0:
            continue
        cov = sxy - sx * sy / w
        vary = syy - sy * sy / w
        b = cov / varx
        beta[i] = b
        alpha[i] = (cy + sy / w) - b * (cx + sx / w)
        if vary > _VAR_REL_EPS * syy and vary > 0.0:
            r2[i] = cov * cov / (varx * vary)
        else:
            r2[i] = np.nan
    return alpha, beta, r2


@njit(cache=True, error_model="numpy")
def kalman_kernel(y, x, delta, obs_var, beta0, alpha0, p0, all_finite, out):
    """Kalman filter for ``y_t = beta_t x_t + alpha_t + v_t`` with random-walk state.

    State ``theta = [beta, alpha]``, transition covariance ``delta/(1-delta) I``,
    observation variance ``obs_var``, prior ``N([beta0, alpha0], p0 I)``.
    Returns an ``(n, 5)`` array of columns ``alpha, beta`` (posterior, uses data
    up to t), the one-step forecast error ``e_t = y_t - [x_t, 1] theta_{t|t-1}``,
    its variance ``Q_t`` and ``e_t / sqrt(Q_t)``. Non-finite observations skip
    the update (state carried, outputs NaN); ``all_finite=True`` (checked by the
    caller) skips that test. ``out`` is an ``(n, 5)`` array the caller allocates
    with NumPy (whose large allocations use huge pages: faulting in 40 MB of
    fresh memory from inside the loop costs more than the filter itself).
    """
    n = y.shape[0]
    vw = delta / (1.0 - delta)
    b = beta0
    a = alpha0
    p00 = p0
    p01 = 0.0
    p11 = p0
    for t in range(n):
        # predict: random walk, covariance grows by Vw
        r00 = p00 + vw
        r01 = p01
        r11 = p11 + vw
        xt = x[t]
        yt = y[t]
        if not all_finite and not (math.isfinite(xt) and math.isfinite(yt)):
            p00 = r00
            p01 = r01
            p11 = r11
            for c in range(5):
                out[t, c] = np.nan
            continue
        e = yt - (xt * b + a)
        # Q = h R h' + Ve with h = [x, 1]
        rh0 = r00 * xt + r01
        rh1 = r01 * xt + r11
        q = xt * rh0 + rh1 + obs_var
        inv_q = 1.0 / q
        k0 = rh0 * inv_q
        k1 = rh1 * inv_q
        b += k0 * e
        a += k1 * e
        # P = R - K h R
        p00 = r00 - k0 * rh0
        p01 = r01 - k0 * rh1
        p11 = r11 - k1 * rh1
        out[t, 0] = a
        out[t, 1] = b
        out[t, 2] = e
        out[t, 3] = q
        out[t, 4] = e * math.sqrt(inv_q)
    return out


@njit(cache=True, error_model="numpy")
def _wls2(dx, dy, w, n):
    """Weighted LS of dy on [1, dx] in one pass; returns (alpha, beta, ok).

    ``dx``/``dy`` are already shifted by a value inside the window, which keeps
    the one-pass moment formulas well conditioned.
    """
    sw = 0.0
    swx = 0.0
    swy = 0.0
    swxx = 0.0
    swxy = 0.0
    for j in range(n):
        wj = w[j]
        xj = dx[j]
        sw += wj
        swx += wj * xj
        swy += wj * dy[j]
        swxx += wj * xj * xj
        swxy += wj * xj * dy[j]
    return _solve_wls2(sw, swx, swy, swxx, swxy)


@njit(cache=True, error_model="numpy")
def _solve_wls2(sw, swx, swy, swxx, swxy):
    """(alpha, beta, ok) of a weighted line fit from its weighted moments;
    not ok (NaN) without weight or when x has (relatively) no spread."""
    if sw <= 0.0:
        return np.nan, np.nan, False
    mx = swx / sw
    my = swy / sw
    sxx = swxx - swx * mx
    if not sxx > _VAR_REL_EPS * swxx:
        return np.nan, np.nan, False
    b = (swxy - swx * my) / sxx
    return my - b * mx, b, True


@njit(cache=True, error_model="numpy")
def _median_inplace(a, n):
    """Median of ``a[:n]`` by Hoare quickselect; reorders ``a`` (scratch only)."""
    k = n // 2
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    upper = a[k]
    if n % 2 == 1:
        return upper
    lower = a[0]
    for m in range(1, k):
        if a[m] > lower:
            lower = a[m]
    return 0.5 * (lower + upper)


@njit(cache=True, error_model="numpy")
def _residuals(dx, dy, a, b, w, resid, absr, n):
    """Fill residuals and |residuals|; return the weighted SSR."""
    wssr = 0.0
    for j in range(n):
        r = dy[j] - (a + b * dx[j])
        resid[j] = r
        absr[j] = abs(r)
        wssr += w[j] * r * r
    return wssr


_BRACKET_CAP = 64


@njit(cache=True, error_model="numpy")
def _sorted_pick(buf, m, lo_rank, hi_rank):
    """Insertion-sort ``buf[:m]`` (a handful of values) and return two of its ranks."""
    for i in range(1, m):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v
    return buf[lo_rank], buf[hi_rank]


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def huber_window(x, y, t, maxiter, tol, param_rtol, w, resid, absr, dx, dy, buf):
    """Huber M-estimate of y on [1, x], the IRLS path of statsmodels ``RLM.fit``.

    Start from OLS; scale = MAD(resid, centre 0)/0.6745 re-estimated every
    iteration; weights ``min(1, t/|r/scale|)``; converged when the change of
    the deviance ``sum(rho(resid / wls_scale))`` is ``<= tol`` (statsmodels'
    ``conv="dev"``, with its WLS variance ``sum(w r^2)/(n-2)`` as the deviance
    scale) or after ``maxiter`` iterations, or once both parameters move by
    less than ``param_rtol`` (relative) in one step: from there statsmodels'
    further iterates only wander in rounding noise.

    Two passes per iteration: (1) deviance of the current residuals, the next
    weights and the weighted moments together; (2) new residuals, which also
    bracket the new MAD around the previous one, so the median is usually an
    insertion sort of a few values instead of a quickselect over the window
    (falling back to quickselect when the bracket misses or overflows).
    ``fastmath`` here only lets LLVM reassociate and fuse the sums (SIMD); the
    results move only by rounding (measured <= 2e-12 relative on beta against
    the sequential order), far inside the 1e-8 agreement with statsmodels.
    ``w``, ``resid``, ``absr``, ``dx``, ``dy`` are scratch arrays of the
    window's length, ``buf`` one of ``_BRACKET_CAP``.
    Returns ``(alpha, beta, iterations)``.
    """
    n = x.shape[0]
    x0 = x[0]
    y0 = y[0]
    for j in range(n):
        w[j] = 1.0
        dx[j] = x[j] - x0
        dy[j] = y[j] - y0
    a, b, ok = _wls2(dx, dy, w, n)
    if not ok:
        return np.nan, np.nan, 0
    dof = n - 2.0
    wls_var = _residuals(dx, dy, a, b, w, resid, absr, n) / dof
    med = _median_inplace(absr, n)
    scale = med / GAUSSIAN_3_4
    lo_rank = (n - 1) // 2
    hi_rank = n // 2
    min_width = 8.0 / n
    width = min_width
    half_t2 = 0.5 * t * t
    dev_prev = 0.0
    a_prev = a
    b_prev = b
    iteration = 1
    while True:
        # pass 1: deviance of the current fit, next weights, weighted moments
        inv = 1.0 / scale
        inv_d = 1.0 / wls_var
        dev = 0.0
        sw = 0.0
        swx = 0.0
        swy = 0.0
        swxx = 0.0
        swxy = 0.0
        for j in range(n):
            ar = abs(resid[j])
            zd = ar * inv_d
            if zd <= t:
                dev += 0.5 * zd * zd
            else:
                dev += zd * t - half_t2
            z = ar * inv
            wj = 1.0 if z <= t else t / z
            w[j] = wj
            xj = dx[j]
            sw += wj
            swx += wj * xj
            swy += wj * dy[j]
            swxx += wj * xj * xj
            swxy += wj * xj * dy[j]
        if iteration > 1:
            if not (abs(dev - dev_prev) > tol and iteration < maxiter):
                break
            if abs(b - b_prev) <= param_rtol * abs(b) and abs(a - a_prev) <= param_rtol * (
                abs(a) + abs(b * x0) + abs(y0)
            ):
                break
        dev_prev = dev
        if scale == 0.0:
            break
        a_prev = a
        b_prev = b
        a, b, ok = _solve_wls2(sw, swx, swy, swxx, swxy)
        if not ok:
            return np.nan, np.nan, iteration
        # pass 2: residuals, weighted SSR, and the values bracketing the old MAD
        lo_g = med * (1.0 - width)
        hi_g = med * (1.0 + width)
        below = 0
        m = 0
        wssr = 0.0
        for j in range(n):
            r = dy[j] - (a + b * dx[j])
            resid[j] = r
            ar = abs(r)
            absr[j] = ar
            wssr += w[j] * r * r
            if ar < lo_g:
                below += 1
            elif ar <= hi_g:
                if m < _BRACKET_CAP:
                    buf[m] = ar
                m += 1
        if m <= _BRACKET_CAP and below <= lo_rank and hi_rank < below + m:
            lower, upper = _sorted_pick(buf, m, lo_rank - below, hi_rank - below)
            new_med = upper if n % 2 == 1 else 0.5 * (lower + upper)
        else:
            new_med = _median_inplace(absr, n)
        if new_med > 0.0:
            width = min(0.5, max(min_width, 3.0 * abs(new_med - med) / new_med))
        med = new_med
        scale = med / GAUSSIAN_3_4
        wls_var = wssr / dof
        iteration += 1
    # undo the shift: y - y0 = a + b (x - x0)  =>  y = (a + y0 - b x0) + b x
    return a + y0 - b * x0, b, iteration


@njit(cache=True, parallel=True, error_model="numpy")
def rolling_huber_kernel(y, x, window, t, maxiter, tol, param_rtol):
    """Apply :func:`huber_window` to every trailing window; NaN where undefined.

    Windows are independent, so blocks of them run in parallel threads.
    Returns ``(alpha, beta, iterations)``.
    """
    n = y.shape[0]
    alpha = np.full(n, np.nan)
    beta = np.full(n, np.nan)
    iters = np.zeros(n, dtype=np.int64)
    finite = np.empty(n, dtype=np.int64)
    for i in range(n):
        finite[i] = 1 if (math.isfinite(x[i]) and math.isfinite(y[i])) else 0
    nbad = np.cumsum(1 - finite)
    first = window - 1
    if n <= first:
        return alpha, beta, iters
    nblocks = 64
    per = (n - first + nblocks - 1) // nblocks
    for blk in prange(nblocks):
        w = np.empty(window)
        resid = np.empty(window)
        absr = np.empty(window)
        dx = np.empty(window)
        dy = np.empty(window)
        buf = np.empty(_BRACKET_CAP)
        start = first + blk * per
        stop = min(n, start + per)
        for i in range(start, stop):
            lo = i - window + 1
            bad = nbad[i] - (nbad[lo - 1] if lo > 0 else 0)
            if bad > 0:
                continue
            a, b, it = huber_window(x[lo : i + 1], y[lo : i + 1], t, maxiter, tol, param_rtol, w, resid, absr, dx, dy, buf)
            alpha[i] = a
            beta[i] = b
            iters[i] = it
    return alpha, beta, iters


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel on tiny inputs."""
    a = np.linspace(1.0, 2.0, 16)
    b = a * 1.5 + np.sin(a)
    rolling_ols_kernel(b, a, 4)
    kalman_kernel(b, a, 1e-4, 1e-3, 0.0, 0.0, 1.0, True, np.empty((16, 5)))
    kalman_kernel(b, a, 1e-4, 1e-3, 0.0, 0.0, 1.0, False, np.empty((16, 5)))
    rolling_huber_kernel(b, a, 8, 1.345, 50, 1e-8, 1e-11)
    positions_kernel(b - 2.0, b, a, a, a, a, a, 1.0, 0.0, np.inf, True, 0.0, np.inf)
    out = np.empty((16, 6))
    kalman_schedule_kernel(b, a, a * 0 + 1e-6, a * 0 + 1e-3, 0.0, 0.0, 1.0, 0.0, 1.0, out)
    kalman_mle(b, a, 0, 16, 4, -6.0, 0.0, np.nan)


# reason codes of a position change (``positions_kernel``)
NO_CHANGE, ENTRY, EXIT, STOP = 0, 1, 2, 3


@njit(cache=True, error_model="numpy")
def positions_kernel(z, y, x, beta, alpha, mean, std, entry, exit_level, stop, held_exit, beta_lo, beta_hi):
    """The one entry/exit/stop rule, shared by the ``signal`` column and the backtest.

    Per bar ``t`` (decision after observing bar t):

    * flat: short the spread (-1) when ``z_t > entry``, long (+1) when
      ``z_t < -entry`` — only if the hedge that scored bar t, ``beta[t]``,
      lies strictly inside ``(beta_lo, beta_hi)`` and that side is not
      blocked. The trade freezes ``beta[t], alpha[t], mean[t], std[t]``.
    * in a trade: the judged value is the **held** z, ``(y_t - beta0 x_t -
      alpha0 - mean0) / std0`` (the spread the legs actually hold, in the units
      of z at entry) when ``held_exit``, else ``z_t``. A short exits when it is
      ``<= exit`` and stops when ``>= stop``; a long exits at ``>= -exit`` and
      stops at ``<= -stop`` (``stop = inf``: no stop).
    * after a stop, that side stays blocked until ``z`` is back inside the entry
      band (``z <= entry`` for shorts, ``z >= -entry`` for longs): no same-side
      re-entry while the excursion that stopped it goes on.
    * a NaN ``z_t`` (warm-up, stale leg) changes nothing.

    Returns ``(position, reason)`` int8 arrays: the position after each bar and
    the reason code of a change at that bar (``ENTRY/EXIT/STOP``, else 0).
    """
    n = z.shape[0]
    pos_out = np.zeros(n, dtype=np.int8)
    why = np.zeros(n, dtype=np.int8)
    pos = 0
    blocked = 0
    b0 = 0.0
    a0 = 0.0
    m0 = 0.0
    s0 = 1.0
    for t in range(n):
        zt = z[t]
        if zt == zt:  # not NaN
            if blocked == -1 and zt <= entry or blocked == 1 and zt >= -entry:
                blocked = 0
            if pos == 0:
                side = 0
                if zt > entry and blocked != -1:
                    side = -1
                elif zt < -entry and blocked != 1:
                    side = 1
                if side != 0:
                    bt = beta[t]
                    st = std[t]
                    if bt > beta_lo and bt < beta_hi and st > 0.0 and alpha[t] == alpha[t] and mean[t] == mean[t]:
                        pos = side
                        why[t] = ENTRY
                        b0 = bt
                        a0 = alpha[t]
                        m0 = mean[t]
                        s0 = st
            else:
                judged = zt
                if held_exit:
                    judged = (y[t] - b0 * x[t] - a0 - m0) / s0
                if judged == judged:
                    if pos == -1:
                        if judged >= stop:
                            pos = 0
                            blocked = -1
                            why[t] = STOP
                        elif judged <= exit_level:
                            pos = 0
                            why[t] = EXIT
                    else:
                        if judged <= -stop:
                            pos = 0
                            blocked = 1
                            why[t] = STOP
                        elif judged >= -exit_level:
                            pos = 0
                            why[t] = EXIT
        pos_out[t] = pos
    return pos_out, why


# -- Kalman filter with a general prior and a per-bar variance schedule -------------------------------


@njit(cache=True, error_model="numpy")
def kalman_schedule_kernel(y, x, vw, ve, b0, a0, p00, p01, p11, out):
    """Kalman filter of ``y_t = beta_t x_t + alpha_t + v_t`` (random-walk state).

    ``vw[t]``/``ve[t]``: state-noise variance (each of beta, alpha) and
    observation variance used at bar ``t`` (a piecewise-constant schedule);
    prior ``N([b0, a0], [[p00, p01], [p01, p11]])`` before bar 0. Fills ``out``
    ``(n, 6)``: posterior alpha, beta; forecast error ``e_t``; its variance
    ``Q_t``; ``e_t / sqrt(Q_t)``; the posterior standard deviation of beta
    ``sqrt(P_t[0, 0])`` (its ±2σ band). Non-finite inputs skip the update (NaN row).
    """
    n = y.shape[0]
    b = b0
    a = a0
    for t in range(n):
        r00 = p00 + vw[t]
        r01 = p01
        r11 = p11 + vw[t]
        xt = x[t]
        yt = y[t]
        if not (math.isfinite(xt) and math.isfinite(yt)):
            p00 = r00
            p01 = r01
            p11 = r11
            for c in range(6):
                out[t, c] = np.nan
            continue
        e = yt - (xt * b + a)
        rh0 = r00 * xt + r01
        rh1 = r01 * xt + r11
        q = xt * rh0 + rh1 + ve[t]
        inv_q = 1.0 / q
        k0 = rh0 * inv_q
        k1 = rh1 * inv_q
        b += k0 * e
        a += k1 * e
        p00 = r00 - k0 * rh0
        p01 = r01 - k0 * rh1
        p11 = r11 - k1 * rh1
        out[t, 0] = a
        out[t, 1] = b
        out[t, 2] = e
        out[t, 3] = q
        out[t, 4] = e * math.sqrt(inv_q)
        out[t, 5] = math.sqrt(max(p00, 0.0))
    return out


@njit(cache=True, error_model="numpy")
def ols_prior(y, x, lo, m):
    """OLS of ``y`` on ``[1, x]`` over rows ``lo .. lo+m-1``: ``(beta, alpha, P)`` with
    ``P = (X'X)^-1`` (the posterior covariance per unit observation variance), or
    ``ok = False`` when x has no spread there. Returns ``(b, a, p00, p01, p11, ok)``."""
    sx = 0.0
    sy = 0.0
    for j in range(lo, lo + m):
        sx += x[j]
        sy += y[j]
    mx = sx / m
    my = sy / m
    sxx = 0.0
    sxy = 0.0
    for j in range(lo, lo + m):
        dx = x[j] - mx
        sxx += dx * dx
        sxy += dx * (y[j] - my)
    if not sxx > 1e-14 * (mx * mx * m + 1e-300):
        return 0.0, 0.0, 0.0, 0.0, 0.0, False
    b = sxy / sxx
    a = my - b * mx
    # (X'X)^-1 for X = [x, 1] (state order beta, alpha)
    p00 = 1.0 / sxx
    p01 = -mx / sxx
    p11 = 1.0 / m + mx * mx / sxx
    return b, a, p00, p01, p11, True


@njit(cache=True, error_model="numpy")
def kalman_profile_nll(y, x, lo, hi, m, ratio):
    """Concentrated negative log-likelihood of the random-walk-hedge model on rows ``lo .. hi-1``.

    Observation variance is profiled out: with ``Ve = 1`` and ``Vw = ratio``
    the filter gives errors ``e_t`` and scaled variances ``q_t``; then
    ``Ve_hat = mean(e^2 / q)`` and ``-log L = n/2 (1 + log(2 pi Ve_hat)) + 1/2 sum log q``.
    The state starts from OLS on the first ``m`` rows (prior covariance
    ``Ve (X'X)^-1``); the likelihood uses rows ``lo+m .. hi-1``.
    Returns ``(nll, ve_hat)``; ``(inf, nan)`` when undefined.
    """
    b, a, p00, p01, p11, ok = ols_prior(y, x, lo, m)
    if not ok:
        return np.inf, np.nan
    s_e2q = 0.0
    s_logq = 0.0
    k = 0
    for t in range(lo + m, hi):
        r00 = p00 + ratio
        r01 = p01
        r11 = p11 + ratio
        xt = x[t]
        e = y[t] - (xt * b + a)
        rh0 = r00 * xt + r01
        rh1 = r01 * xt + r11
        q = xt * rh0 + rh1 + 1.0
        if not q > 0.0:
            return np.inf, np.nan
        inv_q = 1.0 / q
        k0 = rh0 * inv_q
        k1 = rh1 * inv_q
        b += k0 * e
        a += k1 * e
        p00 = r00 - k0 * rh0
        p01 = r01 - k0 * rh1
        p11 = r11 - k1 * rh1
        s_e2q += e * e * inv_q
        s_logq += math.log(q)
        k += 1
    if k < 2 or not s_e2q > 0.0:
        return np.inf, np.nan
    ve = s_e2q / k
    return 0.5 * k * (1.0 + math.log(2.0 * math.pi * ve)) + 0.5 * s_logq, ve


@njit(cache=True, error_model="numpy")
def _golden_log_ratio(y, x, lo, hi, m, a_, b_, tol):
    """Golden-section minimum of the profile NLL over ``log10 ratio`` in ``[a_, b_]``."""
    gr = 0.6180339887498949
    c = b_ - gr * (b_ - a_)
    d = a_ + gr * (b_ - a_)
    fc, _ = kalman_profile_nll(y, x, lo, hi, m, 10.0**c)
    fd, _ = kalman_profile_nll(y, x, lo, hi, m, 10.0**d)
    while b_ - a_ > tol:
        if fc < fd:
            b_ = d
            d = c
            fd = fc
            c = b_ - gr * (b_ - a_)
            fc, _ = kalman_profile_nll(y, x, lo, hi, m, 10.0**c)
        else:
            a_ = c
            c = d
            fc = fd
            d = a_ + gr * (b_ - a_)
            fd, _ = kalman_profile_nll(y, x, lo, hi, m, 10.0**d)
    return 0.5 * (a_ + b_)


@njit(cache=True, error_model="numpy")
def kalman_mle(y, x, lo, hi, m, log10_lo, log10_hi, warm):
    """Maximum-likelihood ``(ratio, ve, nll)`` of the random-walk-hedge model on rows ``lo .. hi-1``.

    ``ratio = Vw / Ve``. With a finite ``warm`` (log10 ratio of a previous,
    overlapping window) a golden-section search runs on ``warm ± 1`` decade;
    otherwise, or when that optimum lands on the bracket's edge, a grid of
    half decades over ``[log10_lo, log10_hi]`` picks the bracket first. The
    search stops at 1e-3 decades (0.2 % in the ratio).
    """
    tol = 1e-3
    if math.isfinite(warm):
        a_ = max(log10_lo, warm - 1.0)
        b_ = min(log10_hi, warm + 1.0)
        l_best = _golden_log_ratio(y, x, lo, hi, m, a_, b_, tol)
        inside = (l_best - a_ > 0.01 or a_ <= log10_lo) and (b_ - l_best > 0.01 or b_ >= log10_hi)
        if inside:
            nll, ve = kalman_profile_nll(y, x, lo, hi, m, 10.0**l_best)
            if math.isfinite(nll):
                return 10.0**l_best, ve, nll
    best = np.inf
    best_l = log10_lo
    step = 0.5
    g = log10_lo
    while g <= log10_hi + 1e-12:
        nll, _ = kalman_profile_nll(y, x, lo, hi, m, 10.0**g)
        if nll < best:
            best = nll
            best_l = g
        g += step
    if not math.isfinite(best):
        return np.nan, np.nan, np.inf
    l_best = _golden_log_ratio(y, x, lo, hi, m, max(log10_lo, best_l - step), min(log10_hi, best_l + step), tol)
    nll, ve = kalman_profile_nll(y, x, lo, hi, m, 10.0**l_best)
    if best < nll:  # the grid point was better (flat objective): keep it
        l_best = best_l
        nll, ve = kalman_profile_nll(y, x, lo, hi, m, 10.0**l_best)
    return 10.0**l_best, ve, nll
