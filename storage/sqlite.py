"""SQLite persistence: schema and migrations, a batching writer thread, and readers.

The database is a user interface: analysts open it with ``sqlite3`` or pandas.
Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`) is documented in the
README. WAL mode; one connection per thread; parameterised SQL only.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from storage.ticks import BATCH_DTYPE, TickBatch

__all__ = ["SCHEMA_VERSION", "SQLiteReader", "SQLiteWriter", "WriterStatus", "connect", "migrate"]

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE IF NOT EXISTS ticks (
        symbol          TEXT    NOT NULL,
        agg_id          INTEGER NOT NULL,
        trade_time      INTEGER NOT NULL,
        event_time      INTEGER,
        recv_time       REAL,
        price           REAL    NOT NULL,
        qty             REAL    NOT NULL,
        first_trade_id  INTEGER,
        last_trade_id   INTEGER,
        is_buyer_maker  INTEGER NOT NULL,
        PRIMARY KEY (symbol, agg_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ticks_symbol_time ON ticks (symbol, trade_time);
    CREATE TABLE IF NOT EXISTS gaps (
        id           INTEGER PRIMARY KEY,
        symbol       TEXT    NOT NULL,
        from_agg_id  INTEGER NOT NULL,
        to_agg_id    INTEGER NOT NULL,
        from_time    INTEGER,
        to_time      INTEGER,
        detected_at  REAL    NOT NULL,
        status       TEXT    NOT NULL,
        filled       INTEGER NOT NULL DEFAULT 0,
        note         TEXT
    );
    CREATE INDEX IF NOT EXISTS gaps_symbol ON gaps (symbol, from_agg_id);
    CREATE TABLE IF NOT EXISTS datasets (
        name        TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        source      TEXT,
        created_at  REAL NOT NULL,
        rows        INTEGER NOT NULL,
        symbols     TEXT NOT NULL,
        detail      TEXT
    );
    CREATE TABLE IF NOT EXISTS dataset_ticks (
        dataset         TEXT    NOT NULL,
        symbol          TEXT    NOT NULL,
        seq             INTEGER NOT NULL,
        trade_time      INTEGER NOT NULL,
        price           REAL    NOT NULL,
        qty             REAL    NOT NULL,
        is_buyer_maker  INTEGER,
        agg_id          INTEGER,
        PRIMARY KEY (dataset, symbol, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS dataset_bars (
        dataset   TEXT    NOT NULL,
        symbol    TEXT    NOT NULL,
        bar_time  INTEGER NOT NULL,
        open REAL, high REAL, low REAL, close REAL NOT NULL, volume REAL,
        PRIMARY KEY (dataset, symbol, bar_time)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS alert_rules (
        id          INTEGER PRIMARY KEY,
        rule_json   TEXT NOT NULL,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS alert_events (
        id              INTEGER PRIMARY KEY,
        rule_id         INTEGER NOT NULL,
        fired_at        REAL    NOT NULL,
        bar_time        INTEGER,
        value           REAL,
        threshold       REAL,
        severity        TEXT,
        message         TEXT,
        acknowledged    INTEGER NOT NULL DEFAULT 0,
        webhook_status  TEXT
    );
    """,
    # v2: the recorded universe beyond the configured symbols (server state, additive)
    """
    CREATE TABLE IF NOT EXISTS universe (
        symbol    TEXT PRIMARY KEY,
        added_at  REAL NOT NULL,
        note      TEXT
    );
    """,
    # v3: a dataset's rows live under a storage key, so a replacement becomes visible in one
    # short transaction (the rows are written first, in batches) and old rows go in batches too
    """
    ALTER TABLE datasets ADD COLUMN storage_key TEXT;
    UPDATE datasets SET storage_key = name WHERE storage_key IS NULL;
    """,
    # v4: a dataset is a set of legs, each under its own storage key: a leg can be added to (or
    # replaced in) a dataset without rewriting the others
    """
    CREATE TABLE IF NOT EXISTS dataset_legs (
        name         TEXT    NOT NULL,
        symbol       TEXT    NOT NULL,
        storage_key  TEXT    NOT NULL,
        rows         INTEGER NOT NULL DEFAULT 0,
        added_at     REAL    NOT NULL,
        source       TEXT,
        PRIMARY KEY (name, symbol)
    );
    INSERT OR IGNORE INTO dataset_legs (name, symbol, storage_key, rows, added_at, source)
        SELECT d.name, j.value, COALESCE(d.storage_key, d.name), 0, d.created_at, d.source FROM datasets d, json_each(d.symbols) j;
    UPDATE dataset_legs SET rows =
        (SELECT count(*) FROM dataset_bars b WHERE b.dataset = dataset_legs.storage_key AND b.symbol = dataset_legs.symbol)
      + (SELECT count(*) FROM dataset_ticks t WHERE t.dataset = dataset_legs.storage_key AND t.symbol = dataset_legs.symbol);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

TICK_INSERT = (
    "INSERT OR IGNORE INTO ticks (symbol, agg_id, trade_time, event_time, recv_time, price, qty,"
    " first_trade_id, last_trade_id, is_buyer_maker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def connect(path: Path | str, timeout_s: float = 5.0) -> sqlite3.Connection:
    """Open ``path`` (creating its folder) in WAL mode with sane pragmas."""
    p = Path(path)
    if str(p) != ":memory:":
        p.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(p), timeout=timeout_s)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; return the schema version. Refuses newer files."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"database schema v{current} is newer than this app (v{SCHEMA_VERSION}); upgrade AlphaStream"
        )
    for version in range(current, SCHEMA_VERSION):
        with conn:
            conn.executescript(MIGRATIONS[version])
            conn.execute(f"PRAGMA user_version = {version + 1}")
    return SCHEMA_VERSION


def batch_rows(batch: TickBatch) -> list[tuple]:
    """Parameter tuples for :data:`TICK_INSERT` from a batch."""
    d = batch.data
    n = len(d)
    return list(
        zip(
            [batch.symbol] * n,
            d["agg_id"].tolist(),
            d["trade_time"].tolist(),
            d["event_time"].tolist(),
            d["recv_time"].tolist(),
            d["price"].tolist(),
            d["qty"].tolist(),
            d["first_id"].tolist(),
            d["last_id"].tolist(),
            d["is_buyer_maker"].astype(np.int8).tolist(),
            strict=True,
        )
    )


def _describe(exc: BaseException, path: Path) -> tuple[str, str]:
    """(state, human message) for a database error."""
    text = str(exc).lower()
    if "disk is full" in text or "database or disk is full" in text:
        return "error", f"disk full: cannot write {path}; ticks are kept in memory and retried"
    if "readonly" in text or "read-only" in text or "permission" in text:
        return "error", f"database {path} is read-only; ticks are kept in memory and retried"
    if "locked" in text or "busy" in text:
        return "error", f"database {path} is locked by another process; retrying"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "corrupt", (
            f"database file {path} is corrupt ({exc}); it was left untouched and ticks are kept in "
            "memory only — move the file away and restart to persist again"
        )
    if "newer than this app" in text:
        return "corrupt", str(exc)
    return "error", f"database error on {path}: {exc}; retrying"


@dataclass
class WriterStatus:
    """What the UI shows about persistence. ``state``: starting/ok/error/corrupt/stopped."""

    state: str = "starting"
    message: str = "opening database"
    committed_rows: int = 0
    committed_batches: int = 0
    committed_jobs: int = 0
    pending_rows: int = 0
    dropped_rows: int = 0
    commits: int = 0
    errors: int = 0
    last_commit_at: float | None = None
    last_error_at: float | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, object] = field(default_factory=dict)


SqlJob = tuple[str, Sequence[object]]


class SQLiteWriter:
    """Dedicated writer thread: batches ticks (and small SQL jobs) into transactions.

    Flushes when ``flush_max_rows`` are pending or ``flush_interval_ms`` after
    the first pending item, whichever comes first. On any database error the
    pending data stays queued (bounded by ``max_pending_rows``; beyond that the
    oldest are dropped from the *persistence* queue and counted — they are still
    in memory) and the flush is retried with backoff. Never raises in the thread.
    """

    def __init__(
        self,
        path: Path | str,
        flush_interval_ms: int = 250,
        flush_max_rows: int = 20_000,
        max_pending_rows: int = 5_000_000,
        retention_days: float = 0.0,
        on_commit: Callable[[list[TickBatch]], None] | None = None,
        busy_timeout_s: float = 2.0,
        connect_pragmas: dict[str, int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.connect_pragmas = dict(connect_pragmas or {})
        self.flush_interval = flush_interval_ms / 1000.0
        self.flush_max_rows = flush_max_rows
        self.max_pending_rows = max_pending_rows
        self.retention_ms = int(retention_days * 86_400_000)
        self.on_commit = on_commit
        self.on_drop: Callable[[TickBatch], None] | None = None  # a batch left the persistence queue unsaved
        self.status = WriterStatus()
        self._pending: deque[TickBatch] = deque()
        self._pending_at: deque[float] = deque()  # submit time of each pending batch (writer lag)
        self._pending_seq: deque[int] = deque()  # submit order: a commit removes exactly what it wrote
        self._seq = 0
        self._jobs: deque[SqlJob] = deque()
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._last_prune = 0.0

    # -- producer side ----------------------------------------------------
    def submit(self, batch: TickBatch) -> None:
        if len(batch) == 0:
            return
        dropped: list[TickBatch] = []
        with self._cond:
            self._seq += 1
            self._pending.append(batch)
            self._pending_at.append(time.time())
            self._pending_seq.append(self._seq)
            self._pending_rows += len(batch)
            while self._pending_rows > self.max_pending_rows and len(self._pending) > 1:
                old = self._pending.popleft()
                self._pending_at.popleft()
                self._pending_seq.popleft()
                self._pending_rows -= len(old)
                self.status.dropped_rows += len(old)
                dropped.append(old)
            self.status.pending_rows = self._pending_rows
            if self._pending_rows >= self.flush_max_rows:
                self._cond.notify()
        if dropped and self.on_drop is not None:
            for b in dropped:  # never silently: the store records each as a gap to backfill
                self.on_drop(b)

    def lag_s(self) -> float:
        """Seconds the oldest not-yet-committed batch has waited (0 when nothing is pending)."""
        with self._cond:
            return max(0.0, time.time() - self._pending_at[0]) if self._pending_at else 0.0

    def submit_sql(self, sql: str, params: Sequence[object] = ()) -> None:
        """Queue one parameterised statement to run in the writer's next transaction."""
        with self._cond:
            self._jobs.append((sql, tuple(params)))
            self._cond.notify()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is pending (one last try) and stop the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def flush_now(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted so far is committed (True) or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
        while time.monotonic() < deadline:
            with self._cond:
                if self._pending_rows == 0 and not self._jobs:
                    return True
                self._cond.notify()
            time.sleep(0.01)
        return False

    # -- writer thread ----------------------------------------------------
    def _check_existing(self) -> None:
        """Integrity check of an existing file through a read-only connection, before anything
        (the switch to WAL rewrites header bytes) may touch it. Raises on a corrupt file."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        ro = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.busy_timeout_s)
        try:
            result = ro.execute("PRAGMA quick_check").fetchone()
        finally:
            ro.close()
        if not result or result[0] != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed: quick_check said {str(result and result[0])[:200]}")

    def _open(self) -> bool:
        try:
            self._check_existing()
            conn = connect(self.path, timeout_s=self.busy_timeout_s)
            migrate(conn)
            for name, value in self.connect_pragmas.items():  # e.g. max_page_count (fault tests)
                conn.execute(f"PRAGMA {name} = {int(value)}")
            self._conn = conn
            self.status.state, self.status.message = "ok", f"persisting to {self.path}"
            return True
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc)
            return False

    def _reopen_later(self) -> None:
        """Drop the connection after a failed write: one opened while the file was read-only (or
        the disk full) stays read-only even once the cause is gone; the next attempt reopens."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _fail(self, exc: BaseException) -> None:
        state, message = _describe(exc, self.path)
        if self.status.message != message:
            log.warning("%s", message)
        self.status.state, self.status.message = state, message
        self.status.errors += 1
        self.status.last_error_at = time.time()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.rollback()

    def _run(self) -> None:
        backoff = 0.25
        while True:
            with self._cond:
                if not self._stop and self._pending_rows < self.flush_max_rows and not self._jobs:
                    self._cond.wait(self.flush_interval)
                stopping = self._stop
                batches = list(self._pending)
                upto = self._pending_seq[-1] if self._pending_seq else 0
                jobs = list(self._jobs)
            if self.status.state == "corrupt":
                if stopping:
                    self.status.state = "stopped"
                    self.status.message += " (stopped with unsaved ticks)" if self._pending_rows else ""
                    return
                with self._cond:
                    self._cond.wait(10.0)  # the file may have been moved away or repaired: check again (read-only)
                self._reopen_later()
                self._open()
                continue
            if self._conn is None and not self._open():
                if stopping:
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if batches or jobs:
                if self._commit(batches, jobs, upto):
                    backoff = 0.25
                else:
                    if stopping:
                        self.status.state = "stopped"
                        self.status.message += " (stopped with unsaved ticks)"
                        return
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            self._maybe_prune()
            if stopping:
                with self._cond:
                    if not self._pending and not self._jobs:
                        break
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.status.state, self.status.message = "stopped", "writer stopped; all ticks flushed"

    def _commit(self, batches: list[TickBatch], jobs: list[SqlJob], upto: int = 0) -> bool:
        assert self._conn is not None
        rows = sum(len(b) for b in batches)
        try:
            with self._conn:
                for batch in batches:
                    self._conn.executemany(TICK_INSERT, batch_rows(batch))
                for sql, params in jobs:
                    self._conn.execute(sql, params)
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc)
            self._reopen_later()
            return False
        return self._acknowledge(batches, len(jobs), rows, upto)

    def _target(self) -> str:
        """Where this writer persists, for its status message."""
        return str(self.path)

    def _acknowledge(self, batches: Sequence[TickBatch], n_jobs: int, rows: int, upto: int) -> bool:
        """After a commit: drop what it wrote from the queues, count it, say the writer is healthy."""
        with self._cond:
            # remove what this commit wrote — by submit order, not by count: batches dropped from the
            # head while it ran are gone already, and newer ones must stay
            while self._pending_seq and self._pending_seq[0] <= upto:
                done = self._pending.popleft()
                self._pending_at.popleft()
                self._pending_seq.popleft()
                self._pending_rows -= len(done)
            for _ in range(n_jobs):
                self._jobs.popleft()
            self.status.pending_rows = self._pending_rows
        s = self.status
        s.committed_rows += rows
        s.committed_batches += len(batches)
        s.committed_jobs += n_jobs
        s.commits += 1
        s.last_commit_at = time.time()
        if s.state != "ok":
            s.state, s.message = "ok", f"persisting to {self._target()} (recovered)"
        if self.on_commit is not None and batches:
            self.on_commit(batches)
        return True

    def _maybe_prune(self) -> None:
        if self.retention_ms <= 0 or self._conn is None or time.monotonic() - self._last_prune < 3600:
            return
        self._last_prune = time.monotonic()
        cutoff = int(time.time() * 1000) - self.retention_ms
        try:
            with self._conn:
                self._conn.execute("DELETE FROM ticks WHERE trade_time < ?", (cutoff,))
        except sqlite3.Error as exc:
            self._fail(exc)
            self._reopen_later()


class SQLiteReader:
    """Read helpers on per-thread connections (safe to share between threads)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    def last_agg_ids(self) -> dict[str, int]:
        return dict(self.query("SELECT symbol, MAX(agg_id) FROM ticks GROUP BY symbol"))

    def count_ticks(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM ticks")[0][0])

    def load_batch(self, symbol: str, since_ms: int | None = None, until_ms: int | None = None, limit: int | None = None) -> TickBatch:
        """Ticks of ``symbol`` with ``since_ms <= trade_time < until_ms`` as a batch (agg_id order)."""
        sql = (
            "SELECT agg_id, trade_time, COALESCE(event_time, trade_time), COALESCE(recv_time, trade_time), price, qty,"
            " COALESCE(first_trade_id, agg_id), COALESCE(last_trade_id, agg_id), is_buyer_maker"
            " FROM ticks WHERE symbol = ? AND trade_time >= ? AND trade_time < ? ORDER BY agg_id"
        )
        params: list[object] = [symbol.upper(), since_ms if since_ms is not None else -(2**62), until_ms if until_ms is not None else 2**62]
        if limit is not None:
            sql = sql.replace("ORDER BY agg_id", "ORDER BY agg_id DESC LIMIT ?")
            params.append(int(limit))
        rows = self.query(sql, params)
        arr = np.array(rows, dtype=BATCH_DTYPE) if rows else np.empty(0, dtype=BATCH_DTYPE)
        if limit is not None:
            arr = arr[::-1].copy()
        return TickBatch(symbol.upper(), arr)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
