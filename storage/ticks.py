"""The tick model shared by ingestion and storage.

A :class:`TickBatch` is a NumPy structured array of one symbol's aggregate
trades in ``agg_id`` order. Prices and quantities arrive as decimal strings
and are stored as IEEE-754 float64: every Binance price/quantity (at most ~15
significant digits) round-trips exactly through ``float(str)`` -> ``repr``, so
no precision is lost for storage and display; sums (volume, VWAP) carry the
usual float64 relative rounding of ~1e-16 per operation.

Times: ``trade_time`` (``T``) and ``event_time`` (``E``) are exchange ms since
the epoch UTC; ``recv_time`` is this machine's receive clock in ms (float, µs
resolution kept in SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BATCH_DTYPE", "TickBatch", "empty_batch"]

BATCH_DTYPE = np.dtype(
    [
        ("agg_id", "i8"),
        ("trade_time", "i8"),
        ("event_time", "i8"),
        ("recv_time", "f8"),
        ("price", "f8"),
        ("qty", "f8"),
        ("first_id", "i8"),
        ("last_id", "i8"),
        ("is_buyer_maker", "?"),
    ]
)


@dataclass(frozen=True)
class TickBatch:
    """Ticks of one symbol, ``data`` sorted by ``agg_id`` (a ``BATCH_DTYPE`` array)."""

    symbol: str
    data: np.ndarray

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @classmethod
    def from_rows(cls, symbol: str, rows: list[tuple]) -> TickBatch:
        """Build from tuples in ``BATCH_DTYPE`` field order (sorted here by agg_id)."""
        arr = np.array(rows, dtype=BATCH_DTYPE) if rows else np.empty(0, dtype=BATCH_DTYPE)
        if arr.shape[0] > 1 and np.any(np.diff(arr["agg_id"]) < 0):
            arr = arr[np.argsort(arr["agg_id"], kind="stable")]
        return cls(symbol.upper(), arr)


def empty_batch(symbol: str) -> TickBatch:
    return TickBatch(symbol.upper(), np.empty(0, dtype=BATCH_DTYPE))
