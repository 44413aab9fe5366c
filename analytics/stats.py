"""Price statistics: returns, mean/variance, realised volatility (plain and rolling).

Volatility is annualised with ``periods_per_year`` computed from the bar length
for a market open 24/7 (crypto): ``365 * 86400 / bar_seconds``.
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


def realized_volatility(prices: ArrayLike, bar_seconds: float) -> float:
    """Annualised realised volatility: ``std(log returns, ddof=1) * sqrt(periods_per_year)``."""
    r = log_returns(prices).dropna()
    if len(r) < 2:
        return math.nan
    return float(r.std(ddof=1) * math.sqrt(periods_per_year(bar_seconds)))


def rolling_mean(values: ArrayLike, window: int) -> pd.Series:
    """Trailing mean over ``window`` bars (NaN until full)."""
    return as_series(values, "values").rolling(check_window(window)).mean()


def rolling_variance(values: ArrayLike, window: int) -> pd.Series:
    """Trailing sample variance (ddof=1) over ``window`` bars."""
    return as_series(values, "values").rolling(check_window(window)).var(ddof=1)


def rolling_volatility(prices: ArrayLike, window: int, bar_seconds: float) -> pd.Series:
    """Trailing annualised volatility of log returns over ``window`` returns."""
    r = log_returns(prices)
    return (r.rolling(check_window(window)).std(ddof=1) * math.sqrt(periods_per_year(bar_seconds))).rename("volatility")
