"""Price statistics: returns, mean/variance, realised volatility (plain and rolling).

Volatility is annualised by **elapsed time** for a market open 24/7 (crypto):
with a DatetimeIndex each log return is scaled by ``sqrt(its own Δt in
years)`` — a return across a gap of k bars carries k bars of variance and is
weighted so — and the standard deviation of those scaled returns is the
annual volatility. Without timestamps every bar is ``bar_seconds`` long
(``periods_per_year = 365 * 86400 / bar_seconds``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics._validate import ArrayLike, as_series, check_window

__all__ = [
    "log_returns",
    "mean",
    "periods_per_year",
    "realized_volatility",
    "rolling_mean",
    "rolling_variance",
    "rolling_volatility",
    "scaled_log_returns",
    "simple_returns",
    "variance",
]

SECONDS_PER_YEAR = 365.0 * 86400.0


def periods_per_year(bar_seconds: float) -> float:
    """Bars per year for a 24/7 market, e.g. 525,600 for 1-minute bars."""
    if not bar_seconds > 0:
        raise ValueError(f"bar_seconds must be > 0, got {bar_seconds}")
    return SECONDS_PER_YEAR / bar_seconds


def simple_returns(prices: ArrayLike) -> pd.Series:
    """``p_t / p_{t-1} - 1``; the first row is NaN."""
    return as_series(prices, "prices").pct_change(fill_method=None).rename("return")


def log_returns(prices: ArrayLike) -> pd.Series:
    """``ln p_t - ln p_{t-1}``; the first row is NaN. Non-positive prices raise."""
    p = as_series(prices, "prices")
    if (p <= 0).any():
        raise ValueError("log_returns needs strictly positive prices")
    return np.log(p).diff().rename("log_return")


def mean(values: ArrayLike) -> float:
    """Mean of the finite values (NaN if none)."""
    v = as_series(values, "values").dropna()
    return float(v.mean()) if len(v) else math.nan


def variance(values: ArrayLike, ddof: int = 1) -> float:
    """Sample variance (``ddof=1``) of the finite values; NaN if too few."""
    v = as_series(values, "values").dropna()
    return float(v.var(ddof=ddof)) if len(v) > ddof else math.nan


def scaled_log_returns(prices: ArrayLike, bar_seconds: float | None = None) -> pd.Series:
    """Log returns divided by ``sqrt(Δt in years)``: their standard deviation is the annual volatility.

    ``Δt`` is the time since the previous price (DatetimeIndex), else
    ``bar_seconds``. The first row is NaN; zero or negative ``Δt`` gives NaN.
    """
    p = as_series(prices, "prices")
    r = log_returns(p)
    if isinstance(p.index, pd.DatetimeIndex):
        dt = np.diff(p.index.as_unit("ns").asi8).astype(float) / 1e9
        dt_years = np.concatenate([[np.nan], dt]) / SECONDS_PER_YEAR
        dt_years[~(dt_years > 0)] = np.nan
        return (r / np.sqrt(dt_years)).rename("scaled_log_return")
    if bar_seconds is None:
        raise ValueError("without a DatetimeIndex, give bar_seconds")
    return (r * math.sqrt(periods_per_year(bar_seconds))).rename("scaled_log_return")


def realized_volatility(prices: ArrayLike, bar_seconds: float | None = None) -> float:
    """Annualised realised volatility: std (ddof=1) of :func:`scaled_log_returns`.

    With equally spaced bars this is ``std(log returns) * sqrt(periods_per_year)``;
    a gap counts as the time it lasted, not as one bar.
    """
    u = scaled_log_returns(prices, bar_seconds).dropna()
    if len(u) < 2:
        return math.nan
    return float(u.std(ddof=1))


def rolling_mean(values: ArrayLike, window: int) -> pd.Series:
    """Trailing mean over ``window`` bars (NaN until full)."""
    return as_series(values, "values").rolling(check_window(window)).mean()


def rolling_variance(values: ArrayLike, window: int) -> pd.Series:
    """Trailing sample variance (ddof=1) over ``window`` bars."""
    return as_series(values, "values").rolling(check_window(window)).var(ddof=1)


def rolling_volatility(prices: ArrayLike, window: int, bar_seconds: float | None = None) -> pd.Series:
    """Trailing annualised volatility over ``window`` returns (elapsed-time scaled, see the module docstring)."""
    u = scaled_log_returns(prices, bar_seconds)
    return u.rolling(check_window(window)).std(ddof=1).rename("volatility")
