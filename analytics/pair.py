"""The processed pair table shared by the dashboard, alerts, exports and the CLI.

:func:`pair_analytics` turns two aligned close-price series into one DataFrame
(hedge, spread, z-score, correlation, signal); :func:`minute_stats` rolls any
such table up to one row per minute. Same inputs, same numbers, wherever called.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from analytics.kalman import kalman_calibrated
from analytics.params import PairParams
from analytics.positions import positions
from analytics.regression import rolling_huber, rolling_ols
from analytics.signals import rolling_correlation, spread, spread_moments
from analytics.stats import scaled_log_returns

__all__ = ["PAIR_COLUMNS", "hedge_for", "minute_stats", "pair_analytics", "pair_table", "stale_rows"]

PAIR_COLUMNS = [
    "price_y", "price_x", "alpha", "beta", "beta_std", "spread", "spread_mean", "spread_std", "zscore", "correlation", "stale", "signal",
]


def hedge_for(y: pd.Series, x: pd.Series, params: PairParams) -> pd.DataFrame:
    """Hedge ``alpha, beta`` (+ method extras) by the chosen method, on the transformed prices."""
    if params.method == "OLS":
        return rolling_ols(y, x, params.window)
    if params.method == "Kalman":
        return kalman_calibrated(y, x, formation_bars=params.formation_bars, delta=params.kalman_delta, obs_var=params.kalman_obs_var)
    return rolling_huber(y, x, params.window, epsilon=params.huber_epsilon)


def _grid_correlation(price_y: pd.Series, price_x: pd.Series, window: int, grid_ms: int) -> pd.Series:
    """Rolling correlation of returns on a regular time grid, as of each row (causal).

    Each row gets the correlation of the last *completed* grid bar before it
    (the grid bar the row falls in is still forming)."""
    idx = price_y.index
    rule = pd.Timedelta(milliseconds=grid_ms)
    gy = price_y.resample(rule).last().ffill()
    gx = price_x.resample(rule).last().ffill()
    corr = gy.pct_change(fill_method=None).rolling(window, min_periods=window).corr(gx.pct_change(fill_method=None))
    ends = corr.index + rule  # a grid bar is complete at its end
    pos = np.searchsorted(ends.as_unit("ns").asi8, idx.as_unit("ns").asi8, side="right") - 1
    vals = corr.to_numpy()
    out = np.where(pos >= 0, vals[np.clip(pos, 0, None)], np.nan)
    return pd.Series(out, index=idx)


def pair_analytics(
    price_y: pd.Series,
    price_x: pd.Series,
    params: PairParams,
    stale: pd.Series | np.ndarray | None = None,
    correlation_grid_ms: int | None = None,
) -> pd.DataFrame:
    """Causal pair table: prices, hedge, out-of-sample spread, z-score, correlation, signal.

    * OLS/Huber: ``spread_t = y_t - (beta_{t-1} x_t + alpha_{t-1})`` and
      ``z_t = (spread_t - spread_mean_t) / spread_std_t`` with the moments of
      the previous ``z_window`` spreads.
    * Kalman: spread = one-step forecast error, ``spread_mean = 0``,
      ``spread_std = sqrt(Q_t)``; δ/Ve fitted causally unless fixed.
    * ``beta_std``: Kalman only — the filter's posterior standard deviation of
      beta (β ± 2·beta_std is its 95 % band); NaN for OLS/Huber.
    * ``correlation``: rolling correlation of simple returns over ``window``
      rows, or — with ``correlation_grid_ms`` (tick data) — over ``window``
      bars of that time grid (tick returns are mostly zero).
    * ``stale``: rows where a leg had no trade for longer than
      ``params.stale_after_s`` (given by the caller, e.g. from
      :func:`storage.bars.align_pair`); their z is NaN and no signal starts there.
    * ``signal``: desired position after bar t (+1 long spread, -1 short, 0
      flat) by :func:`analytics.backtest.positions` — the backtest's own rule.

    ``price_y``/``price_x`` stay raw; the hedge is in ``params.price_space``
    (``table.attrs["price_space"]``), and ``table.attrs["params"]`` holds the
    parameters (as a dict; :func:`table_params` rebuilds them), so a backtest
    of the table cannot pick another space.
    """
    if params.log_prices and ((price_y <= 0).any() or (price_x <= 0).any()):
        raise ValueError("log prices need strictly positive prices")
    y = np.log(price_y) if params.log_prices else price_y.astype(float)
    x = np.log(price_x) if params.log_prices else price_x.astype(float)
    hedge = hedge_for(y, x, params)
    if params.method == "Kalman":
        spr = hedge["forecast_error"].rename("spread")
        z = hedge["zscore"].copy()
        mean = pd.Series(np.where(np.isfinite(z.to_numpy()), 0.0, np.nan), index=z.index)
        std = np.sqrt(hedge["forecast_var"])
    else:
        spr = spread(y, x, hedge, lag=1)
        mean, std = spread_moments(spr, params.zscore_window, lag=1, method=params.z_method)
        z = (spr - mean) / std
    stale_arr = np.zeros(len(price_y), dtype=bool) if stale is None else np.asarray(stale, dtype=bool)
    if stale_arr.shape[0] != len(price_y):
        raise ValueError(f"stale has {stale_arr.shape[0]} rows, prices have {len(price_y)}")
    zv = np.where(stale_arr, np.nan, z.to_numpy())
    if correlation_grid_ms:
        corr = _grid_correlation(price_y.astype(float), price_x.astype(float), params.window, int(correlation_grid_ms))
    else:
        corr = rolling_correlation(price_y, price_x, params.window)
    out = pd.DataFrame(
        {
            "price_y": price_y.astype(float),
            "price_x": price_x.astype(float),
            "alpha": hedge["alpha"].to_numpy(),
            "beta": hedge["beta"].to_numpy(),
            "beta_std": hedge["beta_std"].to_numpy() if "beta_std" in hedge else np.full(len(price_y), np.nan),
            "spread": spr.to_numpy(),
            "spread_mean": mean.to_numpy(),
            "spread_std": std.to_numpy(),
            "zscore": zv,
            "correlation": corr.to_numpy(),
            "stale": stale_arr,
        },
        index=price_y.index,
    )
    out["signal"] = positions(out, params)[0]
    out.attrs["price_space"] = params.price_space
    out.attrs["params"] = asdict(params)  # plain values: pandas copies attrs, Arrow serialises them
    if params.method == "Kalman":
        fitted = hedge[["kalman_delta", "kalman_obs_var"]].dropna()
        out.attrs["kalman"] = (
            {"delta": float(fitted["kalman_delta"].iloc[-1]), "obs_var": float(fitted["kalman_obs_var"].iloc[-1]),
             "fitted": params.kalman_fitted}
            if len(fitted) else {}
        )
    return out


def stale_rows(frame: pd.DataFrame, params: PairParams) -> np.ndarray:
    """Rows of an aligned pair frame where a leg has gone quiet for longer than ``params.stale_after_s``.

    Reads ``quiet_y_s``/``quiet_x_s`` (seconds since each leg's last trade, as
    :func:`storage.bars.align_pair` and ``TickStore.pair_ticks`` give them);
    a frame without them has no stale rows.
    """
    out = np.zeros(len(frame), dtype=bool)
    for col in ("quiet_y_s", "quiet_x_s"):
        if col in frame:
            out |= frame[col].to_numpy(dtype=float) > params.stale_after_s
    return out


def pair_table(frame: pd.DataFrame, params: PairParams, correlation_grid_ms: int | None = None) -> pd.DataFrame:
    """:func:`pair_analytics` of an aligned pair frame (``close_y``, ``close_x``, optional ``quiet_*_s``).

    The one call every consumer (dashboard, alerts, exports, CLI, read API)
    makes, so each shows the same numbers for the same bars.
    """
    return pair_analytics(frame["close_y"], frame["close_x"], params, stale=stale_rows(frame, params),
                          correlation_grid_ms=correlation_grid_ms)


def minute_stats(table: pd.DataFrame, volume_y: pd.Series | None = None, volume_x: pd.Series | None = None, vol_window: int = 30) -> pd.DataFrame:
    """One row per minute from a :func:`pair_analytics` table (any bar size <= 1 minute).

    Per minute: last ``price_y/price_x``, simple returns since the previous
    minute present, annualised volatility over the trailing ``vol_window``
    minutes (log returns scaled by the elapsed time of each, so a missing
    minute is not counted as one), last ``beta, spread, zscore, correlation``,
    summed volumes. Minutes are labelled by their start; a minute is included
    once it has any bar.
    """
    if not isinstance(table.index, pd.DatetimeIndex):
        raise ValueError("minute_stats needs a DatetimeIndex")
    last = table[["price_y", "price_x", "beta", "spread", "zscore", "correlation"]].resample("1min").last()
    present = table["price_y"].resample("1min").count() > 0
    out = last[present]
    for leg in ("y", "x"):
        p = out[f"price_{leg}"]
        out.insert(out.columns.get_loc(f"price_{leg}") + 1, f"return_{leg}", p.pct_change(fill_method=None))
        out[f"volatility_{leg}"] = scaled_log_returns(p).rolling(vol_window, min_periods=2).std(ddof=1)
    for leg, vol in (("y", volume_y), ("x", volume_x)):
        if vol is not None:
            out[f"volume_{leg}"] = vol.resample("1min").sum().reindex(out.index).fillna(0.0)
    out.index.name = "minute"
    return out
