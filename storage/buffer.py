"""Thread-safe, bounded, columnar in-memory tick buffer (one writer, many readers).

Per symbol, ticks live in parallel NumPy arrays (8 columns, 45 bytes a tick):
``agg_id`` i8, ``trade_time`` i8 (ms), ``price`` f8, ``qty`` f8,
``event_delay`` i4 (``E - T`` ms), ``recv_delay`` i4 (receive - ``E`` ms),
``fills`` i4 (``l - f + 1``) and ``is_buyer_maker`` bool. First/last trade ids
and the full-resolution receive time are kept in SQLite.

Appends are O(1) amortised (capacity doubles; the live window slides by
compaction). The buffer is bounded by ``max_ticks`` and ``max_age_ms`` per
symbol. A per-symbol lock is held by the writer for the copy of one batch and
by a reader for the copy of the slice it asked for — never longer — so a
snapshot is always a consistent prefix of what was appended (no torn rows).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from storage.ticks import TickBatch

__all__ = ["COLUMNS", "BYTES_PER_TICK", "SymbolBuffer", "TickBuffer", "TickSnapshot"]

COLUMNS: dict[str, str] = {
    "agg_id": "i8",
    "trade_time": "i8",
    "price": "f8",
    "qty": "f8",
    "event_delay": "i4",
    "recv_delay": "i4",
    "fills": "i4",
    "is_buyer_maker": "?",
}
BYTES_PER_TICK = sum(np.dtype(t).itemsize for t in COLUMNS.values())


@dataclass(frozen=True)
class TickSnapshot:
    """A copied, immutable view of one symbol's ticks (columns as NumPy arrays)."""

    symbol: str
    columns: dict[str, np.ndarray]
    version: int

    def __len__(self) -> int:
        return int(next(iter(self.columns.values())).shape[0]) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


class SymbolBuffer:
    """Columnar ring-like buffer of one symbol; see the module docstring."""

    def __init__(self, symbol: str, max_ticks: int, max_age_ms: int, initial_capacity: int = 4096) -> None:
        self.symbol = symbol
        self.max_ticks = int(max_ticks)
        self.max_age_ms = int(max_age_ms)
        self._cap = max(16, min(initial_capacity, self.max_ticks))
        self._cols = {k: np.empty(self._cap, dtype=t) for k, t in COLUMNS.items()}
        self._start = 0
        self._end = 0
        self._lock = threading.Lock()
        self.version = 0
        self.appended = 0
        self.duplicates_dropped = 0
        self.evicted = 0

    # -- writer -----------------------------------------------------------
    def append(self, batch: TickBatch) -> int:
        """Append ticks with ``agg_id`` above the last one held; return how many were added."""
        data = batch.data
        if data.shape[0] == 0:
            return 0
        with self._lock:
            if self._end > self._start:
                last = self._cols["agg_id"][self._end - 1]
                if data["agg_id"][0] <= last:
                    keep = data["agg_id"] > last
                    self.duplicates_dropped += int((~keep).sum())
                    data = data[keep]
            k = int(data.shape[0])
            if k == 0:
                return 0
            if k > self.max_ticks:
                self.evicted += k - self.max_ticks
                data = data[-self.max_ticks :]
                k = self.max_ticks
            self._reserve(k)
            s, e = self._end, self._end + k
            c = self._cols
            c["agg_id"][s:e] = data["agg_id"]
            c["trade_time"][s:e] = data["trade_time"]
            c["price"][s:e] = data["price"]
            c["qty"][s:e] = data["qty"]
            c["event_delay"][s:e] = np.clip(data["event_time"] - data["trade_time"], -(2**31), 2**31 - 1)
            recv = np.nan_to_num(data["recv_time"] - data["event_time"], nan=0.0)
            c["recv_delay"][s:e] = np.clip(np.rint(recv), -(2**31), 2**31 - 1)
            c["fills"][s:e] = np.clip(data["last_id"] - data["first_id"] + 1, 0, 2**31 - 1)
            c["is_buyer_maker"][s:e] = data["is_buyer_maker"]
            self._end = e
            self._evict_old()
            self.version += 1
            self.appended += k
            return k

    def _reserve(self, k: int) -> None:
        """Make room for ``k`` more rows at the end (compact, grow, or drop the oldest)."""
        live = self._end - self._start
        if self._end + k <= self._cap:
            return
        overflow = live + k - self.max_ticks
        if overflow > 0:
            self._start += overflow
            self.evicted += overflow
            live -= overflow
        need = live + k
        if need > self._cap:
            new_cap = self._cap
            while new_cap < need:
                new_cap *= 2
            new_cap = min(max(new_cap, need), self.max_ticks)
            for name, arr in self._cols.items():
                grown = np.empty(new_cap, dtype=arr.dtype)
                grown[:live] = arr[self._start : self._end]
                self._cols[name] = grown
            self._cap = new_cap
        else:
            for arr in self._cols.values():
                arr[:live] = arr[self._start : self._end]
        self._start, self._end = 0, live

    def _evict_old(self) -> None:
        if self.max_age_ms <= 0 or self._end == self._start:
            return
        tt = self._cols["trade_time"]
        cutoff = tt[self._end - 1] - self.max_age_ms
        if tt[self._start] >= cutoff:
            return
        cut = self._start + int(np.searchsorted(tt[self._start : self._end], cutoff, side="left"))
        self.evicted += cut - self._start
        self._start = cut

    # -- readers ----------------------------------------------------------
    def snapshot(self, start_ms: int | None = None, end_ms: int | None = None, columns: tuple[str, ...] | None = None) -> TickSnapshot:
        """Copy ticks with ``start_ms <= trade_time < end_ms`` (all when None)."""
        names = columns or tuple(COLUMNS)
        with self._lock:
            s, e = self._start, self._end
            tt = self._cols["trade_time"]
            if start_ms is not None:
                s += int(np.searchsorted(tt[s:e], start_ms, side="left"))
            if end_ms is not None:
                e = self._start + int(np.searchsorted(tt[self._start : e], end_ms, side="left"))
                e = max(e, s)
            out = {n: self._cols[n][s:e].copy() for n in names}
            return TickSnapshot(self.symbol, out, self.version)

    def stats(self) -> dict[str, int | float | None]:
        with self._lock:
            n = self._end - self._start
            last_time = int(self._cols["trade_time"][self._end - 1]) if n else None
            last_id = int(self._cols["agg_id"][self._end - 1]) if n else None
            first_time = int(self._cols["trade_time"][self._start]) if n else None
            return {
                "ticks": n,
                "first_time": first_time,
                "last_time": last_time,
                "last_agg_id": last_id,
                "capacity": self._cap,
                "bytes": self._cap * BYTES_PER_TICK,
                "version": self.version,
                "appended": self.appended,
                "duplicates_dropped": self.duplicates_dropped,
                "evicted": self.evicted,
            }

    def first_time(self) -> int | None:
        """Trade time (ms) of the oldest tick held, or None."""
        with self._lock:
            return int(self._cols["trade_time"][self._start]) if self._end > self._start else None

    def last_time(self) -> int | None:
        """Trade time (ms) of the newest tick held, or None."""
        with self._lock:
            return int(self._cols["trade_time"][self._end - 1]) if self._end > self._start else None

    def last_trade(self) -> tuple[int, float, int] | None:
        """``(trade time ms, price, aggregate id)`` of the newest tick held, read under one lock; None when empty."""
        with self._lock:
            if self._end <= self._start:
                return None
            i = self._end - 1
            return int(self._cols["trade_time"][i]), float(self._cols["price"][i]), int(self._cols["agg_id"][i])

    def last_agg_id(self) -> int | None:
        with self._lock:
            return int(self._cols["agg_id"][self._end - 1]) if self._end > self._start else None


class TickBuffer:
    """All symbols' buffers; creating a symbol's buffer is itself thread-safe."""

    def __init__(self, max_ticks: int = 2_000_000, max_age_ms: int = 26 * 3600 * 1000) -> None:
        self.max_ticks = max_ticks
        self.max_age_ms = max_age_ms
        self._buffers: dict[str, SymbolBuffer] = {}
        self._lock = threading.Lock()

    def buffer(self, symbol: str) -> SymbolBuffer:
        symbol = symbol.upper()
        buf = self._buffers.get(symbol)
        if buf is None:
            with self._lock:
                buf = self._buffers.get(symbol)
                if buf is None:
                    buf = SymbolBuffer(symbol, self.max_ticks, self.max_age_ms)
                    self._buffers[symbol] = buf
        return buf

    def append(self, batch: TickBatch) -> int:
        return self.buffer(batch.symbol).append(batch)

    def symbols(self) -> list[str]:
        return sorted(self._buffers)

    def snapshot(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None, columns: tuple[str, ...] | None = None) -> TickSnapshot:
        return self.buffer(symbol).snapshot(start_ms, end_ms, columns)
