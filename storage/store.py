"""``TickStore``: the one object the rest of the app talks to for market data.

It is the ingestion *sink* (``write(batch)``): each batch goes to the in-memory
buffer (visible to readers at once) and to the database writer — SQLite (the
embedded default) or PostgreSQL (``database_url``, :mod:`storage.postgres`).
Both backends sit behind the same writer/reader interface. It serves
snapshots: ticks, bars per timeframe (closed bars cached, so a rerun only
re-aggregates the tail), aligned pair bars, CSV exports, and a status object.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from storage.bars import align_pair, empty_bars, resample_ticks, timeframe_ms
from storage.buffer import BYTES_PER_TICK, TickBuffer
from storage.sqlite import SQLiteReader, SQLiteWriter, WriterStatus, connect
from storage.ticks import TickBatch
from storage.writer_process import ProcessWriter

__all__ = ["DB_ERRORS", "GapRecord", "StoreStatus", "TickStore"]


def _db_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a pinned requirement
        return (sqlite3.Error, OSError)
    return (sqlite3.Error, OSError, psycopg.Error)


DB_ERRORS = _db_errors()  # what a database call of either backend raises

log = logging.getLogger(__name__)
_BAR_INPUT = ("trade_time", "price", "qty", "is_buyer_maker", "fills")


@dataclass(frozen=True)
class GapRecord:
    """A range of aggregate trade ids the feed skipped, and what became of it."""

    symbol: str
    from_agg_id: int
    to_agg_id: int
    from_time: int | None
    to_time: int | None
    status: str  # "filled" | "unfillable" | "partial"
    filled: int
    note: str = ""
    detected_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StoreStatus:
    writer: WriterStatus
    symbols: dict[str, dict[str, object]]
    rows_stored: int  # ticks in the database (PostgreSQL: every recorder's)
    memory_bytes: int
    bytes_per_tick: int
    gaps: list[GapRecord]


@dataclass
class _BarCacheEntry:
    bars: pd.DataFrame
    end_ms: int  # end of the last cached (closed) bar
    version: int


class TickStore:
    """Memory + SQLite tick store; thread-safe for one writer and many readers."""

    def __init__(
        self,
        db_path: Path | str,
        max_ticks: int = 2_000_000,
        max_age_s: float = 26 * 3600,
        flush_interval_ms: int = 250,
        flush_max_rows: int = 20_000,
        retention_days: float = 0.0,
        warm_start_hours: float = 24.0,
        writer_process: bool = False,
        database_url: str = "",
    ) -> None:
        """``writer_process``: persist from a child process (:mod:`storage.writer_process`) so
        that busy sessions cannot starve the writer; the default is a thread. ``database_url``
        (``postgresql://…``): ticks, gaps, bars, the universe and alerts live in PostgreSQL;
        ``db_path`` then only holds this host's uploaded datasets."""
        self.db_path = Path(db_path)
        self.database_url = database_url
        self.backend = "postgresql" if database_url else "sqlite"
        self.buffer = TickBuffer(max_ticks=max_ticks, max_age_ms=int(max_age_s * 1000))
        if database_url:
            from storage.postgres import PostgresReader, PostgresWriter

            self.writer = PostgresWriter(database_url, flush_interval_ms=flush_interval_ms, flush_max_rows=flush_max_rows,
                                         retention_days=retention_days)
            self.reader = PostgresReader(database_url)
        else:
            writer_cls = ProcessWriter if writer_process and str(db_path) != ":memory:" else SQLiteWriter
            self.writer = writer_cls(
                self.db_path, flush_interval_ms=flush_interval_ms, flush_max_rows=flush_max_rows, retention_days=retention_days
            )
            self.reader = SQLiteReader(self.db_path)
        self._sql_local = threading.local()
        self.writer.on_drop = self._dropped
        self.warm_start_hours = warm_start_hours
        self._cache: dict[tuple[str, int], _BarCacheEntry] = {}
        self._seeds: dict[tuple[str, int], pd.DataFrame] = {}  # exchange bars before the first tick bar
        self._cache_lock = threading.Lock()
        # held by a writer across one delivery of several symbols (``atomic``) and by
        # pair readers while they read the legs' data clocks: a pair never sees one leg
        # of a delivery without the other
        self._cut_lock = threading.RLock()
        self._cond = threading.Condition()
        self.data_version = 0
        self._gaps: list[GapRecord] = []
        self._pending: list[GapRecord] = []  # gaps still to backfill (their own objects: a range can recur)
        self._gap_lock = threading.Lock()
        self._rows_at_start = 0
        self._started = False
        self.last_ids_at_start: dict[str, int] = {}
        self._universe_pending: list[str] = []
        # per symbol: (last trade_time in a batch, earliest local receive time in it, ms)
        self._arrivals: dict[str, deque[tuple[int, float]]] = {}

    @classmethod
    def from_settings(cls, settings) -> TickStore:
        return cls(
            settings.db_path,
            max_ticks=settings.buffer_max_ticks,
            max_age_s=settings.buffer_max_age_s,
            flush_interval_ms=settings.flush_interval_ms,
            flush_max_rows=settings.flush_max_rows,
            retention_days=settings.retention_days,
            warm_start_hours=settings.warm_start_hours,
            writer_process=settings.writer_process,
            database_url=settings.database_url,
        )

    # -- lifecycle ----------------------------------------------------------
    def start(self, warm_start: bool = True) -> None:
        """Open/migrate the database, refill memory from it, start the writer thread."""
        if self._started:
            return
        self._started = True
        self.writer.start()
        # wait briefly for the writer to open (and migrate) the file
        deadline = time.monotonic() + 15
        while self.writer.status.state == "starting" and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.writer.status.state != "ok":
            log.warning("starting without persistence: %s", self.writer.status.message)
            return
        try:
            self.last_ids_at_start = self.reader.last_agg_ids()
            self._rows_at_start = self.reader.count_ticks()
            self._load_gaps()
            if warm_start and self.warm_start_hours > 0:
                since = int(time.time() * 1000 - self.warm_start_hours * 3_600_000)
                for symbol in self.last_ids_at_start:
                    batch = self.reader.load_batch(symbol, since_ms=since, limit=self.buffer.max_ticks)
                    self.buffer.append(batch)
        except Exception as exc:  # a broken file must not stop the app
            log.warning("warm start failed: %s", exc)
        self._bump()

    def close(self) -> None:
        self.writer.stop()
        self.reader.close()

    def sql(self):
        """This thread's connection for small shared tables (alert rules and events), either backend:
        ``execute(sql, params)`` in SQLite's dialect, ``with conn:`` for one transaction."""
        if self.database_url:
            return self.reader.session()
        conn = getattr(self._sql_local, "conn", None)
        if conn is None:
            conn = self._sql_local.conn = connect(self.db_path)
        return conn

    def refresh_last_ids(self, symbols: list[str] | tuple[str, ...]) -> None:
        """Re-read the newest stored id of ``symbols`` (another recorder wrote them since start-up)."""
        try:
            stored = self.reader.last_agg_ids()
        except DB_ERRORS as exc:
            log.warning("cannot read the newest stored ids: %s", exc)
            return
        for s in symbols:
            if s.upper() in stored:
                self.last_ids_at_start[s.upper()] = int(stored[s.upper()])

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Writes inside are seen by pair readers all at once (one feed delivery of several symbols).

        Sources deliver the trades of one read from the feed — in feed (time) order
        across symbols — inside one ``atomic`` block, so that when a pair reader sees
        a trade of one leg at time *t* it also sees every trade of the other leg
        received before it. Keep network calls out of the block: readers wait for it.
        """
        with self._cut_lock:
            yield

    def append_stored(self, batch: TickBatch) -> int:
        """Ticks another process stored (a dashboard following PostgreSQL): memory only, not written again."""
        with self._cut_lock:
            added = self.buffer.append(batch)
        if added:
            self._rows_at_start += added
            self._bump()
        return added

    # -- sink -----------------------------------------------------------------
    def write(self, batch: TickBatch) -> int:
        """Store one batch (ingestion thread). Returns the ticks new to memory."""
        with self._cut_lock:
            added = self.buffer.append(batch)
        self.writer.submit(batch)
        if added:
            recv = batch.data["recv_time"]
            recv = recv[np.isfinite(recv)]
            if len(recv):
                q = self._arrivals.setdefault(batch.symbol, deque(maxlen=20_000))
                q.append((int(batch.data["trade_time"][-1]), float(recv.min())))
            self._bump()
        return added

    def received_at(self, symbol: str, trade_time_ms: int) -> float | None:
        """Local receive time (ms, conservative: the earliest in its batch) of the
        first delivered batch holding a trade at or after ``trade_time_ms``."""
        q = self._arrivals.get(symbol.upper())
        if not q:
            return None
        for last_tt, recv in list(q):
            if last_tt >= trade_time_ms:
                return recv
        return None

    def record_gap(self, gap: GapRecord) -> None:
        self._gaps.append(gap)
        if gap.status == "pending":
            with self._gap_lock:
                self._pending.append(gap)
        self.writer.submit_sql(
            "INSERT INTO gaps (symbol, from_agg_id, to_agg_id, from_time, to_time, detected_at, status, filled, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (gap.symbol, gap.from_agg_id, gap.to_agg_id, gap.from_time, gap.to_time, gap.detected_at, gap.status, gap.filled, gap.note),
        )

    def _dropped(self, batch: TickBatch) -> None:
        """The writer fell too far behind and dropped ``batch`` from its queue: a pending gap, so the
        ids are fetched over REST again at the next connect (and survive a restart as a gaps row)."""
        ids = batch.data["agg_id"]
        times = batch.data["trade_time"]
        self.record_gap(GapRecord(batch.symbol, int(ids[0]), int(ids[-1]), int(times[0]), int(times[-1]), "pending", 0,
                                  "dropped from the write queue while the database was not keeping up; backfilled over REST"))

    def pending_gaps(self, symbol: str) -> list[GapRecord]:
        """Gaps of ``symbol`` whose backfill was interrupted or whose rows the writer dropped (to retry), oldest first."""
        with self._gap_lock:
            return [g for g in self._pending if g.symbol == symbol.upper()]

    def writer_ok(self) -> bool:
        """True while the database accepts writes (a retry then lands; otherwise it would be dropped again)."""
        return self.writer.status.state == "ok"

    def resolve_gap(self, gap: GapRecord, status: str, filled: int, note: str) -> None:
        """A pending gap is now filled (or known unfillable): recorded in memory and in the ``gaps`` table."""
        with self._gap_lock:
            self._pending = [g for g in self._pending if g is not gap]
        done = GapRecord(gap.symbol, gap.from_agg_id, gap.to_agg_id, gap.from_time, gap.to_time, status, filled, note)
        self._gaps.append(done)
        self.writer.submit_sql(
            "UPDATE gaps SET status = ?, filled = ?, note = ? WHERE symbol = ? AND from_agg_id = ? AND to_agg_id = ? AND status = 'pending'",
            (status, filled, note, gap.symbol, gap.from_agg_id, gap.to_agg_id),
        )

    def universe_symbols(self) -> list[str]:
        """Symbols recorded beyond the configured ones (added at runtime), oldest first."""
        if self.writer.status.state != "ok":
            return list(self._universe_pending)
        try:
            rows = self.reader.query("SELECT symbol FROM universe ORDER BY added_at, symbol")
        except Exception as exc:  # a broken or old file: no stored additions
            log.warning("cannot read the recorded universe: %s", exc)
            return list(self._universe_pending)
        return list(dict.fromkeys([r[0] for r in rows] + self._universe_pending))

    def add_universe_symbols(self, symbols: list[str], note: str = "") -> None:
        """Remember that ``symbols`` are recorded too (survives restarts)."""
        now = time.time()
        for s in symbols:
            if s not in self._universe_pending:
                self._universe_pending.append(s)
            self.writer.submit_sql("INSERT OR IGNORE INTO universe (symbol, added_at, note) VALUES (?, ?, ?)", (s, now, note))

    def remove_universe_symbol(self, symbol: str) -> None:
        """Forget that ``symbol`` was added (its stored ticks stay)."""
        if symbol in self._universe_pending:
            self._universe_pending.remove(symbol)
        self.writer.submit_sql("DELETE FROM universe WHERE symbol = ?", (symbol,))

    def last_agg_id(self, symbol: str) -> int | None:
        """Newest aggregate id held for ``symbol`` (memory, else SQLite at start-up)."""
        mem = self.buffer.buffer(symbol).last_agg_id()
        db = self.last_ids_at_start.get(symbol.upper())
        if mem is None:
            return db
        return mem if db is None else max(mem, db)

    def _bump(self) -> None:
        with self._cond:
            self.data_version += 1
            self._cond.notify_all()

    def wait_for_data(self, seen_version: int, timeout: float) -> int:
        """Block until ``data_version`` exceeds ``seen_version`` or timeout; return it."""
        with self._cond:
            if self.data_version <= seen_version:
                self._cond.wait(timeout)
            return self.data_version

    def _load_gaps(self) -> None:
        cols = "id, symbol, from_agg_id, to_agg_id, from_time, to_time, status, filled, COALESCE(note, ''), detected_at"
        recent = self.reader.query(f"SELECT {cols} FROM gaps ORDER BY id DESC LIMIT 500")
        pending = self.reader.query(f"SELECT {cols} FROM gaps WHERE status = 'pending' ORDER BY id")  # retried however old
        rows = sorted({r[0]: r for r in [*recent, *pending]}.values())
        self._gaps = [GapRecord(*r[1:9], detected_at=r[9]) for r in rows]
        with self._gap_lock:
            self._pending = [g for g in self._gaps if g.status == "pending"]

    # -- reads --------------------------------------------------------------
    def symbols(self) -> list[str]:
        return self.buffer.symbols()

    def ticks(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> pd.DataFrame:
        """Ticks in memory for ``symbol`` as a DataFrame indexed by trade time (UTC)."""
        snap = self.buffer.snapshot(symbol, start_ms, end_ms)
        df = pd.DataFrame(snap.columns)
        df.index = pd.DatetimeIndex(pd.to_datetime(df["trade_time"], unit="ms", utc=True), name="time")
        return df

    def bars(self, symbol: str, timeframe: str | int, start_ms: int | None = None, as_of_ms: int | None = None) -> pd.DataFrame:
        """Bars for ``symbol``; closed bars come from the cache, the tail is re-aggregated.

        ``as_of_ms`` (e.g. the wall clock) can close the last bar once its end
        has passed; by default only a later trade closes a bar.
        """
        period = timeframe if isinstance(timeframe, int) else timeframe_ms(timeframe)
        symbol = symbol.upper()
        key = (symbol, period)
        buf = self.buffer.buffer(symbol)
        with self._cache_lock:
            entry = self._cache.get(key)
        tail_from = entry.end_ms if entry is not None else None
        snap = buf.snapshot(tail_from, None, _BAR_INPUT)
        tail = resample_ticks(snap["trade_time"], snap["price"], snap["qty"], snap["is_buyer_maker"], period, snap["fills"])
        # cache what the data clock has closed (a later trade exists): trade times
        # are monotonic per symbol, so no tick can still land in those bars
        closed_tail = tail[tail["closed"]]
        if len(closed_tail):
            new_end = int(closed_tail.index[-1].value // 1_000_000) + period
            merged = closed_tail if entry is None else pd.concat([entry.bars, closed_tail])
            with self._cache_lock:
                self._cache[key] = entry = _BarCacheEntry(merged, new_end, snap.version)
        cached = entry.bars if entry is not None else empty_bars()
        first_tt = buf.first_time()
        if entry is not None and first_tt is not None and len(cached) and int(cached.index[0].value // 1_000_000) + period <= first_tt:
            # the buffer evicted old ticks: drop their bars too (the cache must not outgrow the buffer)
            cached = cached[cached.index >= pd.Timestamp(first_tt // period * period, unit="ms", tz="UTC")]
            with self._cache_lock:
                self._cache[key] = entry = _BarCacheEntry(cached, entry.end_ms, entry.version)
        open_tail = tail[~tail["closed"]]
        out = pd.concat([cached, open_tail]) if len(open_tail) else cached.copy()
        seed = self._seeds.get(key)
        if seed is not None and len(seed):
            before = seed[seed.index < out.index[0]] if len(out) else seed
            if len(before):
                out = pd.concat([before, out.assign(exchange=False)])
        if "exchange" not in out:
            out["exchange"] = False
        if as_of_ms is not None and len(out):
            ends = out.index.as_unit("ms").asi8 + period
            out["closed"] = out["closed"].to_numpy() | (ends <= as_of_ms)
        if start_ms is not None:
            out = out[out.index >= pd.Timestamp(start_ms, unit="ms", tz="UTC")]
        return out

    def seed_bars(self, symbol: str, period_ms: int, bars: pd.DataFrame, exchange: bool = True) -> None:
        """Closed bars shown before the first bar built from ticks in memory: exchange klines
        (``exchange = True``) or bars a recorder stored (PostgreSQL ``bars``, ``exchange=False``).

        ``bars`` has the :data:`storage.bars.BAR_COLUMNS` on a start-time UTC index.
        Ticks always win: a seed bar is used only before the first tick bar.
        """
        b = bars.copy()
        b["closed"] = True
        b["exchange"] = exchange
        self._seeds[(symbol.upper(), int(period_ms))] = b.sort_index()
        self._bump()

    def full_bars(self, symbol: str, timeframe: str | int) -> pd.DataFrame:
        """Bars recomputed from every tick in memory (no cache) — the reference for tests."""
        period = timeframe if isinstance(timeframe, int) else timeframe_ms(timeframe)
        snap = self.buffer.snapshot(symbol, None, None, _BAR_INPUT)
        return resample_ticks(snap["trade_time"], snap["price"], snap["qty"], snap["is_buyer_maker"], period, snap["fills"])

    def pair_bars(self, symbol_y: str, symbol_x: str, timeframe: str, ffill_limit: int = 5, as_of_ms: int | None = None) -> pd.DataFrame:
        """Both legs on one bar grid (see :func:`storage.bars.align_pair`); ``"tick"`` gives an as-of join."""
        if timeframe == "tick":
            return self.pair_ticks(symbol_y, symbol_x)
        period = timeframe_ms(timeframe)
        with self._cut_lock:  # both legs' data clocks from one consistent cut of the feed
            clocks = [t for t in (self.buffer.buffer(symbol_y).last_time(), self.buffer.buffer(symbol_x).last_time()) if t is not None]
        # a leg may gain ticks after the cut; a bar closes only when the cut's clock has passed its end
        return align_pair(self.bars(symbol_y, period), self.bars(symbol_x, period), period, ffill_limit, as_of_ms,
                          clock_ms=max(clocks) if clocks else None)

    def pair_ticks(self, symbol_y: str, symbol_x: str, start_ms: int | None = None) -> pd.DataFrame:
        """Tick-level pair frame: one row per millisecond in which either leg traded,
        each leg's last price as of that millisecond (never a later one), and
        ``quiet_<leg>_s``, seconds since that leg's last trade."""
        with self._cut_lock:  # one consistent cut: no row pairs a new tick of one leg with a stale price of the other
            legs = {leg: self.buffer.snapshot(sym, start_ms, None, ("trade_time", "price", "qty"))
                    for leg, sym in (("y", symbol_y), ("x", symbol_x))}
        ty, tx = legs["y"]["trade_time"], legs["x"]["trade_time"]
        cols = ["close_y", "close_x", "volume_y", "volume_x", "quiet_y_s", "quiet_x_s", "closed"]
        if len(ty) == 0 or len(tx) == 0:
            return pd.DataFrame(columns=cols, index=pd.DatetimeIndex([], tz="UTC", name="time"))
        times = np.union1d(ty, tx)
        times = times[times >= max(ty[0], tx[0])]
        out = {}
        for leg, tt in (("y", ty), ("x", tx)):
            pos = np.searchsorted(tt, times, side="right") - 1
            out[f"close_{leg}"] = legs[leg]["price"][pos]
            out[f"quiet_{leg}_s"] = (times - tt[pos]) / 1000.0
            vol = np.bincount(np.searchsorted(times, tt[tt >= times[0]]), weights=legs[leg]["qty"][tt >= times[0]], minlength=len(times))
            out[f"volume_{leg}"] = vol
        out["closed"] = np.ones(len(times), dtype=bool)
        out = {c: out[c] for c in cols}
        return pd.DataFrame(out, index=pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="time"))

    def _stored_rows(self) -> int:
        if not self.database_url:
            return self._rows_at_start + self.writer.status.committed_rows
        now = time.monotonic()
        cached = getattr(self, "_rows_cache", None)
        if cached is None or now - cached[0] > 2.0:  # every recorder's rows (symbol_state), read at most every 2 s
            try:
                cached = (now, self.reader.count_ticks())
            except DB_ERRORS:
                cached = (now, cached[1] if cached else self._rows_at_start)
            self._rows_cache = cached
        return int(cached[1])

    def status(self) -> StoreStatus:
        symbols = {s: self.buffer.buffer(s).stats() for s in self.buffer.symbols()}
        return StoreStatus(
            writer=self.writer.status,
            symbols=symbols,
            rows_stored=self._stored_rows(),
            memory_bytes=int(sum(int(v["bytes"]) for v in symbols.values())),
            bytes_per_tick=BYTES_PER_TICK,
            gaps=list(self._gaps),
        )

    # -- exports --------------------------------------------------------------
    def ticks_export(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> pd.DataFrame:
        """Raw ticks for export — everything stored: from SQLite when persisted, else memory
        (which may hold less). ``timestamp`` (ISO-8601 UTC) first, then the trade's fields."""
        df = None
        if self.writer.status.state == "ok":
            batch = self.reader.load_batch(symbol, start_ms, end_ms)
            if len(batch):
                d = batch.data
                df = pd.DataFrame(
                    {
                        "symbol": symbol.upper(), "agg_id": d["agg_id"], "trade_time": d["trade_time"],
                        "price": d["price"], "qty": d["qty"], "first_trade_id": d["first_id"],
                        "last_trade_id": d["last_id"], "is_buyer_maker": d["is_buyer_maker"], "event_time": d["event_time"],
                    }
                )
        if df is None:
            mem = self.ticks(symbol, start_ms, end_ms)
            df = mem.reset_index(drop=True)[["agg_id", "trade_time", "price", "qty", "is_buyer_maker"]]
            df.insert(0, "symbol", symbol.upper())
        df.insert(0, "timestamp", pd.to_datetime(df["trade_time"], unit="ms", utc=True).map(lambda t: t.isoformat()))
        return df
