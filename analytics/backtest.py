"""Mean-reversion pair backtest with next-bar fills and a hedge frozen at entry.

Rules
-----
* One rule decides, for the table's ``signal`` column and for the backtest
  alike (:func:`positions`, one compiled kernel): enter beyond ``±entry``,
  exit at ``exit``, optional stop; entries need ``beta_min < beta < beta_max``;
  after a stop no same-side re-entry until z is back inside the entry band;
  exits and stops judge the spread actually **held** (hedge and z-normalisation
  frozen at entry) unless ``exit_on="signal"``. Stale or undefined z: no change.
* Decision at bar *t* uses data up to *t*; the order fills at bar *t+1* prices.
  No entry fills on the last bar; a position open at the end closes at the last
  bar (``exit_reason = "end of data"``).
* Sizing: ``qty_y = ±notional / p_y`` at the fill; the frozen hedge ``beta``
  (the one that scored the decision bar) sets ``qty_x = -beta qty_y`` for a
  raw-price hedge, ``qty_x = ∓beta notional / p_x`` for a log-price hedge (beta
  is then a value ratio). The price space comes from the table
  (``table.attrs["price_space"]``): a table and its backtest cannot disagree.
* PnL is what the legs earn: gross ``sum(qty * (exit - entry))``; costs
  (:mod:`analytics.costs`): fees ``fee_bps / 1e4 * |qty| * price`` per leg per
  fill, slippage (half-spread or square-root participation), and funding on
  open perpetual legs at each real funding event; net = gross - fees -
  slippage - funding.
* Sharpe: per-bar returns ``r_t = Δequity_t / notional``, annualised by the
  number of returns per year of **elapsed time** (a gap is not one bar), with a
  95 % confidence interval from Mertens' (2002) standard error (skew and
  kurtosis aware). With less than one day of data it is not annualised at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics import _kernels
from analytics.costs import CostModel, funding_by_bar
from analytics.params import table_params
from analytics.positions import UNSET, _Unset, positions
from analytics.stats import SECONDS_PER_YEAR

__all__ = ["BacktestResult", "backtest", "sharpe_ratio"]

TRADE_COLUMNS = [
    "entry_time", "exit_time", "side", "beta", "qty_y", "qty_x", "entry_price_y", "entry_price_x",
    "exit_price_y", "exit_price_x", "entry_z", "exit_z", "gross_pnl", "fees", "slippage", "funding", "pnl", "return_pct",
    "holding_bars", "holding_time", "holding_s", "exit_reason",
]
REASONS = {_kernels.ENTRY: "entry", _kernels.EXIT: "exit", _kernels.STOP: "stop"}
MIN_ANNUALISE_S = 86_400.0


@dataclass(frozen=True)
class BacktestResult:
    """``trades`` (one row per round trip), ``equity`` (per bar, quote currency), ``summary``."""

    trades: pd.DataFrame
    equity: pd.DataFrame
    summary: dict[str, object]


def _elapsed_seconds(index: pd.Index, n: int, bar_seconds: float | None) -> float:
    if isinstance(index, pd.DatetimeIndex) and n >= 2:
        return float((index[-1] - index[0]).total_seconds())
    if bar_seconds is None:
        return math.nan
    return (n - 1) * float(bar_seconds)


def sharpe_ratio(returns: np.ndarray, elapsed_s: float) -> dict[str, object]:
    """Sharpe ratio of per-period ``returns`` spanning ``elapsed_s`` seconds.

    Returns ``sharpe`` (annualised by returns per year of elapsed time; NaN
    with less than a day), ``sharpe_ci_low/high`` (95 %, Mertens 2002 standard
    error, annualised alike), ``sharpe_per_period`` and its CI, and
    ``sharpe_basis`` saying which it is.
    """
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    nan = math.nan
    out: dict[str, object] = {"sharpe": nan, "sharpe_ci_low": nan, "sharpe_ci_high": nan, "sharpe_per_period": nan,
                              "sharpe_per_period_ci": (nan, nan), "sharpe_basis": "no returns"}
    n = r.shape[0]
    if n < 3:
        return out
    sd = float(r.std(ddof=1))
    if not sd > 0:
        out["sharpe_basis"] = "no variation in equity"
        return out
    sr = float(r.mean()) / sd
    d = (r - r.mean()) / r.std(ddof=0)
    skew = float(np.mean(d**3))
    kurt = float(np.mean(d**4))
    se = math.sqrt(max(0.0, 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr) / n)
    out["sharpe_per_period"] = sr
    out["sharpe_per_period_ci"] = (sr - 1.96 * se, sr + 1.96 * se)
    if not math.isfinite(elapsed_s) or elapsed_s < MIN_ANNUALISE_S:
        hours = elapsed_s / 3600 if math.isfinite(elapsed_s) else nan
        out["sharpe_basis"] = (f"per bar over {n:,} returns, not annualised: {hours:.1f} h of data (annualising needs at least one day)"
                               if math.isfinite(hours) else f"per bar over {n:,} returns, not annualised (no timestamps)")
        return out
    per_year = n / (elapsed_s / SECONDS_PER_YEAR)
    k = math.sqrt(per_year)
    out.update({
        "sharpe": sr * k, "sharpe_ci_low": (sr - 1.96 * se) * k, "sharpe_ci_high": (sr + 1.96 * se) * k,
        "sharpe_basis": f"per-bar returns × √{per_year:,.0f} returns per year of elapsed time ({elapsed_s / 86400:.1f} days)",
    })
    return out


@dataclass
class _Trade:
    t: int
    side: int
    qty: np.ndarray
    entry: np.ndarray
    z: float
    fees: float = 0.0
    slippage: float = 0.0
    funding: float = 0.0
    meta: dict | None = None


@dataclass
class _Run:
    """What :func:`_simulate` returns: per-trade records, per-bar equity and position, cost totals."""

    trades: list[dict[str, object]]
    equity: np.ndarray
    position: np.ndarray
    traded_notional: float


def _simulate(index: pd.Index, prices: np.ndarray, tgt: np.ndarray, why: np.ndarray, zv: np.ndarray, sizer, costs: CostModel,
              notional: float, quote_volume: np.ndarray | None = None, funding: np.ndarray | None = None,
              bar_seconds: float | None = None) -> _Run:
    """Fill ``tgt`` (position after each decision bar) one bar later on ``prices`` (bars × legs).

    ``sizer(t, d, side)`` gives the legs' quantities (and a dict recorded with the trade) for an entry
    filled at bar ``t`` on the decision of bar ``d``. Each fill pays ``costs`` (fees, slippage on ``quote_volume`` of that bar); after each bar,
    open legs pay ``funding[t] × value`` (rate per leg, 0 when no event). Quote currency throughout.
    """
    n, k = prices.shape
    fee_rate = costs.fee_bps / 1e4
    pos = 0
    qty = np.zeros(k)
    cash = 0.0
    trades: list[dict[str, object]] = []
    cur: _Trade | None = None
    equity = np.zeros(n)
    position = np.zeros(n, dtype=np.int8)
    traded = 0.0
    is_time = isinstance(index, pd.DatetimeIndex)

    def fill(dq: np.ndarray, t: int) -> tuple[float, float]:
        nonlocal cash, traded
        values = np.abs(dq) * prices[t]
        fee = fee_rate * float(values.sum())
        slip = 0.0
        if costs.slippage != "none":
            for j in range(k):
                if values[j] > 0:
                    slip += costs.slippage_cost(float(values[j]), float(quote_volume[t, j]) if quote_volume is not None else math.nan)
        cash -= float(dq @ prices[t]) + fee + slip
        traded += float(values.sum())
        return fee, slip

    def close(t: int, reason: str, z_dec: float) -> None:
        nonlocal pos, qty, cur
        assert cur is not None
        fee, slip = fill(-qty, t)
        gross = float(qty @ (prices[t] - cur.entry))
        fees, slips = cur.fees + fee, cur.slippage + slip
        held = index[t] - index[cur.t] if is_time else t - cur.t
        pnl = gross - fees - slips - cur.funding
        trades.append({
            **(cur.meta or {}), "entry_time": index[cur.t], "exit_time": index[t], "side": "long spread" if cur.side > 0 else "short spread",
            "qty": cur.qty.copy(), "entry_prices": cur.entry.copy(), "exit_prices": prices[t].copy(), "entry_z": cur.z, "exit_z": z_dec,
            "gross_pnl": gross, "fees": fees, "slippage": slips, "funding": cur.funding, "pnl": pnl, "return_pct": pnl / notional * 100,
            "holding_bars": t - cur.t, "holding_time": held,
            "holding_s": held.total_seconds() if is_time else (t - cur.t) * (bar_seconds or math.nan), "exit_reason": reason,
        })
        pos, qty, cur = 0, np.zeros(k), None

    for t in range(n):
        if t > 0 and tgt[t - 1] != pos:
            d = t - 1  # the decision bar
            if pos != 0:
                close(t, REASONS.get(int(why[d]), "exit"), float(zv[d]))
            if tgt[d] != 0 and t < n - 1:
                side = int(tgt[d])
                sized, meta = sizer(t, d, side)
                qty = np.asarray(sized, dtype=float)
                fee, slip = fill(qty, t)
                pos = side
                cur = _Trade(t, side, qty.copy(), prices[t].copy(), float(zv[d]), fee, slip, meta=meta)
        if funding is not None and pos != 0 and cur is not None:
            paid = float((qty * prices[t]) @ funding[t])
            if paid:
                cash -= paid
                cur.funding += paid
        equity[t] = cash + float(qty @ prices[t])
        position[t] = pos
    if pos != 0:
        close(n - 1, "end of data", float(zv[n - 1]))
        equity[n - 1] = cash
        position[n - 1] = 0
    return _Run(trades, equity, position, traded)


def _summary(run: _Run, index: pd.Index, notional: float, bar_seconds: float | None, price_space: str) -> dict[str, object]:
    n = len(index)
    equity, position = run.equity, run.position
    t = pd.DataFrame(run.trades)
    eq = pd.Series(equity, index=index)
    drawdown = eq - eq.cummax()
    elapsed = _elapsed_seconds(index, n, bar_seconds)
    rets = np.diff(equity) / notional if n > 1 else np.empty(0)
    k = len(t)
    years = elapsed / SECONDS_PER_YEAR if math.isfinite(elapsed) else math.nan

    def total(col: str) -> float:
        return float(t[col].sum()) if k else 0.0

    summary: dict[str, object] = {
        "bars": float(n),
        "elapsed_days": elapsed / 86400 if math.isfinite(elapsed) else math.nan,
        "price_space": price_space,
        "trades": float(k),
        "gross_pnl": total("gross_pnl"),
        "total_fees": total("fees"),
        "total_slippage": total("slippage"),
        "total_funding": total("funding"),
        "total_pnl": float(equity[-1]) if n else 0.0,
        "pnl_per_trade": float(t["pnl"].mean()) if k else math.nan,
        "avg_trade_return_pct": float(t["return_pct"].mean()) if k else math.nan,
        "hit_rate": float((t["pnl"] > 0).mean()) if k else math.nan,
        "avg_holding_bars": float(t["holding_bars"].mean()) if k else math.nan,
        "avg_holding_s": float(t["holding_s"].mean()) if k else math.nan,
        "exits": float((t["exit_reason"] == "exit").sum()) if k else 0.0,
        "stops": float((t["exit_reason"] == "stop").sum()) if k else 0.0,
        "max_drawdown": float(drawdown.min()) if n else 0.0,
        "max_drawdown_pct_notional": float(drawdown.min() / notional * 100) if n else 0.0,
        "exposure": float((position != 0).mean()) if n else 0.0,
        "turnover": float(run.traded_notional / notional),
        "turnover_per_year": float(run.traded_notional / notional / years) if math.isfinite(years) and elapsed >= MIN_ANNUALISE_S else math.nan,
    }
    summary.update(sharpe_ratio(rets, elapsed))
    return summary


def _equity_frame(run: _Run, index: pd.Index) -> pd.DataFrame:
    eq = pd.Series(run.equity, index=index)
    return pd.DataFrame({"equity": eq, "drawdown": eq - eq.cummax(), "position": run.position}, index=index)


def _bar_ms(index: pd.Index, bar_seconds: float | None) -> int:
    if bar_seconds is not None:
        return int(bar_seconds * 1000)
    if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
        return int(np.median(np.diff(index.as_unit("ms").asi8)))
    return 0


def backtest(
    table: pd.DataFrame,
    entry: float | None = None,
    exit: float | None = None,
    stop: float | None | _Unset = UNSET,
    fee_bps: float = 2.0,
    notional: float = 10_000.0,
    exit_on: str | None = None,
    bar_seconds: float | None = None,
    costs: CostModel | None = None,
    funding_y: pd.Series | None = None,
    funding_x: pd.Series | None = None,
    volume_y: pd.Series | None = None,
    volume_x: pd.Series | None = None,
) -> BacktestResult:
    """Backtest a pair table from :func:`analytics.pair_analytics` (rules: module docstring).

    Parameters
    ----------
    table
        The pair table; its ``attrs["params"]`` give the price space, thresholds
        and beta bounds unless overridden here.
    entry, exit, stop, exit_on
        Override the table's thresholds/exit rule (``stop=None``: no stop).
    fee_bps
        Fee per leg per fill, basis points of traded value (used when ``costs`` is None).
    notional
        Quote currency per trade in the y leg.
    bar_seconds
        Only for an index without timestamps: seconds per bar (elapsed time).
    costs
        :class:`analytics.costs.CostModel`: fees and slippage (overrides ``fee_bps``).
    funding_y, funding_x
        Funding events of each leg (rate per interval on a UTC index), charged on open positions.
    volume_y, volume_x
        Bar volumes (base units) on the table's index, for the participation slippage model.
    """
    params = table_params(table)
    if not notional > 0 or fee_bps < 0:
        raise ValueError("notional must be > 0 and fee_bps >= 0")
    model = (costs if costs is not None else CostModel(fee_bps=fee_bps)).validate()
    target, why = positions(table, params, entry, exit, stop, exit_on)
    py, px = table["price_y"].to_numpy(dtype=float), table["price_x"].to_numpy(dtype=float)
    if np.any(~np.isfinite(py)) or np.any(~np.isfinite(px)) or np.any(py <= 0) or np.any(px <= 0):
        raise ValueError("backtest prices must be finite and > 0")
    zv = table["zscore"].to_numpy(dtype=float)
    beta_used = table["beta"].shift(1).to_numpy(dtype=float)
    index = table.index
    log_space = table.attrs.get("price_space", params.price_space) == "log"
    prices = np.column_stack([py, px])

    def sizer(t: int, d: int, side: int) -> tuple[np.ndarray, dict]:
        b = float(beta_used[d])
        qy = side * notional / py[t]
        qx = -b * qy if not log_space else -side * b * notional / px[t]
        return np.array([qy, qx]), {"beta": b}

    quote = None
    if volume_y is not None or volume_x is not None:
        vy = volume_y.reindex(index).to_numpy(float) if volume_y is not None else np.full(len(index), np.nan)
        vx = volume_x.reindex(index).to_numpy(float) if volume_x is not None else np.full(len(index), np.nan)
        quote = np.column_stack([vy * py, vx * px])
    fund = None
    if funding_y is not None or funding_x is not None:
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError("funding needs a time index")
        bar_ms = _bar_ms(index, bar_seconds)
        fund = np.column_stack([funding_by_bar(index, bar_ms, funding_y), funding_by_bar(index, bar_ms, funding_x)])
    run = _simulate(index, prices, target.to_numpy(), why, zv, sizer, model, notional, quote, fund, bar_seconds)
    rows = []
    for tr in run.trades:
        q, e0, e1 = tr.pop("qty"), tr.pop("entry_prices"), tr.pop("exit_prices")
        rows.append({**tr, "qty_y": q[0], "qty_x": q[1], "entry_price_y": e0[0], "entry_price_x": e0[1], "exit_price_y": e1[0], "exit_price_x": e1[1]})
    trades_df = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    summary = _summary(run, index, notional, bar_seconds, "log" if log_space else "raw")
    summary["fee_bps"] = model.fee_bps
    summary["slippage_model"] = model.slippage
    return BacktestResult(trades=trades_df, equity=_equity_frame(run, index), summary=summary)
