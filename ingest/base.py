"""The source/sink interfaces and the health object every source exposes."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from storage.store import GapRecord
from storage.ticks import TickBatch

__all__ = ["SourceHealth", "Source", "SymbolHealth", "TickSink"]


class TickSink(Protocol):
    """Where a source delivers ordered, de-duplicated batches (``storage.TickStore``)."""

    def write(self, batch: TickBatch) -> int: ...

    def record_gap(self, gap: GapRecord) -> None: ...

    def last_agg_id(self, symbol: str) -> int | None: ...


@dataclass
class SymbolHealth:
    """Per-symbol feed statistics (latency = local receive time - exchange event time ``E``)."""

    symbol: str
    frames: int = 0
    last_frame_at: float | None = None
    last_trade_time: int | None = None
    last_agg_id: int | None = None
    duplicates: int = 0
    gaps_detected: int = 0
    gaps_filled: int = 0
    gaps_unfillable: int = 0
    ticks_backfilled: int = 0
    _latencies: deque = field(default_factory=lambda: deque(maxlen=4096), repr=False)
    _rate: deque = field(default_factory=lambda: deque(maxlen=64), repr=False)

    def observe(self, n: int, now: float, latencies_ms: list[float]) -> None:
        self.frames += n
        self.last_frame_at = now
        self._latencies.extend(latencies_ms)
        self._rate.append((now, n))

    def frames_per_s(self, now: float | None = None, horizon: float = 5.0) -> float:
        now = time.time() if now is None else now
        recent = [(t, n) for t, n in list(self._rate) if now - t <= horizon]
        return sum(n for _, n in recent) / horizon if recent else 0.0

    def latency_ms(self, q: float) -> float | None:
        lat = list(self._latencies)
        return float(np.percentile(lat, q)) if lat else None

    def as_dict(self) -> dict[str, object]:
        now = time.time()
        return {
            "symbol": self.symbol,
            "frames": self.frames,
            "frames_per_s": round(self.frames_per_s(now), 2),
            "last_frame_age_s": None if self.last_frame_at is None else round(now - self.last_frame_at, 3),
            "latency_p50_ms": self.latency_ms(50),
            "latency_p99_ms": self.latency_ms(99),
            "last_agg_id": self.last_agg_id,
            "duplicates": self.duplicates,
            "gaps_detected": self.gaps_detected,
            "gaps_filled": self.gaps_filled,
            "gaps_unfillable": self.gaps_unfillable,
            "ticks_backfilled": self.ticks_backfilled,
        }


@dataclass
class SourceHealth:
    """What the UI renders about a source. ``state``: connecting/live/backoff/blocked/stale/stopped."""

    name: str
    state: str = "connecting"
    message: str = "starting"
    url: str = ""
    reconnects: int = 0  # connections lost after they were up
    attempts: int = 0  # consecutive failed connection attempts (0 once connected)
    connected_since: float | None = None
    malformed: int = 0
    last_malformed: str = ""
    symbols: dict[str, SymbolHealth] = field(default_factory=dict)

    def symbol(self, symbol: str) -> SymbolHealth:
        h = self.symbols.get(symbol)
        if h is None:
            h = self.symbols[symbol] = SymbolHealth(symbol)
        return h


class Source(ABC):
    """A market-data source delivering ordered tick batches to a :class:`TickSink`.

    Implementations: the Binance WebSocket source, a file replay. ``start`` must
    not block; ``stop`` must return within a few seconds.
    """

    health: SourceHealth

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self, timeout: float = 5.0) -> None: ...

    @property
    @abstractmethod
    def symbols(self) -> tuple[str, ...]: ...

    def set_symbols(self, symbols: list[str] | tuple[str, ...]) -> None:  # noqa: B027 - optional
        """Change the streamed symbols at runtime (sources that can)."""
