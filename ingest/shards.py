"""Recorder shards on PostgreSQL: record the symbols whose advisory lock this process holds.

Every recorder (``python -m ingest``, or a dashboard with ingestion on) asks for
the lock ``symbol:<SYMBOL>`` of each symbol it is configured to record. A
symbol is streamed only by the process holding its lock; a second recorder of
the same symbol waits as a hot standby (retrying every second) and takes over
when the first one's database session ends — it dies, or loses its
connection. A takeover restarts the symbol from the newest id in PostgreSQL and
catches up over REST, so nothing is lost; writes are idempotent (``ON CONFLICT
DO NOTHING``), so a brief overlap cannot double-write.

:class:`BarRecorder` writes each owned symbol's closed 1s/1m/5m bars once to
the ``bars`` table (only bars whose every tick is in memory), and every complete
hour of 1 s bars once more as a packed block (``bar_blocks``, fast day reads).
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from storage.postgres import BAR_PERIODS_MS, BLOCK_MS, Leases

__all__ = ["BarRecorder", "ShardedRecorder", "symbol_lock"]

log = logging.getLogger(__name__)


def symbol_lock(symbol: str) -> str:
    return f"symbol:{symbol.upper()}"


class ShardedRecorder:
    """Keeps ``source`` subscribed to exactly the configured symbols whose lock is held."""

    def __init__(self, store, source, symbols: tuple[str, ...] | list[str], leases: Leases) -> None:
        self.store = store
        self.source = source
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.leases = leases
        self.owned: tuple[str, ...] = ()
        self.takeovers = 0
        self._lock = threading.Lock()
        leases.subscribe(self._changed)
        leases.want(symbol_lock(s) for s in self.symbols)

    def want(self, symbols: list[str] | tuple[str, ...]) -> None:
        """Record ``symbols`` too (when their lock can be had)."""
        new = [s.upper() for s in symbols if s.upper() not in self.symbols]
        if new:
            self.symbols = tuple(dict.fromkeys([*self.symbols, *new]))
            self.leases.want(symbol_lock(s) for s in new)

    def standby(self) -> tuple[str, ...]:
        """Configured symbols another process records now (this one takes over if it stops)."""
        return tuple(s for s in self.symbols if s not in self.owned)

    def _changed(self, held: frozenset[str]) -> None:
        with self._lock:
            owned = tuple(s for s in self.symbols if symbol_lock(s) in held)
            adopted = tuple(s for s in owned if s not in self.owned)
            lost = [s for s in self.owned if s not in owned]
            if adopted:
                self.store.refresh_last_ids(adopted)  # restart each from what PostgreSQL holds
                self.takeovers += len(adopted)
                log.info("recording %s (lock acquired)", ", ".join(adopted))
            if lost:
                log.warning("no longer recording %s (lock lost: database session ended)", ", ".join(lost))
            self.owned = owned
            self.source.set_symbols(owned, adopted=adopted)


class BarRecorder:
    """Every ``interval_s``: the owned symbols' newly closed bars (built from trades) to the writer."""

    def __init__(self, store, owned, periods_ms: tuple[int, ...] = BAR_PERIODS_MS, interval_s: float = 1.0) -> None:
        self.store = store
        self.owned = owned  # () -> symbols this process records
        self.periods_ms = periods_ms
        self.interval_s = interval_s
        self.written = 0
        self.blocks = 0
        self._last: dict[tuple[str, int], int] = {}
        self._last_block: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._last = dict(self.store.reader.last_bar_times())
            self._last_block = dict(self.store.reader.last_block_times())
        except Exception as exc:  # the database is down: start from memory; duplicates are ignored
            log.warning("cannot read stored bars: %s", exc)
        self._thread = threading.Thread(target=self._run, name="bar-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush()
            except Exception:
                log.exception("writing bars failed")

    def flush(self) -> int:
        """Submit every newly closed bar of the owned symbols; returns how many."""
        n = 0
        for sym in self.owned():
            first = self.store.buffer.buffer(sym).first_time()
            if first is None:
                continue
            for period in self.periods_ms:
                bars = self.store.bars(sym, period)
                if not len(bars):
                    continue
                t = bars.index.as_unit("ms").asi8
                last = self._last.get((sym, period), -(2**62))
                # closed, built from trades, complete (its start is not before the first tick in memory), new
                keep = bars["closed"].to_numpy(bool) & ~bars["exchange"].to_numpy(bool) & (t >= first) & (t > last)
                if not keep.any():
                    continue
                new = bars[keep]
                self.store.writer.submit_bars(sym, period, new)
                self._last[(sym, period)] = int(np.max(t[keep]))
                n += len(new)
                if period == 1_000:
                    self._blocks(sym, period, bars, first)
        self.written += n
        return n

    def _blocks(self, sym: str, period: int, bars, first_ms: int) -> None:
        """Each hour that is over (a later bar closed) and entirely in memory, once, as one block."""
        t = bars.index.as_unit("ms").asi8
        done = bars["closed"].to_numpy(bool) & ~bars["exchange"].to_numpy(bool)
        if not done.any():
            return
        newest_hour = int(t[done][-1]) // BLOCK_MS * BLOCK_MS  # still open: a bar of it may close later
        hour = max(-(-first_ms // BLOCK_MS) * BLOCK_MS, self._last_block.get((sym, period), -(2**62)) + BLOCK_MS)
        while hour < newest_hour:
            sel = done & (t >= hour) & (t < hour + BLOCK_MS)
            if sel.any():
                self.store.writer.submit_block(sym, period, hour, bars[sel])
                self.blocks += 1
            self._last_block[(sym, period)] = hour
            hour += BLOCK_MS
