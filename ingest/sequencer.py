"""Per-symbol ordering, de-duplication and gap filling between a feed and the sink.

Binance aggregate trade ids (``a``) are contiguous per symbol, so a jump is a
gap. When one appears — mid-stream, after a reconnect, or after a restart
(resuming from the last id the sink holds) — the sequencer stops delivering
that symbol, fetches the missing ids from REST in order, delivers them, and
then continues with the live tick: the sink sees every id exactly once, in
order. Ids REST cannot provide (older than its ~48 h horizon, beyond the
backfill cap, or after repeated failures) are recorded as a known gap.

The live trades of one :meth:`Sequencer.process` call (one read from the feed,
all symbols) reach the sink in one ``atomic`` block when the sink has one, so
a pair reader never sees one leg of a read without the other.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from contextlib import nullcontext

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
        self._out: list[TickBatch] = []  # live batches of the current read, written together

    def last_id(self, symbol: str) -> int | None:
        if symbol not in self._last:
            self._last[symbol] = self.sink.last_agg_id(symbol)
        return self._last[symbol]

    def forget(self, symbol: str) -> None:
        """Drop the remembered last id of ``symbol``: the next one comes from the sink (what is stored)."""
        self._last.pop(symbol, None)

    def process(self, trades: list[ParsedTrade]) -> None:
        """Deliver a list of parsed trades (any mix of symbols, feed order)."""
        by_symbol: dict[str, list[ParsedTrade]] = {}
        for tr in trades:
            by_symbol.setdefault(tr[0], []).append(tr)
        now = time.time()
        try:
            for symbol, rows in by_symbol.items():
                h = self.health.symbol(symbol)
                h.observe(len(rows), now, [now * 1000 - r[3] for r in rows[-64:]])
                self._process_symbol(symbol, rows)
        finally:
            self._flush()

    def _flush(self) -> None:
        """Write the batches collected so far, all in one ``atomic`` block of the sink."""
        out, self._out = self._out, []
        if not out:
            return
        try:
            with getattr(self.sink, "atomic", nullcontext)():
                for batch in out:
                    self.sink.write(batch)
        except BaseException:
            for batch in out:  # resume from what the sink holds: nothing is skipped as if written
                self.forget(batch.symbol)
            raise
        done = time.time() * 1000
        for batch in out:
            recv = batch.data["recv_time"]
            self.delivery_latency_ms.extend((done - recv[np.isfinite(recv)]).tolist())

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
                self._flush()  # what came before the gap is written before the backfill (a network call)
                self._backfill(symbol, last + 1, a - 1, gap_end_time=r[2])
            out.append(r[1:])
            last = a
        self._deliver(symbol, out)
        self._last[symbol] = last
        h.last_agg_id = last
        if rows:
            h.last_trade_time = rows[-1][2]

    def catch_up(self, symbol: str, seed_from_ms: int | None = None) -> int:
        """Fetch, at once, every trade after the last one held (after a (re)connect or at start).

        Without this, trades missed while disconnected were fetched only when the
        symbol traded again — never, if the stream ended during the outage. With
        no trade held at all and ``seed_from_ms`` given, start from the first trade
        at or after that time (so the current bar is complete from its start).
        Returns the trades delivered.
        """
        if self.rest is None:
            return 0
        self.retry_pending(symbol)
        last = self.last_id(symbol)
        if last is None:
            if seed_from_ms is None:
                return 0
            try:
                first = self.rest.first_trade_at(symbol, seed_from_ms)
            except BackfillError as exc:
                log.info("%s: no history seed: %s", symbol, exc)
                return 0
            if len(first) == 0:
                return 0
            last = int(first.data["agg_id"][0]) - 1
            self._last[symbol] = last
        h = self.health.symbol(symbol)
        lo, got, first_time = last + 1, 0, None
        while True:
            try:
                batch = self.rest.agg_trades(symbol, last + 1, limit=1000)
            except BackfillError as exc:
                log.warning("%s: catch-up after connect failed: %s (the next frame's gap is backfilled instead)", symbol, exc)
                break
            data = batch.data[batch.data["agg_id"] > last]
            if len(data) == 0:
                break
            if int(data["agg_id"][0]) != last + 1:  # REST no longer has the first ids: a known gap
                self._unfillable(symbol, last + 1, int(data["agg_id"][0]) - 1, None, int(data["trade_time"][0]),
                                 "not available from REST (older than its ~48 h history)")
            if first_time is None:
                first_time = int(data["trade_time"][0])
            self.sink.write(TickBatch(symbol, data))
            got += len(data)
            last = int(data["agg_id"][-1])
            self._last[symbol] = last
            h.last_agg_id = last
            h.last_trade_time = int(data["trade_time"][-1])
            if len(batch) < 1000:
                break
        if got:
            h.ticks_backfilled += got
            h.gaps_filled += 1
            self.sink.record_gap(GapRecord(symbol, lo, last, first_time, None, "filled", got, "caught up over REST after connecting"))
        return got

    def _deliver(self, symbol: str, rows: list[tuple]) -> None:
        if not rows:
            return
        self._out.append(TickBatch(symbol, np.array(rows, dtype=BATCH_DTYPE)))

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
                if exc.retryable:  # shutting down, a network outage: try again later, never give these ids up
                    self._pending(symbol, cur, hi, gap_end_time, f"REST backfill interrupted ({exc}); retried at the next connect")
                else:
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

    def _pending(self, symbol: str, lo: int, hi: int, t1: int | None, note: str) -> None:
        log.warning("%s: ids %d..%d pending: %s", symbol, lo, hi, note)
        self.sink.record_gap(GapRecord(symbol, lo, hi, None, t1, "pending", 0, note))

    def retry_pending(self, symbol: str) -> int:
        """Backfill the id ranges an interrupted backfill left pending (at every connect). Returns ids filled."""
        if self.rest is None or not hasattr(self.sink, "pending_gaps"):
            return 0
        if hasattr(self.sink, "writer_ok") and not self.sink.writer_ok():
            return 0  # the database is not taking writes: refetched rows would only be dropped again
        done = 0
        for gap in self.sink.pending_gaps(symbol):
            cur, got = gap.from_agg_id, 0
            while cur <= gap.to_agg_id:
                try:
                    batch = self.rest.agg_trades(symbol, cur, limit=min(1000, gap.to_agg_id - cur + 1))
                except BackfillError as exc:
                    if not exc.retryable:
                        self.sink.resolve_gap(gap, "unfillable", got, f"REST backfill failed: {exc}")
                    return done
                data = batch.data[(batch.data["agg_id"] >= cur) & (batch.data["agg_id"] <= gap.to_agg_id)]
                if len(data) == 0:
                    break
                self.sink.write(TickBatch(symbol, data))
                got += len(data)
                cur = int(data["agg_id"][-1]) + 1
            status = "filled" if cur > gap.to_agg_id else "unfillable"
            self.sink.resolve_gap(gap, status, got, "backfilled on retry" if status == "filled" else "not available from REST on retry")
            done += got
        return done

    def _unfillable(self, symbol: str, lo: int, hi: int, t0: int | None, t1: int | None, note: str) -> None:
        h = self.health.symbol(symbol)
        h.gaps_unfillable += 1
        log.warning("%s: ids %d..%d unfillable: %s", symbol, lo, hi, note)
        self.sink.record_gap(GapRecord(symbol, lo, hi, t0, t1, "unfillable", 0, note))
