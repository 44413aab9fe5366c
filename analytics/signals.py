"""Spread, rolling z-score and rolling correlation — the pair's trading signal.

Causality: ``spread(..., lag=1)`` scores bar *t* with a hedge fitted up to
*t-1*; ``zscore(..., lag=1)`` normalises bar *t* by the mean and standard
deviation of bars *t-window .. t-1*. With ``lag=0`` both include bar *t*
itself (in-sample, for display and research only, labelled as such).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics._validate import ArrayLike, aligned_pair, as_series, check_lag, check_window

__all__ = ["rolling_correlation", "spread", "spread_moments", "zscore"]

Z_METHODS = ("rolling", "ewma")


def spread(y: ArrayLike, x: ArrayLike, hedge: pd.DataFrame, lag: int = 1) -> pd.Series:
    """``spread_t = y_t - (beta_{t-lag} x_t + alpha_{t-lag})``.

    Parameters
    ----------
    y, x
        Aligned legs (same units the hedge was estimated in: raw or log prices).
    hedge
        DataFrame with ``alpha`` and ``beta`` columns on the same index, e.g. from
        ``rolling_ols``/``kalman_hedge``/``rolling_huber``.
    lag
        Bars between the hedge estimate and the bar it scores; 1 (default) is
        out-of-sample, 0 is in-sample.
    """
    ys, xs = aligned_pair(y, x)
    lag = check_lag(lag)
    if not {"alpha", "beta"} <= set(hedge.columns):
        raise ValueError("hedge must have 'alpha' and 'beta' columns")
    if len(hedge) != len(ys):
        raise ValueError(f"hedge has {len(hedge)} rows, y has {len(ys)}")
    beta = hedge["beta"].to_numpy(dtype=float)
    alpha = hedge["alpha"].to_numpy(dtype=float)
    if lag:
        beta = np.concatenate([np.full(lag, np.nan), beta[:-lag]])[: len(ys)]
        alpha = np.concatenate([np.full(lag, np.nan), alpha[:-lag]])[: len(ys)]
    out = ys.to_numpy() - (beta * xs.to_numpy() + alpha)
    return pd.Series(out, index=ys.index, name="spread" if lag else "spread_in_sample")


def spread_moments(
    series: ArrayLike, window: int, lag: int = 1, min_periods: int | None = None, method: str = "rolling"
) -> tuple[pd.Series, pd.Series]:
    """``(mean, std)`` that standardise bar *t*: of bars ``t-lag-window+1 .. t-lag``.

    ``method="rolling"``: equal weights, ddof 1. ``method="ewma"``: exponential
    weights with span ``window`` (centre of mass ``(window-1)/2``), bias-corrected
    variance, at least ``min_periods`` bars. A zero standard deviation is NaN.
    """
    s = as_series(series, "series")
    window = check_window(window)
    lag = check_lag(lag)
    mp = window if min_periods is None else int(min_periods)
    if not 2 <= mp <= window:
        raise ValueError(f"min_periods must be in [2, window], got {min_periods}")
    if method == "rolling":
        roll = s.rolling(window, min_periods=mp)
    elif method == "ewma":
        roll = s.ewm(span=window, min_periods=mp, adjust=True, ignore_na=True)
    else:
        raise ValueError(f"method must be one of {Z_METHODS}, got {method!r}")
    mean = roll.mean().shift(lag)
    std = roll.std().shift(lag) if method == "ewma" else roll.std(ddof=1).shift(lag)
    std = std.where(std > 1e-12 * mean.abs().clip(lower=1e-300))
    return mean.rename("spread_mean"), std.rename("spread_std")


def zscore(series: ArrayLike, window: int, lag: int = 1, min_periods: int | None = None, method: str = "rolling") -> pd.Series:
    """Rolling z-score ``(s_t - mean) / std`` with mean/std (ddof=1) of bars ``t-lag-window+1 .. t-lag``.

    ``min_periods`` (default ``window``) is the number of non-NaN bars the
    window needs; fewer gives NaN. A zero standard deviation gives NaN, not inf.
    ``method="ewma"`` weights the window exponentially (see :func:`spread_moments`).
    """
    s = as_series(series, "series")
    mean, std = spread_moments(s, window, lag, min_periods, method)
    return ((s - mean) / std).rename("zscore")


def rolling_correlation(a: ArrayLike, b: ArrayLike, window: int, on: str = "returns") -> pd.Series:
    """Rolling Pearson correlation over the trailing ``window`` bars (causal).

    ``on="returns"`` (default) correlates simple returns — what matters for a
    hedge; ``on="levels"`` correlates price levels (spuriously high for trending
    series; labelled ``corr_levels``).
    """
    sa, sb = aligned_pair(a, b)
    window = check_window(window)
    if on == "returns":
        sa, sb = sa.pct_change(fill_method=None), sb.pct_change(fill_method=None)
        name = "corr_returns"
    elif on == "levels":
        name = "corr_levels"
    else:
        raise ValueError("on must be 'returns' or 'levels'")
    return sa.rolling(window, min_periods=window).corr(sb).rename(name)
