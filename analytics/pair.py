"""The processed pair table shared by the dashboard, alerts, exports and the CLI.

:func:`pair_analytics` turns two aligned close-price series into one DataFrame
(hedge, spread, z-score, correlation, signal); :func:`minute_stats` rolls any
such table up to one row per minute. Same inputs, same numbers, wherever called.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analytics.backtest import check_thresholds, positions
from analytics.kalman import KALMAN_INIT_BARS, KALMAN_MIN_FIT_BARS, kalman_calibrated
from analytics.regression import rolling_huber, rolling_ols
from analytics.signals import Z_METHODS, rolling_correlation, spread, spread_moments
from analytics.stats import scaled_log_returns

__all__ = [
    "EXIT_RULES", "HEDGE_METHODS", "PairParams", "hedge_for", "minute_stats", "pair_analytics", "pair_table", "stale_rows",
    "warmup_bars",
]

HEDGE_METHODS = ("OLS", "Kalman", "Huber")
EXIT_RULES = ("held", "signal")
PAIR_COLUMNS = [
    "price_y", "price_x", "alpha", "beta", "beta_std", "spread", "spread_mean", "spread_std", "zscore", "correlation", "stale", "signal",
]


@dataclass(frozen=True)
class PairParams:
    """How to turn two price series into a signal.

    Attributes
    ----------
    window
        Bars of the rolling hedge (OLS/Huber) and of the rolling correlation.
    z_window
        Bars of the z-score's mean/std (default: ``window``); ``z_method``
        ``"rolling"`` (equal weights) or ``"ewma"`` (span ``z_window``).
    method
        Hedge: ``"OLS"``, ``"Kalman"`` or ``"Huber"``.
    log_prices
        Regress log prices (hedge in return space: beta is a value ratio)
        instead of raw prices (beta in units of x per unit of y). The whole
        table, its diagnostics and the backtest follow this one choice.
    formation_bars
        Bars of the formation window: the fixed hedge that
        :func:`analytics.pair_diagnostics` tests, and the trailing bars each
        Kalman maximum-likelihood fit uses.
    kalman_delta, kalman_obs_var
        Fixed Kalman ``δ`` and ``Ve`` (in the regressed price units); both None
        (default): estimated by maximum likelihood (:mod:`analytics.kalman`).
    huber_epsilon
        Huber's tuning constant.
    entry, exit, stop
        Enter beyond ``±entry``, exit at ``exit``, optional stop at ``|z| >= stop``.
    exit_on
        ``"held"`` (default): exits and stops judge the spread the position
        holds (hedge and z-normalisation frozen at entry); ``"signal"``: the
        current z (whose hedge keeps moving while the legs do not).
    beta_min, beta_max
        Entries need ``beta_min < beta < beta_max`` (default ``beta > 0``: a
        negative hedge would put both legs on the same side).
    stale_after_s
        A bar where a leg has had no trade for longer than this (seconds) is
        stale: no z and no new signal there.
    """

    window: int = 100
    method: str = "OLS"
    log_prices: bool = True
    kalman_delta: float | None = None
    kalman_obs_var: float | None = None
    huber_epsilon: float = 1.345
    entry: float = 2.0
    exit: float = 0.0
    stop: float | None = None
    z_window: int | None = None
    z_method: str = "rolling"
    formation_bars: int = 2000
    exit_on: str = "held"
    beta_min: float = 0.0
    beta_max: float = math.inf
    stale_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.method not in HEDGE_METHODS:
            raise ValueError(f"method must be one of {HEDGE_METHODS}, got {self.method!r}")
        if int(self.window) != self.window or self.window < 3:
            raise ValueError(f"window must be an integer >= 3, got {self.window}")
        if self.z_window is not None and (int(self.z_window) != self.z_window or self.z_window < 3):
            raise ValueError(f"z_window must be an integer >= 3, got {self.z_window}")
        if self.z_method not in Z_METHODS:
            raise ValueError(f"z_method must be one of {Z_METHODS}, got {self.z_method!r}")
        if int(self.formation_bars) != self.formation_bars or self.formation_bars < 50:
            raise ValueError(f"formation_bars must be an integer >= 50, got {self.formation_bars}")
        if (self.kalman_delta is None) != (self.kalman_obs_var is None):
            raise ValueError("give both kalman_delta and kalman_obs_var, or neither (maximum likelihood)")
        if self.kalman_delta is not None and not 0 < self.kalman_delta < 1:
            raise ValueError(f"kalman_delta must be in (0, 1), got {self.kalman_delta}")
        if self.kalman_obs_var is not None and not self.kalman_obs_var > 0:
            raise ValueError(f"kalman_obs_var must be > 0, got {self.kalman_obs_var}")
        if self.exit_on not in EXIT_RULES:
            raise ValueError(f"exit_on must be one of {EXIT_RULES}, got {self.exit_on!r}")
        if not self.beta_min < self.beta_max:
            raise ValueError(f"beta_min ({self.beta_min}) must be below beta_max ({self.beta_max})")
        if not self.stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {self.stale_after_s}")
        check_thresholds(self.entry, self.exit, self.stop)

    @property
    def zscore_window(self) -> int:
        return int(self.z_window or self.window)

    @property
    def price_space(self) -> str:
        return "log" if self.log_prices else "raw"

    @property
    def kalman_fitted(self) -> bool:
        """True when the Kalman δ/Ve are estimated (maximum likelihood), not fixed."""
        return self.kalman_delta is None


def warmup_bars(params: PairParams) -> int:
    """Bars a pair needs before the first z-score exists (exactly what :func:`pair_analytics` needs).

    OLS/Huber: the hedge's first fit ends at bar ``window - 1``, the first
    out-of-sample spread is bar ``window``, and the z-score needs ``z_window``
    spreads before it: ``window + z_window + 1`` bars. Kalman: the first
    maximum-likelihood fit (``KALMAN_MIN_FIT_BARS``, at most ``formation_bars``)
    or the ``KALMAN_INIT_BARS`` initialisation bars when δ/Ve are fixed, plus one.
    """
    if params.method == "Kalman":
        if params.kalman_fitted:
            return min(KALMAN_MIN_FIT_BARS, params.formation_bars) + 1
        return KALMAN_INIT_BARS + 1
    return params.window + params.zscore_window + 1


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


def table_params(table: pd.DataFrame) -> PairParams:
    """The :class:`PairParams` a :func:`pair_analytics` table was built with."""
    p = table.attrs.get("params")
    if p is None:
        raise ValueError("the table has no parameters: build it with analytics.pair_analytics")
    return p if isinstance(p, PairParams) else PairParams(**p)


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
