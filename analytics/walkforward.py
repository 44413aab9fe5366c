"""Walk-forward parameter selection with a deflated Sharpe ratio.

Procedure
---------
The bars are cut into folds: a **formation** window of ``formation_bars``
followed by a **trading** window of ``trading_bars``; the next fold starts
``trading_bars`` later (trading windows tile the data without overlap).

* Choice: every configuration of the grid is backtested on the formation
  window alone (its analytics warm up inside it); the one with the highest
  per-bar Sharpe ratio of net PnL (at least ``min_trades`` round trips) is
  chosen. Nothing after the formation window's last bar enters the choice.
* Trading: the chosen configuration's pair table is computed on formation +
  trading bars (the analytics are causal, so a trading bar's z uses data up to
  that bar only; the formation bars are only its warm-up), and backtested on
  the trading bars alone: flat at the start, decisions at bar *t* filled at
  *t + 1*, a position still open closed at the window's last bar.
* Out-of-sample (OOS) equity: the trading windows' PnL chained in time.

Deflated Sharpe (Bailey & López de Prado, 2014): the probability that the
OOS Sharpe ratio's true value exceeds the best Sharpe ratio that ``N``
configurations of zero true skill would show by luck,

    SR0 = sqrt(V) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e))),
    DSR = Φ((SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR²)),

with per-bar (not annualised) Sharpe ratios, ``V`` the variance of the ``N``
configurations' Sharpe ratios over the same OOS bars, ``T`` the OOS bars,
``g3``/``g4`` the skewness and (non-excess) kurtosis of the OOS returns and
γ Euler's constant. ``N`` is the grid size: every configuration was tried in
every fold.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from analytics.backtest import backtest, sharpe_ratio
from analytics.costs import CostModel
from analytics.pair import pair_analytics
from analytics.params import PairParams

__all__ = ["WalkForwardResult", "deflated_sharpe", "expected_max_sharpe", "parameter_grid", "walk_forward"]

EULER_GAMMA = 0.5772156649015329
GRID_FIELDS = ("window", "entry", "exit", "kalman_delta", "kalman_obs_var")


@dataclass(frozen=True)
class WalkForwardResult:
    """``folds``: one row per fold (windows, chosen parameters, formation Sharpe, OOS PnL, trades);
    ``equity``: OOS equity per trading bar (quote currency, chained); ``configs``: every grid
    configuration's OOS per-bar Sharpe and PnL over the same bars (for the deflation and for
    comparison); ``trades``: the OOS round trips; ``summary``: totals and the deflated Sharpe."""

    folds: pd.DataFrame
    equity: pd.DataFrame
    configs: pd.DataFrame
    trades: pd.DataFrame
    summary: dict[str, object]


def parameter_grid(
    base: PairParams,
    windows: Sequence[int] = (60, 120, 240),
    entries: Sequence[float] = (1.5, 2.0, 2.5),
    exits: Sequence[float] = (0.0, 0.5),
    kalman: Sequence[tuple[float, float]] = (),
) -> list[PairParams]:
    """Every valid combination on top of ``base`` (exit below entry; a stop above entry).

    OLS/Huber: ``windows`` × ``entries`` × ``exits`` (the z window follows the hedge window).
    Kalman: ``kalman`` (δ, Ve) pairs × ``entries`` × ``exits`` (empty: maximum likelihood, one
    setting); the window is then irrelevant.
    """
    out: list[PairParams] = []
    hedges: list[dict] = (
        [{"kalman_delta": d, "kalman_obs_var": v} for d, v in kalman] or [{"kalman_delta": None, "kalman_obs_var": None}]
        if base.method == "Kalman" else [{"window": int(w), "z_window": None} for w in windows]
    )
    for h, e, x in itertools.product(hedges, entries, exits):
        if not 0 <= x < e or (base.stop is not None and base.stop <= e):
            continue
        out.append(replace(base, entry=float(e), exit=float(x), **h))
    if not out:
        raise ValueError("the parameter grid is empty: every exit must be below its entry")
    return list(dict.fromkeys(out))


def _per_bar_sharpe(returns: np.ndarray) -> float:
    r = returns[np.isfinite(returns)]
    if len(r) < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    return float(np.mean(r)) / sd if sd > 0 else math.nan


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum per-bar Sharpe of ``n_trials`` zero-skill strategies (the DSR's SR0)."""
    if n_trials < 2 or not sharpe_variance > 0:
        return 0.0
    z1 = sps.norm.ppf(1 - 1 / n_trials)
    z2 = sps.norm.ppf(1 - 1 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe(returns: np.ndarray, n_trials: int, sharpe_variance: float) -> dict[str, float]:
    """Deflated Sharpe ratio of per-bar ``returns`` after ``n_trials`` configurations (module docstring).

    Returns ``sharpe`` (per bar), ``sr0`` (per bar), ``dsr`` (a probability) and ``psr0`` (the same
    probability against zero, i.e. without deflation).
    """
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    t = len(r)
    sr = _per_bar_sharpe(r)
    if not math.isfinite(sr) or t < 3:
        return {"sharpe": math.nan, "sr0": math.nan, "dsr": math.nan, "psr0": math.nan}
    g3 = float(sps.skew(r))
    g4 = float(sps.kurtosis(r, fisher=False))
    denom = math.sqrt(max(1 - g3 * sr + (g4 - 1) / 4 * sr * sr, 1e-12))
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return {"sharpe": sr, "sr0": sr0, "dsr": float(sps.norm.cdf((sr - sr0) * math.sqrt(t - 1) / denom)),
            "psr0": float(sps.norm.cdf(sr * math.sqrt(t - 1) / denom))}


def _run(y: pd.Series, x: pd.Series, p: PairParams, start: int, costs: CostModel, notional: float):
    """Backtest of ``p`` on bars ``start:`` of (y, x), the bars before ``start`` being warm-up only."""
    table = pair_analytics(y, x, p)
    return backtest(table.iloc[start:], costs=costs, notional=notional)


def walk_forward(
    price_y: pd.Series,
    price_x: pd.Series,
    grid: Sequence[PairParams],
    formation_bars: int,
    trading_bars: int,
    costs: CostModel | None = None,
    notional: float = 10_000.0,
    min_trades: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> WalkForwardResult:
    """Rolling formation → trading walk-forward over ``grid`` (see the module docstring).

    Parameters
    ----------
    price_y, price_x
        Aligned close prices (one row per bar, UTC index; no NaN).
    grid
        Configurations to choose from (e.g. :func:`parameter_grid`).
    formation_bars, trading_bars
        Bars of each fold's formation and trading windows.
    costs
        Fees/slippage of every backtest (default: 2 bp per leg per fill).
    min_trades
        A configuration with fewer round trips in a formation window cannot be chosen there.
    progress
        Called as ``progress(done, total)`` after each backtest (a progress bar).
    """
    y, x = price_y.astype(float), price_x.astype(float)
    if not y.index.equals(x.index):
        raise ValueError("price_y and price_x must share one index")
    if y.isna().any() or x.isna().any():
        raise ValueError("walk-forward needs prices without gaps (drop or fill them first)")
    grid = list(grid)
    if not grid:
        raise ValueError("empty parameter grid")
    n = len(y)
    if formation_bars < 50 or trading_bars < 10:
        raise ValueError("formation_bars must be >= 50 and trading_bars >= 10")
    starts = list(range(0, n - formation_bars - trading_bars + 1, trading_bars))
    if not starts:
        raise ValueError(f"{n:,} bars cannot hold one formation ({formation_bars:,}) + trading ({trading_bars:,}) window")
    costs = costs or CostModel(fee_bps=2.0)
    total, done = len(starts) * len(grid) * 2, 0
    fold_rows, eq_parts, trade_parts = [], [], []
    cfg_returns = [[] for _ in grid]
    cfg_pnl = np.zeros(len(grid))
    for k, f0 in enumerate(starts):
        f1, t1 = f0 + formation_bars, f0 + formation_bars + trading_bars
        fy, fx = y.iloc[f0:f1], x.iloc[f0:f1]
        scores = []
        for p in grid:  # the choice: formation bars only
            res = _run(fy, fx, p, 0, costs, notional)
            r = np.diff(res.equity["equity"].to_numpy(), prepend=0.0) / notional
            s = _per_bar_sharpe(r)
            scores.append(s if len(res.trades) >= min_trades and math.isfinite(s) else -math.inf)
            done += 1
            if progress is not None:
                progress(done, total)
        best = int(np.argmax(scores))
        chosen = grid[best]
        ty, tx = y.iloc[f0:t1], x.iloc[f0:t1]
        oos = None
        for i, p in enumerate(grid):  # every configuration on the trading bars (evaluation, not choice)
            res = _run(ty, tx, p, formation_bars, costs, notional)
            cfg_returns[i].append(np.diff(res.equity["equity"].to_numpy(), prepend=0.0) / notional)
            cfg_pnl[i] += float(res.equity["equity"].iloc[-1])
            if i == best:
                oos = res
            done += 1
            if progress is not None:
                progress(done, total)
        assert oos is not None
        eq = oos.equity["equity"]
        offset = float(eq_parts[-1]["equity"].iloc[-1]) if eq_parts else 0.0
        eq_parts.append(pd.DataFrame({"equity": eq + offset, "fold": k}, index=eq.index))
        if len(oos.trades):
            trade_parts.append(oos.trades.assign(fold=k))
        chosen_d = asdict(chosen)
        fold_rows.append({
            "fold": k, "formation_start": y.index[f0], "formation_end": y.index[f1 - 1],
            "trading_start": y.index[f1], "trading_end": y.index[t1 - 1],
            **{f: chosen_d[f] for f in GRID_FIELDS}, "formation_sharpe": scores[best] if math.isfinite(scores[best]) else math.nan,
            "formation_tradeable": bool(math.isfinite(scores[best])), "oos_pnl": float(eq.iloc[-1]), "oos_trades": int(len(oos.trades)),
        })
    folds = pd.DataFrame(fold_rows)
    equity = pd.concat(eq_parts)
    returns = np.diff(equity["equity"].to_numpy(), prepend=0.0) / notional
    cfg_sr = np.array([_per_bar_sharpe(np.concatenate(r)) for r in cfg_returns])
    finite = cfg_sr[np.isfinite(cfg_sr)]
    sr_var = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    dsr = deflated_sharpe(returns, len(grid), sr_var)
    index = equity.index
    elapsed = float((index[-1] - index[0]).total_seconds()) if isinstance(index, pd.DatetimeIndex) and len(index) > 1 else 0.0
    ann = sharpe_ratio(returns, elapsed)
    configs = pd.DataFrame([{**{f: asdict(p)[f] for f in GRID_FIELDS}, "oos_sharpe_per_bar": s, "oos_pnl": pnl}
                            for p, s, pnl in zip(grid, cfg_sr, cfg_pnl, strict=True)])
    chosen_keys = [tuple(str(v) for v in row) for row in folds[list(GRID_FIELDS)].itertuples(index=False)]
    changes = sum(a != b for a, b in itertools.pairwise(chosen_keys))
    summary: dict[str, object] = {
        "folds": len(folds), "configs": len(grid), "formation_bars": formation_bars, "trading_bars": trading_bars,
        "oos_bars": len(returns), "oos_pnl": float(equity["equity"].iloc[-1]), "oos_trades": int(folds["oos_trades"].sum()),
        "sharpe": ann["sharpe"], "sharpe_basis": ann["sharpe_basis"],
        "sharpe_per_bar": dsr["sharpe"], "sr0_per_bar": float(dsr["sr0"]), "deflated_sharpe": dsr["dsr"], "psr_vs_zero": dsr["psr0"],
        "config_sharpe_variance": sr_var, "parameter_changes": changes,
        "best_fixed_config_pnl": float(np.max(cfg_pnl)), "fee_bps": costs.fee_bps,
    }
    trades = pd.concat(trade_parts, ignore_index=True) if trade_parts else pd.DataFrame()
    return WalkForwardResult(folds=folds, equity=equity, configs=configs, trades=trades, summary=summary)
