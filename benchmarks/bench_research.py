"""Research analytics: the universe scan at 50 symbols vs a statsmodels ``coint`` loop; walk-forward cost."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from statsmodels.tsa.stattools import coint

from analytics import PairParams, parameter_grid, scan_universe, walk_forward
from benchmarks.harness import Row, median_time


def _universe(n_sym: int, n_bars: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2025-01-01", periods=n_bars, freq="1min", tz="UTC")
    return pd.DataFrame(np.exp(4 + np.cumsum(rng.normal(0, 1e-3, (n_bars, n_sym)), axis=0)), index=idx,
                        columns=[f"S{i:02d}USDT" for i in range(n_sym)])


def bench_universe_scan(quick: bool) -> list[Row]:
    n_sym, n_bars = (20, 2000) if quick else (50, 2000)
    closes = _universe(n_sym, n_bars)
    logp = np.log(closes).to_numpy()
    pairs = list(itertools.combinations(range(n_sym), 2))
    ours = median_time(lambda: scan_universe(closes, n_bars), repeat=3)
    sample = pairs[: 60 if quick else 120]

    def loop() -> None:  # the obvious alternative: coint both directions per pair (on a sample, scaled)
        for i, j in sample:
            coint(logp[:, i], logp[:, j], autolag="AIC")
            coint(logp[:, j], logp[:, i], autolag="AIC")

    alt = median_time(loop, repeat=1, warmup=0) * len(pairs) / len(sample)
    return [Row(f"universe scan {n_sym} symbols ({len(pairs):,} pairs) × {n_bars:,} bars, incl. both halves",
                ours, f"statsmodels coint both directions ({len(sample)} pairs timed, scaled; no halves)", alt, "target ≤ 1 s")]


def bench_walk_forward(quick: bool) -> list[Row]:
    closes = _universe(2, 12_000 if quick else 43_200, seed=3)
    grid = parameter_grid(PairParams(formation_bars=2000))
    ours = median_time(lambda: walk_forward(closes.iloc[:, 0], closes.iloc[:, 1], grid, 5760, 1440), repeat=1, warmup=0)
    return [Row(f"walk-forward {len(closes):,} 1m bars × {len(grid)} configs (formation 5,760 / trading 1,440)", ours, "-", None,
                "every config backtested on every formation and trading window")]


SUITE = [bench_universe_scan, bench_walk_forward]
