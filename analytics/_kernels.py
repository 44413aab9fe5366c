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
    positions_kernel(b - 2.0, 1.0, 0.0, np.inf)


# reason codes of a position change (``next_position``)
NO_CHANGE, ENTRY, EXIT, STOP = 0, 1, 2, 3


def next_position(pos, zt, entry, exit_level, stop):
    """The one entry/exit/stop rule: position after a bar with finite signal ``zt``.

    +1 long spread (entered when z < -entry), -1 short (z > entry), 0 flat; a
    short exits at z <= exit or stops at z >= stop, a long exits at z >= -exit or
    stops at z <= -stop (``stop=inf``: no stop). Returns ``(position, reason)``
    with a reason code ``NO_CHANGE/ENTRY/EXIT/STOP``. Plain Python, so the
    backtest calls it directly and :func:`positions_kernel` compiles the same source.
    """
    if pos == 0:
        if zt > entry:
            return -1, ENTRY
        if zt < -entry:
            return 1, ENTRY
        return 0, NO_CHANGE
    if pos == -1:
        if zt >= stop:
            return 0, STOP
        if zt <= exit_level:
            return 0, EXIT
        return -1, NO_CHANGE
    if zt <= -stop:
        return 0, STOP
    if zt >= -exit_level:
        return 0, EXIT
    return 1, NO_CHANGE


_next_position_compiled = njit(cache=True)(next_position)


@njit(cache=True)
def positions_kernel(z, entry, exit_level, stop):
    """Spread position after each bar by :func:`next_position`; NaN keeps the position."""
    n = z.shape[0]
    out = np.zeros(n, dtype=np.int8)
    pos = 0
    for t in range(n):
        zt = z[t]
        if zt == zt:  # not NaN
            pos = _next_position_compiled(pos, zt, entry, exit_level, stop)[0]
        out[t] = pos
    return out
