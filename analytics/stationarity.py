"""Unit-root and mean-reversion diagnostics: ADF, Engle-Granger, half-life, Hurst.

``adf`` reproduces statsmodels ``adfuller`` (same lag search, same statistic,
MacKinnon (2010) p-values and critical values reused from statsmodels) but
fits every candidate lag from **one** QR factorisation of the full lag matrix
instead of one OLS per lag. These functions are full-sample (in-sample)
diagnostics: run them on data up to the decision time only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg
from statsmodels.tsa.adfvalues import mackinnoncrit, mackinnonp

from analytics._validate import ArrayLike, aligned_pair, as_series

__all__ = ["ADFResult", "EngleGrangerResult", "adf", "engle_granger", "half_life", "hurst"]

_TRENDS = {"n": 0, "c": 1, "ct": 2, "ctt": 3}


@dataclass(frozen=True)
class ADFResult:
    """Augmented Dickey-Fuller test (H0: unit root).

    ``statistic`` is the t-value of the lagged level; ``lags`` the number of
    lagged differences used; ``nobs`` the observations in the final regression.
    """

    statistic: float
    pvalue: float
    lags: int
    nobs: int
    critical_values: dict[str, float]
    icbest: float | None
    regression: str = "c"

    def reject(self, level: str = "5%") -> bool:
        """True when the statistic is below the critical value at ``level``."""
        return self.statistic < self.critical_values[level]


@dataclass(frozen=True)
class EngleGrangerResult:
    """Engle-Granger two-step cointegration test of y on x (H0: no cointegration).

    Critical values and p-value are MacKinnon's *cointegration* ones for two
    variables (as statsmodels ``coint``), not the plain Dickey-Fuller ones.
    """

    statistic: float
    pvalue: float
    critical_values: dict[str, float]
    lags: int
    nobs: int
    alpha: float
    beta: float
    residuals: pd.Series = field(repr=False)

    def reject(self, level: str = "5%") -> bool:
        return self.statistic < self.critical_values[level]


def _trend_columns(n: int, regression: str) -> np.ndarray:
    t = np.arange(1, n + 1, dtype=float)
    cols = [np.ones(n), t, t * t][: _TRENDS[regression]]
    return np.column_stack(cols) if cols else np.empty((n, 0))


def _adf_matrix(x: np.ndarray, lags: int, regression: str, level_last: bool) -> np.ndarray:
    """Fortran-ordered ``[trend terms | level | lagged diffs | Δx]`` (or level after the lags).

    Rows are t = lags+1 .. n-1: ``Δx_t`` regressed on ``x_{t-1}`` and
    ``Δx_{t-1} .. Δx_{t-lags}``; the dependent ``Δx_t`` is the last column.
    """
    dx = np.diff(x)
    m = dx.shape[0] - lags
    ntrend = _TRENDS[regression]
    out = np.empty((m, ntrend + lags + 2), order="F")
    if ntrend:
        out[:, :ntrend] = _trend_columns(m, regression)
    level_col = ntrend + lags if level_last else ntrend
    first_lag = ntrend if level_last else ntrend + 1
    out[:, level_col] = x[lags : lags + m]
    for k in range(1, lags + 1):
        out[:, first_lag + k - 1] = dx[lags - k : lags - k + m]
    out[:, -1] = dx[lags:]
    return out


def _r_factor(a: np.ndarray) -> np.ndarray:
    """Triangular factor of a QR decomposition, computed in place (LAPACK geqrf)."""
    return scipy.linalg.qr(a, mode="r", overwrite_a=True, check_finite=False)[0]


def _ols_tstat_last(augmented: np.ndarray) -> float:
    """t-value of the last regressor in ``[X | y]`` (y last), from one QR.

    With ``R`` the triangular factor, the last coefficient is ``R[k-1, k] / R[k-1, k-1]``,
    its standard error ``s / |R[k-1, k-1]|`` and ``s^2 = R[k, k]^2 / (m - k)``.
    """
    m, k = augmented.shape[0], augmented.shape[1] - 1
    r = _r_factor(augmented)
    s = abs(r[k, k]) / math.sqrt(m - k)
    return float(r[k - 1, k] * np.sign(r[k - 1, k - 1]) / s)


def adf(
    series: ArrayLike, regression: str = "c", autolag: str | None = "AIC", maxlag: int | None = None
) -> ADFResult:
    """Augmented Dickey-Fuller unit-root test, identical to statsmodels ``adfuller``.

    Parameters
    ----------
    series
        Levels (e.g. a spread), no NaNs.
    regression
        Deterministic terms: ``"c"`` constant, ``"ct"`` + trend, ``"ctt"``, ``"n"`` none.
    autolag
        ``"AIC"``, ``"BIC"``, ``"t-stat"`` or ``None`` (use ``maxlag``).
    maxlag
        Largest lag tried; default ``ceil(12 (n/100)^{1/4})`` capped at ``n/2 - ntrend - 1``.
    """
    x = as_series(series, "series").to_numpy()
    regression = regression.lower()
    if regression not in _TRENDS:
        raise ValueError(f"regression must be one of {sorted(_TRENDS)}, got {regression!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError("adf: series contains NaN or inf; drop or fill them first")
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"adf needs at least 4 observations, got {n}")
    if x.max() == x.min():
        raise ValueError("adf: series is constant")
    ntrend = _TRENDS[regression]
    if maxlag is None:
        maxlag = int(np.ceil(12.0 * np.power(n / 100.0, 1 / 4.0)))
        maxlag = min(n // 2 - ntrend - 1, maxlag)
        if maxlag < 0:
            raise ValueError("adf: sample too short for the chosen regression")
    elif maxlag > n // 2 - ntrend - 1 or maxlag < 0:
        raise ValueError(f"adf: maxlag must be in [0, n/2 - 1 - ntrend] = [0, {n // 2 - ntrend - 1}]")
    method = autolag.lower() if autolag else None
    icbest: float | None = None
    if method is None:
        usedlag = maxlag
    else:
        if method not in ("aic", "bic", "t-stat"):
            raise ValueError(f"autolag must be 'AIC', 'BIC', 't-stat' or None, got {autolag!r}")
        full = _adf_matrix(x, maxlag, regression, level_last=False)
        m = full.shape[0]
        # One QR of [X | y]: the fit on X's first k columns has
        # SSR_k = sum_{i>=k} R[i, -1]^2 (the last diagonal entry is the full residual).
        r = _r_factor(full)
        tail = r[:, -1] ** 2
        ssr_from = np.cumsum(tail[::-1])[::-1]  # ssr_from[k] = sum_{i>=k} tail[i]
        start = ntrend + 1  # deterministic terms + level
        best = None
        for k in range(start, start + maxlag + 1):
            ssr = ssr_from[k]
            if method == "t-stat":
                continue
            llf = -m / 2.0 * (math.log(2 * math.pi) + math.log(ssr / m) + 1.0)
            ic = -2.0 * llf + (2.0 * k if method == "aic" else math.log(m) * k)
            if best is None or (ic, k) < best:
                best = (ic, k)
        if method == "t-stat":
            stop = 1.6448536269514722
            bestk = start + maxlag
            icbest = 0.0
            for k in range(start + maxlag, start - 1, -1):
                s2 = ssr_from[k] / (m - k)
                icbest = abs(r[k - 1, -1]) / math.sqrt(s2)
                bestk = k
                if icbest >= stop:
                    break
        else:
            assert best is not None
            icbest, bestk = best
        usedlag = bestk - start
    final = _adf_matrix(x, usedlag, regression, level_last=True)
    nobs = final.shape[0]
    stat = _ols_tstat_last(final)
    crit = mackinnoncrit(N=1, regression=regression, nobs=nobs)
    return ADFResult(
        statistic=stat,
        pvalue=float(mackinnonp(stat, regression=regression, N=1)),
        lags=int(usedlag),
        nobs=int(nobs),
        critical_values={"1%": float(crit[0]), "5%": float(crit[1]), "10%": float(crit[2])},
        icbest=None if icbest is None else float(icbest),
        regression=regression,
    )


def engle_granger(
    y: ArrayLike, x: ArrayLike, trend: str = "c", autolag: str | None = "AIC", maxlag: int | None = None
) -> EngleGrangerResult:
    """Engle-Granger test: OLS ``y = alpha + beta x + u``, then ADF (no constant) on ``u``.

    Matches statsmodels ``coint(y, x, trend=trend)``: the statistic is the ADF
    t-value of the residuals, the p-value and critical values come from
    MacKinnon's tables for N=2 variables (critical values at ``nobs - 1``).
    Returns also the hedge (``alpha``, ``beta``) and residuals used.
    """
    ys, xs = aligned_pair(y, x)
    mask = np.isfinite(ys.to_numpy()) & np.isfinite(xs.to_numpy())
    if not mask.all():
        raise ValueError("engle_granger: inputs contain NaN; align and drop them first")
    trend = trend.lower()
    if trend not in ("c", "ct", "ctt"):
        raise ValueError("engle_granger: trend must be 'c', 'ct' or 'ctt'")
    yv = ys.to_numpy()
    n = yv.shape[0]
    if n < 10:
        raise ValueError(f"engle_granger needs at least 10 observations, got {n}")
    design = np.column_stack([xs.to_numpy(), _trend_columns(n, trend)])
    coef, *_ = np.linalg.lstsq(design, yv, rcond=None)
    resid = yv - design @ coef
    tss = float(((yv - yv.mean()) ** 2).sum())
    if tss == 0.0 or float(xs.max()) == float(xs.min()):
        raise ValueError("engle_granger: a series is constant")
    r2 = 1.0 - float(resid @ resid) / tss
    if r2 < 1 - 100 * math.sqrt(np.finfo(float).eps):
        res = adf(resid, regression="n", autolag=autolag, maxlag=maxlag)
        stat, lags = res.statistic, res.lags
    else:  # (almost) perfectly collinear: statsmodels returns -inf too
        stat, lags = -math.inf, 0
    crit = mackinnoncrit(N=2, regression=trend, nobs=n - 1)
    return EngleGrangerResult(
        statistic=float(stat),
        pvalue=float(mackinnonp(stat, regression=trend, N=2)),
        critical_values={"1%": float(crit[0]), "5%": float(crit[1]), "10%": float(crit[2])},
        lags=int(lags),
        nobs=n,
        alpha=float(coef[1]),
        beta=float(coef[0]),
        residuals=pd.Series(resid, index=ys.index, name="residual"),
    )


def half_life(spread: ArrayLike) -> float:
    """Mean-reversion half-life in bars from the AR(1)/OU fit ``Δs_t = c + λ s_{t-1} + e``.

    ``half_life = -ln 2 / ln(1 + λ)`` (exact for the discrete AR(1) with
    coefficient ``1 + λ``). Returns ``inf`` when ``λ >= 0`` (no mean reversion)
    and NaN when ``1 + λ <= 0`` (oscillating) or the input is too short.
    """
    s = as_series(spread, "spread").dropna().to_numpy()
    if s.shape[0] < 3 or s.max() == s.min():
        return math.nan
    lagged = s[:-1]
    ds = np.diff(s)
    lx = lagged - lagged.mean()
    denom = float(lx @ lx)
    if denom == 0.0:
        return math.nan
    lam = float(lx @ (ds - ds.mean())) / denom
    if lam >= 0:
        return math.inf
    if 1 + lam <= 0:
        return math.nan
    return -math.log(2.0) / math.log1p(lam)


def hurst(series: ArrayLike, max_lag: int = 100) -> float:
    """Hurst exponent from the scaling of lagged differences, ``std(x_{t+k} - x_t) ~ k^H``.

    Slope of ``log std`` on ``log k`` for ``k = 2 .. min(max_lag, n // 4)``.
    H < 0.5 mean-reverting, = 0.5 random walk, > 0.5 trending. NaN if too short.
    """
    x = as_series(series, "series").dropna().to_numpy()
    top = min(max_lag, x.shape[0] // 4)
    if top < 4:
        return math.nan
    lags = np.arange(2, top + 1)
    tau = np.array([np.std(x[k:] - x[:-k]) for k in lags])
    ok = tau > 0
    if ok.sum() < 3:
        return math.nan
    return float(np.polyfit(np.log(lags[ok]), np.log(tau[ok]), 1)[0])
