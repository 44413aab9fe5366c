"""Stored bars → aligned pair frame → pair table: the one path every view, alert and export takes.

Cadence: tick and 1s views recompute on every live refresh; 1m/5m views use
closed bars only (the forming bar is not shown) and recompute only when a new
bar closes — :func:`compute_table` caches on (pair, timeframe, params, last closed bar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

import analytics
from analytics import PairParams
from pairs.sources import BarSource
from pairs.timeframe import Timeframe

__all__ = [
    "TICK_CORRELATION_GRID_MS", "PairFrame", "compute_table", "diagnostics_of", "ffill_bars", "needed_rows", "pair_frame",
    "pair_table_of", "table_of",
]

TICK_CORRELATION_GRID_MS = 1000  # tick returns are mostly zero: correlate 1 s returns instead


@dataclass(frozen=True)
class PairFrame:
    """Both legs aligned on one timeframe (``close_y``, ``close_x``, ``quiet_*_s`` …); closed rows only for 1m/5m."""

    frame: pd.DataFrame
    timeframe: Timeframe

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def closed_only(self) -> bool:
        return self.timeframe.closed_only

    def tail(self, rows: int) -> PairFrame:
        """The last ``rows`` rows (the whole frame when it is shorter)."""
        return self if rows >= len(self.frame) else PairFrame(self.frame.iloc[-rows:], self.timeframe)


def ffill_bars(timeframe: Timeframe, params: PairParams) -> int:
    """Bars a quiet leg's last price is carried: past the staleness limit (those rows are
    kept, marked stale, without z) and then 5 bars more before rows are dropped."""
    if timeframe.is_tick:
        return 0
    return int(math.ceil(params.stale_after_s / timeframe.bar_seconds)) + 5


def pair_frame(source: BarSource, y: str, x: str, timeframe: Timeframe, params: PairParams | None = None) -> PairFrame:
    """Aligned pair prices of ``source`` on ``timeframe`` (as the source can show it: :meth:`BarSource.effective`);
    1m/5m keep closed bars only (closed by the source's clock)."""
    params = params or PairParams()
    timeframe = source.effective(timeframe)
    frame = source.pair_bars(y, x, timeframe, ffill_bars(timeframe, params))
    if timeframe.closed_only and len(frame):
        frame = frame[frame["closed"].astype(bool)]
    return PairFrame(frame, timeframe)


def needed_rows(params: PairParams) -> int:
    """Bars a pair needs before its z-score exists (:func:`analytics.warmup_bars`)."""
    return analytics.warmup_bars(params)


def table_of(frame: pd.DataFrame, params: PairParams, timeframe: Timeframe) -> pd.DataFrame:
    """The pair table of an aligned frame, as every view, export and alert computes it."""
    grid = TICK_CORRELATION_GRID_MS if timeframe.is_tick else None
    return analytics.pair_table(frame, params, correlation_grid_ms=grid)


def compute_table(pf: PairFrame, params: PairParams, cache: dict | None = None) -> pd.DataFrame:
    """:func:`table_of` on the frame, cached for closed-bar timeframes."""
    f = pf.frame
    key = None
    if cache is not None and pf.closed_only and len(f):
        key = (pf.timeframe, params, len(f), f.index[0], f.index[-1], float(f["close_y"].iloc[-1]), float(f["close_x"].iloc[-1]))
        hit = cache.get("table")
        if hit is not None and hit[0] == key:
            return hit[1]
    table = table_of(f, params, pf.timeframe)
    if key is not None:
        cache["table"] = (key, table)
    return table


def pair_table_of(source: BarSource, y: str, x: str, timeframe: Timeframe, params: PairParams) -> pd.DataFrame:
    """The analytics table of a pair of ``source`` — what the dashboard shows and exports, and what the CLI writes."""
    pf = pair_frame(source, y, x, timeframe, params)
    if pf.rows < 3:
        raise ValueError(f"only {pf.rows} aligned {timeframe.unit} for {y}/{x}")
    return table_of(pf.frame, params, pf.timeframe)


def diagnostics_of(table: pd.DataFrame, params: PairParams, cache: dict | None = None) -> analytics.PairDiagnostics:
    """:func:`analytics.pair_diagnostics` of the table's prices (formation window), cached on its last bar."""
    key = (params.log_prices, params.formation_bars, len(table), table.index[-1] if len(table) else None,
           float(table["price_y"].iloc[-1]) if len(table) else None)
    if cache is not None:
        hit = cache.get("diagnostics")
        if hit is not None and hit[0] == key:
            return hit[1]
    d = analytics.pair_diagnostics(table["price_y"], table["price_x"], params)
    if cache is not None:
        cache["diagnostics"] = (key, d)
    return d
