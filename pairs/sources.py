"""Where a view's bars come from: the feed in memory (live or a replay) or an uploaded dataset.

Every view, table and scan reads through a :class:`BarSource`, so the Multi-asset,
Research and Exports tabs work the same on live data, on a replay and on an
uploaded multi-symbol history — one code path, three sources.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from pairs.timeframe import Timeframe
from storage.bars import align_pair
from storage.datasets import DatasetStore
from storage.store import TickStore

__all__ = ["BarSource", "DatasetBars", "LastTrade", "LiveBars"]


@dataclass(frozen=True)
class LastTrade:
    """A symbol's newest trade (``agg_id`` None for a dataset's last bar close, timed at the bar's end)."""

    time_ms: int
    price: float
    agg_id: int | None


class BarSource(Protocol):
    """Bars of a set of symbols on the dashboard's timeframes.

    ``bars`` returns the :data:`storage.bars.BAR_COLUMNS` plus ``closed`` on a UTC
    start-time index; ``pair_bars`` both legs on one grid (:func:`storage.bars.align_pair`:
    ``close_y``, ``close_x``, ``quiet_*_s``, ``closed`` …).
    """

    label: str
    live: bool  # True for the feed in memory (bars keep arriving), False for a fixed dataset

    def symbols(self) -> tuple[str, ...]: ...

    def now_ms(self) -> int: ...

    def bars(self, symbol: str, timeframe: Timeframe) -> pd.DataFrame: ...

    def pair_bars(self, y: str, x: str, timeframe: Timeframe, ffill_limit: int) -> pd.DataFrame: ...

    def side_known(self, symbol: str) -> bool: ...

    def last_trade(self, symbol: str) -> LastTrade | None:
        """The newest trade (live) or bar close (dataset) of ``symbol``; None before any."""
        ...

    def effective(self, timeframe: Timeframe) -> Timeframe:
        """The timeframe this source can show for ``timeframe`` (a dataset of 1m bars has no 1s view)."""
        ...


class LiveBars:
    """The feed in memory (:class:`storage.store.TickStore`), on the wall clock or a replay's clock."""

    live = True

    def __init__(self, store: TickStore, symbols: Callable[[], tuple[str, ...]], clock: Callable[[], int] | None = None,
                 side_known: dict[str, bool] | None = None, label: str = "live") -> None:
        self.store = store
        self._symbols = symbols
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._side = side_known if side_known is not None else {}
        self.label = label

    def symbols(self) -> tuple[str, ...]:
        return tuple(self._symbols())

    def now_ms(self) -> int:
        return int(self._clock())

    def bars(self, symbol: str, timeframe: Timeframe) -> pd.DataFrame:
        return self.store.bars(symbol, timeframe.bars.bar_ms, as_of_ms=self.now_ms())

    def pair_bars(self, y: str, x: str, timeframe: Timeframe, ffill_limit: int) -> pd.DataFrame:
        if timeframe.is_tick:
            return self.store.pair_ticks(y, x)
        return self.store.pair_bars(y, x, timeframe.value, ffill_limit=ffill_limit, as_of_ms=self.now_ms())

    def side_known(self, symbol: str) -> bool:
        return self._side.get(symbol, True)

    def effective(self, timeframe: Timeframe) -> Timeframe:
        return timeframe

    def last_trade(self, symbol: str) -> LastTrade | None:
        t = self.store.buffer.buffer(symbol).last_trade()
        return None if t is None else LastTrade(*t)


class DatasetBars:
    """One uploaded dataset (:class:`storage.datasets.DatasetStore`): every bar is closed.

    The tick timeframe of a dataset is its 1 s bars. Bars are read once per
    (symbol, timeframe) and kept while the dataset is unchanged (a replacement or
    an added leg is a new version and reads afresh).
    """

    live = False

    def __init__(self, datasets: DatasetStore, name: str) -> None:
        self.datasets = datasets
        self.name = name
        self.label = f"dataset '{name}'"
        self._cache: dict[tuple, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def _info(self) -> dict:
        info = self.datasets.info(self.name)
        if info is None:
            raise ValueError(f"no dataset named {self.name!r}")
        return info

    def symbols(self) -> tuple[str, ...]:
        return tuple(self._info()["symbols"])

    def now_ms(self) -> int:
        return 2**62  # every bar of a dataset is closed

    @property
    def kind(self) -> str:
        return str(self._info()["kind"])

    def native_ms(self) -> int | None:
        """Bar length of a bars dataset (None for ticks: any timeframe)."""
        info = self._info()
        if info["kind"] == "ticks":
            return None
        key = ("native", info["created_at"])
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self.datasets.native_ms(self.name)
            return self._cache[key]

    def bars(self, symbol: str, timeframe: Timeframe) -> pd.DataFrame:
        info = self._info()
        key = (symbol, timeframe.bars.value, info["created_at"])
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            hit = self.datasets.bars(self.name, symbol, timeframe.bars.value)
            with self._lock:
                self._cache = {k: v for k, v in self._cache.items() if k[-1] == info["created_at"]}
                self._cache[key] = hit
        return hit

    def pair_bars(self, y: str, x: str, timeframe: Timeframe, ffill_limit: int) -> pd.DataFrame:
        tf = timeframe.bars
        return align_pair(self.bars(y, tf), self.bars(x, tf), tf.bar_ms, ffill_limit=ffill_limit, as_of_ms=2**62)

    def effective(self, timeframe: Timeframe) -> Timeframe:
        """Tick → 1 s bars; a timeframe finer than the dataset's bars → the finest one its bars allow."""
        native = self.native_ms()
        tf = timeframe.bars
        if native is not None and tf.bar_ms < native:
            coarser = Timeframe.at_least(native)
            if coarser is None:
                raise ValueError(f"dataset '{self.name}' has bars of {native / 60_000:g} min: longer than the longest timeframe (5m)")
            return coarser
        return tf

    def last_trade(self, symbol: str) -> LastTrade | None:
        tf = self.effective(Timeframe.S1)
        b = self.bars(symbol, tf)
        if b.empty:
            return None
        return LastTrade(int(b.index[-1].value // 1_000_000) + tf.bar_ms, float(b["close"].iloc[-1]), None)

    def side_known(self, symbol: str) -> bool:
        if self.kind != "ticks":
            return False
        b = self.bars(symbol, Timeframe.S1)
        return bool(b["taker_buy_volume"].notna().any()) if len(b) else False
