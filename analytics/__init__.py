"""Pure pairs-trading analytics: NumPy/pandas in, NumPy/pandas out.

Owns every statistic the app shows or trades on — hedge ratios (OLS, Kalman,
Huber), spread, z-score, correlation, ADF/Engle-Granger, half-life, Hurst,
volume metrics, minute stats and the backtest. It performs no I/O, keeps no
global state and must never import ``streamlit``, ``storage``, ``ingest``,
``alerts`` or anything that touches files, sockets or clocks. Every function
is causal unless its docstring says "in-sample".
"""

from analytics.backtest import BacktestResult, backtest, target_positions
from analytics.pair import HEDGE_METHODS, PairParams, hedge_for, minute_stats, pair_analytics
from analytics.regression import OLSResult, kalman_hedge, ols, rolling_huber, rolling_ols
from analytics.signals import rolling_correlation, spread, zscore
from analytics.stationarity import (
    RECENT_ADF_POINTS,
    ADFResult,
    EngleGrangerResult,
    adf,
    engle_granger,
    half_life,
    hurst,
    recent_adf_pvalue,
)
from analytics.stats import (
    log_returns,
    mean,
    periods_per_year,
    realized_volatility,
    rolling_mean,
    rolling_variance,
    rolling_volatility,
    simple_returns,
    variance,
)
from analytics.volume import taker_imbalance, volume_profile, volume_zscore, vwap

__all__ = [
    "RECENT_ADF_POINTS", "ADFResult", "BacktestResult", "EngleGrangerResult", "HEDGE_METHODS", "OLSResult", "PairParams",
    "adf", "backtest", "engle_granger", "half_life", "hedge_for", "hurst", "kalman_hedge", "log_returns",
    "mean", "minute_stats", "ols", "pair_analytics", "periods_per_year", "realized_volatility", "recent_adf_pvalue",
    "rolling_correlation", "rolling_huber", "rolling_mean", "rolling_ols", "rolling_variance",
    "rolling_volatility", "simple_returns", "spread", "target_positions", "taker_imbalance",
    "variance", "volume_profile", "volume_zscore", "vwap", "warm_up", "zscore",
]


def warm_up() -> None:
    """Load/compile the numba kernels now (call from a background thread at start-up)."""
    from analytics._kernels import warm_up as _warm

    _warm()
