"""Pure pairs-trading analytics: NumPy/pandas in, NumPy/pandas out.

Owns every statistic the app shows or trades on — hedge ratios (OLS, Kalman,
Huber), spread, z-score, correlation, ADF/Engle-Granger, half-life, Hurst,
volume metrics, minute stats and the backtest. It performs no I/O, keeps no
global state and must never import ``streamlit``, ``storage``, ``ingest``,
``alerts`` or anything that touches files, sockets or clocks. Every function
is causal unless its docstring says "in-sample".
"""

from analytics.backtest import BacktestResult, backtest, sharpe_ratio
from analytics.baskets import JohansenResult, backtest_basket, basket_table, johansen
from analytics.costs import FEE_TIERS, CostModel, funding_by_bar
from analytics.diagnostics import MIN_DIAGNOSTIC_BARS, VERDICTS, PairDiagnostics, pair_diagnostics
from analytics.kalman import KalmanFit, fit_kalman, kalman_calibrated, ljung_box
from analytics.multitest import fdr_qvalues
from analytics.ou import BertramBands, OUFit, bertram_bands, fit_ou
from analytics.pair import hedge_for, minute_stats, pair_analytics, pair_table, stale_rows
from analytics.params import EXIT_RULES, HEDGE_METHODS, LIMITS, PairParams, table_params, warmup_bars
from analytics.positions import positions, target_positions
from analytics.regression import OLSResult, kalman_hedge, ols, rolling_huber, rolling_ols
from analytics.scanner import scan_pairs
from analytics.signals import rolling_correlation, spread, spread_moments, zscore
from analytics.stability import CusumResult, cusum_test, recursive_residuals
from analytics.stationarity import ADFResult, EngleGrangerResult, adf, engle_granger, half_life, hurst
from analytics.stats import (
    log_returns,
    mean,
    periods_per_year,
    realized_volatility,
    rolling_mean,
    rolling_variance,
    rolling_volatility,
    scaled_log_returns,
    simple_returns,
    variance,
)
from analytics.universe import scan_universe
from analytics.volume import taker_imbalance, volume_profile, volume_zscore, vwap
from analytics.walkforward import WalkForwardResult, deflated_sharpe, parameter_grid, walk_forward

__all__ = [
    "FEE_TIERS", "BertramBands", "CostModel", "CusumResult", "JohansenResult", "OUFit", "WalkForwardResult",
    "backtest_basket", "basket_table", "bertram_bands", "cusum_test", "deflated_sharpe", "fit_ou", "funding_by_bar", "johansen",
    "parameter_grid", "recursive_residuals", "scan_universe", "walk_forward",
    "EXIT_RULES", "HEDGE_METHODS", "LIMITS", "MIN_DIAGNOSTIC_BARS", "VERDICTS", "ADFResult", "BacktestResult", "EngleGrangerResult",
    "KalmanFit", "OLSResult", "PairDiagnostics", "PairParams",
    "adf", "backtest", "engle_granger", "fdr_qvalues", "fit_kalman", "half_life", "hedge_for", "hurst", "kalman_calibrated",
    "kalman_hedge", "ljung_box", "log_returns", "mean", "minute_stats", "ols", "pair_analytics", "pair_diagnostics", "pair_table",
    "periods_per_year", "positions", "realized_volatility", "rolling_correlation", "rolling_huber", "rolling_mean",
    "rolling_ols", "rolling_variance", "rolling_volatility", "scaled_log_returns", "scan_pairs", "sharpe_ratio",
    "simple_returns", "spread", "spread_moments", "stale_rows", "table_params", "target_positions", "taker_imbalance", "variance", "volume_profile",
    "volume_zscore", "vwap", "warm_up", "warmup_bars", "zscore",
]


def warm_up() -> None:
    """Load/compile the numba kernels now (call from a background thread at start-up)."""
    from analytics._kernels import warm_up as _warm

    _warm()
