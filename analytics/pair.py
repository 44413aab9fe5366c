"""The processed pair table shared by the dashboard, alerts, exports and the CLI.

:func:`pair_analytics` turns two aligned close-price series into one DataFrame
(hedge, spread, z-score, correlation, signal); :func:`minute_stats` rolls any
such table up to one row per minute. Same inputs, same numbers, wherever called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.backtest import target_positions
from analytics.regression import kalman_hedge, rolling_huber, rolling_ols
from analytics.signals import rolling_correlation, spread, zscore
from analytics.stats import periods_per_year

__all__ = ["HEDGE_METHODS", "PairParams", "minute_stats", "pair_analytics"]

HEDGE_METHODS = ("OLS", "Kalman", "Huber")
PAIR_COLUMNS = ["price_y", "price_x", "alpha", "beta", "spread", "zscore", "correlation", "signal"]


@dataclass(frozen=True)
class PairParams:
    """How to turn two price series into a signal.

    ``window`` bars for the rolling hedge, z-score and correlation; ``method``
    one of OLS/Kalman/Huber; ``log_prices`` regresses log prices (hedge in
    return space) instead of raw prices.
    """

    window: int = 100
    method: str = "OLS"
    log_prices: bool = True
    kalman_delta: float = 1e-4
    kalman_obs_var: float = 1e-3
    huber_epsilon: float = 1.345
    entry: float = 2.0
    exit: float = 0.0
    stop: float | None = None

    def __post_init__(self) -> None:
        if self.method not in HEDGE_METHODS:
            raise ValueError(f"method must be one of {HEDGE_METHODS}, got {self.method!r}")
        if int(self.window) != self.window or self.window < 3:
            raise ValueError(f"window must be an integer >= 3, got {self.window}")


def hedge_for(y: pd.Series, x: pd.Series, params: PairParams) -> pd.DataFrame:
    """Hedge ``alpha, beta`` (+ method extras) by the chosen method, on the transformed prices."""
    if params.method == "OLS":
        return rolling_ols(y, x, params.window)
    if params.method == "Kalman":
        return kalman_hedge(y, x, delta=params.kalman_delta, obs_var=params.kalman_obs_var)
    return rolling_huber(y, x, params.window, epsilon=params.huber_epsilon)


def pair_analytics(price_y: pd.Series, price_x: pd.Series, params: PairParams) -> pd.DataFrame:
    """Causal pair table: prices, hedge, out-of-sample spread, z-score, correlation, signal.

    * OLS/Huber: ``spread_t = y_t - (beta_{t-1} x_t + alpha_{t-1})`` and
      ``z_t`` = spread standardised by the previous ``window`` spreads.
    * Kalman: spread = one-step forecast error, ``z_t = e_t / sqrt(Q_t)``.
    * ``correlation``: rolling correlation of simple returns over ``window``.
    * ``signal``: desired position after bar t (+1 long spread, -1 short, 0 flat).

    ``y``/``x`` are the transformed prices (log when ``params.log_prices``);
    ``price_y``/``price_x`` stay raw.
    """
    if params.log_prices and ((price_y <= 0).any() or (price_x <= 0).any()):
        raise ValueError("log prices need strictly positive prices")
    y = np.log(price_y) if params.log_prices else price_y.astype(float)
    x = np.log(price_x) if params.log_prices else price_x.astype(float)
    hedge = hedge_for(y, x, params)
    if params.method == "Kalman":
        spr = hedge["forecast_error"].rename("spread")
        z = hedge["zscore"]
    else:
        spr = spread(y, x, hedge, lag=1)
        z = zscore(spr, params.window, lag=1)
    out = pd.DataFrame(
        {
            "price_y": price_y.astype(float),
            "price_x": price_x.astype(float),
            "alpha": hedge["alpha"],
            "beta": hedge["beta"],
            "spread": spr.to_numpy(),
            "zscore": z.to_numpy(),
            "correlation": rolling_correlation(price_y, price_x, params.window).to_numpy(),
        },
        index=price_y.index,
    )
    out["signal"] = target_positions(out["zscore"], params.entry, params.exit, params.stop).to_numpy()
    return out


def minute_stats(table: pd.DataFrame, volume_y: pd.Series | None = None, volume_x: pd.Series | None = None, vol_window: int = 30) -> pd.DataFrame:
    """One row per minute from a :func:`pair_analytics` table (any bar size <= 1 minute).

    Per minute: last ``price_y/price_x``, minute simple returns, annualised
    volatility of minute log returns over the trailing ``vol_window`` minutes,
    last ``beta, spread, zscore, correlation``, summed volumes. Minutes are
    labelled by their start; a minute is included once it has any bar.
    """
    if not isinstance(table.index, pd.DatetimeIndex):
        raise ValueError("minute_stats needs a DatetimeIndex")
    last = table[["price_y", "price_x", "beta", "spread", "zscore", "correlation"]].resample("1min").last()
    present = table["price_y"].resample("1min").count() > 0
    out = last[present]
    ann = math.sqrt(periods_per_year(60.0))
    for leg in ("y", "x"):
        p = out[f"price_{leg}"]
        out.insert(out.columns.get_loc(f"price_{leg}") + 1, f"return_{leg}", p.pct_change(fill_method=None))
        out[f"volatility_{leg}"] = np.log(p).diff().rolling(vol_window, min_periods=2).std(ddof=1) * ann
    for leg, vol in (("y", volume_y), ("x", volume_x)):
        if vol is not None:
            out[f"volume_{leg}"] = vol.resample("1min").sum().reindex(out.index).fillna(0.0)
    out.index.name = "minute"
    return out
