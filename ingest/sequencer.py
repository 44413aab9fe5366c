"""Per-symbol ordering, de-duplication and gap filling between a feed and the sink.

Binance aggregate trade ids (``a``) are contiguous per symbol, so a jump is a
gap. When one appears — mid-stream, after a reconnect, or after a restart
(resuming from the last id the sink holds) — the sequencer stops delivering
that symbol, fetches the missing ids from REST in order, delivers them, and
then continues with the live tick: the sink sees every id exactly once, in
order. Ids REST cannot provide (older than its ~48 h horizon, beyond the
backfill cap, or after repeated failures) are recorded as a known gap.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import numpy as np

from ingest.base import SourceHealth
from ingest.binance_parse import ParsedTrade
from ingest.rest import BackfillError, RestClient
from storage.store import GapRecord
from storage.ticks import BATCH_DTYPE, TickBatch

__all__ = ["Sequencer"]

log = logging.getLogger(__name__)


class Sequencer:
    """Turns parsed trades into ordered, gap-free batches for ``sink`` (single thread)."""

    def __init__(self, sink, rest: RestClient | None, health: SourceHealth, max_backfill_ids: int = 500_000) -> None:
        self.sink = sink
        self.rest = rest
        self.health = health
        self.max_backfill_ids = max_backfill_ids
        self._last: dict[str, int | None] = {}
        self.delivery_latency_ms: deque[float] = deque(maxlen=100_000)

    def last_id(self, symbol: str) -> int | None:
        if symbol not in self._last:
            self._last[symbol] = self.sink.last_agg_id(symbol)
        return self._last[symbol]

    def process(self, trades: list[ParsedTrade]) -> None:
        """Deliver a list of parsed trades (any mix of symbols, feed order)."""
        by_symbol: dict[str, list[ParsedTrade]] = {}
        for tr in trades:
            by_symbol.setdefault(tr[0], []).append(tr)
        now = time.time()
        for symbol, rows in by_symbol.items():
            h = self.health.symbol(symbol)
            h.observe(len(rows), now, [now * 1000 - r[3] for r in rows[-64:]])
            self._process_symbol(symbol, rows)

    def _process_symbol(self, symbol: str, rows: list[ParsedTrade]) -> None:
        h = self.health.symbol(symbol)
        last = self.last_id(symbol)
        out: list[tuple] = []
        for r in rows:
            a = r[1]
            if last is not None and a <= last:
                h.duplicates += 1
                continue
            if last is not None and a > last + 1:
                self._deliver(symbol, out)
                out = []
                self._backfill(symbol, last + 1, a - 1, gap_end_time=r[2])
            out.append(r[1:])
            last = a
        self._deliver(symbol, out)
        self._last[symbol] = last
        h.last_agg_id = last
        if rows:
            h.last_trade_time = rows[-1][2]

    def _deliver(self, symbol: str, rows: list[tuple]) -> None:
        if not rows:
            return
        batch = TickBatch(symbol, np.array(rows, dtype=BATCH_DTYPE))
        self.sink.write(batch)
        done = time.time() * 1000
        recv = batch.data["recv_time"]
        self.delivery_latency_ms.extend((done - recv[np.isfinite(recv)]).tolist())

    def _backfill(self, symbol: str, lo: int, hi: int, gap_end_time: int | None) -> None:
        h = self.health.symbol(symbol)
        h.gaps_detected += 1
        log.info("%s: gap of %d ids (%d..%d), backfilling", symbol, hi - lo + 1, lo, hi)
        if self.rest is None:
            self._unfillable(symbol, lo, hi, None, gap_end_time, "no REST endpoint configured")
            return
        if hi - lo + 1 > self.max_backfill_ids:
            cut = hi - self.max_backfill_ids + 1
            self._unfillable(symbol, lo, cut - 1, None, None, f"gap larger than the backfill cap ({self.max_backfill_ids} ids)")
            lo = cut
        cur, filled, first_time = lo, 0, None
        while cur <= hi:
            try:
                batch = self.rest.agg_trades(symbol, cur, limit=min(1000, hi - cur + 1))
            except BackfillError as exc:
                self._unfillable(symbol, cur, hi, None, gap_end_time, f"REST backfill failed: {exc}")
                break
            ids = batch.data["agg_id"]
            data = batch.data[(ids >= cur) & (ids <= hi)]
            if len(data) == 0:
                self._unfillable(symbol, cur, hi, None, gap_end_time, "REST returned no trades for these ids")
                break
            first = int(data["agg_id"][0])
            if first > cur:
                self._unfillable(
                    symbol, cur, first - 1, None, int(data["trade_time"][0]),
                    "not available from REST (older than its ~48 h history)",
                )
            if first_time is None:
                first_time = int(data["trade_time"][0])
            self.sink.write(TickBatch(symbol, data))
            filled += len(data)
            h.ticks_backfilled += len(data)
            cur = int(data["agg_id"][-1]) + 1
        if filled:
            h.gaps_filled += 1
            self.sink.record_gap(GapRecord(symbol, lo, hi, first_time, gap_end_time, "filled", filled, "backfilled from REST"))

    def _unfillable(self, symbol: str, lo: int, hi: int, t0: int | None, t1: int | None, note: str) -> None:
        h = self.health.symbol(symbol)
        h.gaps_unfillable += 1
        log.warning("%s: ids %d..%d unfillable: %s", symbol, lo, hi, note)
        self.sink.record_gap(GapRecord(symbol, lo, hi, t0, t1, "unfillable", 0, note))
