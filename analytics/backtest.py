"""Mean-reversion pair backtest with next-bar fills and a hedge frozen at entry.

Rules
-----
* Decision at bar *t* uses ``z_t`` (itself built from data up to *t*); the order
  fills at bar *t+1* prices. No entry is filled on the last bar.
* Short the spread (sell y, buy x) when ``z > entry``; long (buy y, sell x)
  when ``z < -entry``. A short exits when ``z <= exit``, a long when
  ``z >= -exit``; optional stop when ``|z| >= stop`` on the losing side.
* Sizing: ``qty_y = notional / p_y`` at the fill. The hedge ``beta`` is the one
  that scored the signal, frozen for the trade's life: ``qty_x = beta * qty_y``
  for a raw-price hedge, ``qty_x = beta * notional / p_x`` for a log-price hedge
  (beta is then a value ratio).
* PnL is what the legs earn: ``sum(qty * (exit - entry)) - fees``, fees
  ``fee_bps / 1e4 * |qty| * price`` per leg per fill. A position still open at
  the end is closed at the last bar's prices (``exit_reason = "end of data"``).
* Sharpe: ``mean(r) / std(r, ddof=1) * sqrt(bars per year)`` with
  ``r_t = Δequity_t / notional`` over every bar (24/7 market).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics import _kernels
from analytics._validate import ArrayLike, aligned_pair, as_series, check_lag
from analytics.stats import periods_per_year

__all__ = ["BacktestResult", "backtest", "target_positions"]

TRADE_COLUMNS = [
    "entry_time", "exit_time", "side", "beta", "qty_y", "qty_x", "entry_price_y", "entry_price_x",
    "exit_price_y", "exit_price_x", "entry_z", "exit_z", "fees", "pnl", "holding_bars", "holding_time", "exit_reason",
]


@dataclass(frozen=True)
class BacktestResult:
    """``trades`` (one row per round trip), ``equity`` (per bar, quote currency), ``summary``."""

    trades: pd.DataFrame
    equity: pd.DataFrame
    summary: dict[str, float]


def target_positions(z: ArrayLike, entry: float = 2.0, exit: float = 0.0, stop: float | None = None) -> pd.Series:
    """Desired spread position after observing ``z_t``: +1 long, -1 short, 0 flat.

    Same hysteresis as :func:`backtest` (enter beyond ±entry, leave at the exit
    level or the stop); NaN z keeps the previous position.
    """
    zs = as_series(z, "z")
    _check_thresholds(entry, exit, stop)
    out = _kernels.positions_kernel(zs.to_numpy(), float(entry), float(exit), math.inf if stop is None else float(stop))
    return pd.Series(out, index=zs.index, name="signal")


def _check_thresholds(entry: float, exit: float, stop: float | None) -> None:
    if not entry > 0:
        raise ValueError(f"entry must be > 0, got {entry}")
    if not -entry < exit < entry:
        raise ValueError(f"exit must lie strictly between -entry and entry, got {exit}")
    if stop is not None and not stop > entry:
        raise ValueError(f"stop must be > entry ({entry}), got {stop}")


_REASONS = {_kernels.EXIT: "exit", _kernels.STOP: "stop"}


def backtest(
    y: ArrayLike,
    x: ArrayLike,
    z: ArrayLike,
    hedge: pd.DataFrame | pd.Series,
    entry: float = 2.0,
    exit: float = 0.0,
    stop: float | None = None,
    fee_bps: float = 2.0,
    notional: float = 10_000.0,
    price_space: str = "raw",
    hedge_lag: int = 1,
    bar_seconds: float = 60.0,
) -> BacktestResult:
    """Run the pair backtest; see the module docstring for every rule.

    Parameters
    ----------
    y, x
        Raw prices of the legs on one index (fills happen at these prices).
    z
        Signal aligned with the prices (e.g. ``zscore(spread(...))``).
    hedge
        ``beta`` Series or a DataFrame with a ``beta`` column, as estimated at each bar.
    hedge_lag
        Bars between the hedge estimate and the signal it produced (1 when the
        spread was built with ``lag=1``): the frozen beta is ``beta_{t-hedge_lag}``.
    price_space
        ``"raw"`` if beta was estimated on prices, ``"log"`` on log prices.
    """
    ys, xs = aligned_pair(y, x)
    zs = as_series(z, "z")
    beta_s = hedge["beta"] if isinstance(hedge, pd.DataFrame) else as_series(hedge, "hedge")
    if len(zs) != len(ys) or len(beta_s) != len(ys):
        raise ValueError("y, x, z and hedge must have the same length")
    _check_thresholds(entry, exit, stop)
    stop_level = math.inf if stop is None else float(stop)
    if price_space not in ("raw", "log"):
        raise ValueError("price_space must be 'raw' or 'log'")
    if not notional > 0 or fee_bps < 0:
        raise ValueError("notional must be > 0 and fee_bps >= 0")
    hedge_lag = check_lag(hedge_lag)
    py, px = ys.to_numpy(), xs.to_numpy()
    if np.any(~np.isfinite(py)) or np.any(~np.isfinite(px)) or np.any(py <= 0) or np.any(px <= 0):
        raise ValueError("backtest prices must be finite and > 0")
    zv = zs.to_numpy()
    beta = beta_s.to_numpy(dtype=float)
    if hedge_lag:
        beta = np.concatenate([np.full(hedge_lag, np.nan), beta[:-hedge_lag]])
    index = ys.index
    n = len(ys)
    fee_rate = fee_bps / 1e4

    pos = 0
    qy = qx = 0.0
    cash = 0.0
    pending: tuple[str, int, float, float] | None = None  # (kind, side, beta, z at decision)
    open_trade: dict[str, object] = {}
    trades: list[dict[str, object]] = []
    equity = np.zeros(n)
    position = np.zeros(n, dtype=np.int8)
    traded_notional = 0.0

    def fill(side_qy: float, side_qx: float, t: int) -> float:
        nonlocal cash, traded_notional
        fee = fee_rate * (abs(side_qy) * py[t] + abs(side_qx) * px[t])
        cash -= side_qy * py[t] + side_qx * px[t] + fee
        traded_notional += abs(side_qy) * py[t] + abs(side_qx) * px[t]
        return fee

    def close(t: int, reason: str, z_dec: float) -> None:
        nonlocal pos, qy, qx
        fee = fill(-qy, -qx, t)
        fees = float(open_trade["fees"]) + fee
        pnl = qy * (py[t] - float(open_trade["entry_price_y"])) + qx * (px[t] - float(open_trade["entry_price_x"])) - fees
        t0 = int(open_trade["t"])
        trades.append(
            {
                **{k: v for k, v in open_trade.items() if k not in ("t", "fees")},
                "exit_time": index[t], "exit_price_y": py[t], "exit_price_x": px[t], "exit_z": z_dec,
                "fees": fees, "pnl": pnl, "holding_bars": t - t0, "holding_time": index[t] - index[t0]
                if isinstance(index, pd.DatetimeIndex) else t - t0, "exit_reason": reason,
            }
        )
        pos, qy, qx = 0, 0.0, 0.0

    for t in range(n):
        if pending is not None:
            kind, side, b, z_dec = pending
            pending = None
            if kind == "open":
                qy = side * notional / py[t]
                qx = -b * qy if price_space == "raw" else -side * b * notional / px[t]
                fee = fill(qy, qx, t)
                pos = side
                open_trade = {
                    "t": t, "entry_time": index[t], "side": "long spread" if side > 0 else "short spread", "beta": b,
                    "qty_y": qy, "qty_x": qx, "entry_price_y": py[t], "entry_price_x": px[t], "entry_z": z_dec, "fees": fee,
                }
            else:
                close(t, kind, z_dec)
        if t < n - 1 and not math.isnan(zv[t]):
            new_pos, code = _kernels.next_position(pos, zv[t], entry, exit, stop_level)
            if new_pos != pos:
                if pos == 0:
                    # entries need a finite frozen beta and a fill before the last bar
                    if t + 1 < n - 1 and math.isfinite(beta[t]):
                        pending = ("open", new_pos, float(beta[t]), float(zv[t]))
                else:
                    pending = (_REASONS[code], 0, 0.0, float(zv[t]))
        equity[t] = cash + qy * py[t] + qx * px[t]
        position[t] = pos
    if pos != 0:
        close(n - 1, "end of data", float(zv[n - 1]))
        equity[n - 1] = cash
        position[n - 1] = 0

    trades_df = pd.DataFrame(trades, columns=TRADE_COLUMNS)
    eq = pd.Series(equity, index=index)
    drawdown = eq - eq.cummax()
    eq_df = pd.DataFrame({"equity": eq, "drawdown": drawdown, "position": position}, index=index)
    rets = np.diff(equity, prepend=0.0) / notional
    sd = rets.std(ddof=1) if n > 1 else math.nan
    ppy = periods_per_year(bar_seconds)
    n_trades = len(trades_df)
    summary = {
        "total_pnl": float(equity[-1]) if n else 0.0,
        "trades": float(n_trades),
        "pnl_per_trade": float(trades_df["pnl"].mean()) if n_trades else math.nan,
        "hit_rate": float((trades_df["pnl"] > 0).mean()) if n_trades else math.nan,
        "total_fees": float(trades_df["fees"].sum()) if n_trades else 0.0,
        "sharpe": float(rets.mean() / sd * math.sqrt(ppy)) if n > 1 and sd > 0 else math.nan,
        "max_drawdown": float(drawdown.min()) if n else 0.0,
        "max_drawdown_pct_notional": float(drawdown.min() / notional * 100) if n else 0.0,
        "exposure": float((position != 0).mean()) if n else 0.0,
        "turnover": float(traded_notional / notional),
        "bars": float(n),
    }
    return BacktestResult(trades=trades_df, equity=eq_df, summary=summary)
