"""PostgreSQL persistence (scale-out): schema and migrations, a COPY writer, readers, leases, notifications.

Selected by ``ALPHASTREAM_DATABASE_URL=postgresql://…`` (unset: SQLite). Tables
live in the connection's current schema (``?options=-csearch_path%3Dname``
picks another), so several deployments — or tests — can share a database.

* **Ticks** go in by binary ``COPY`` into a session-temporary staging table
  (the rows are built by NumPy, no per-row Python), then ``INSERT … ON CONFLICT
  DO NOTHING`` into ``ticks`` — declaratively partitioned by UTC day (or a
  TimescaleDB hypertable when the extension is installed in the database:
  detected at the first migration). A replayed batch is harmless.
* ``symbol_state`` keeps each symbol's newest id, time and row count (updated in
  the same transaction), so start-up never scans ``ticks``.
* **Bars**: closed 1s/1m/5m bars written once by the recorder (``bars``), and
  each complete hour of 1 s bars once more as one packed block (``bar_blocks``,
  :data:`BLOCK_DTYPE`): a day of 1 s bars reads as 24 rows instead of 86,400.
* **Notifications**: every commit sends ``NOTIFY`` on :func:`channel` with
  ``ticks``/``bars``/``alerts``/``rules``; dashboards LISTEN instead of polling.
* **Advisory locks** (:class:`Leases`): one per recorded symbol (a second
  recorder waits as hot standby) and one for the alert engine leader. Locks are
  session scoped: a process that dies releases them within its TCP close.

SQL shared with SQLite is written once in SQLite's dialect (``?`` placeholders,
``INSERT OR IGNORE``) and translated by :func:`translate`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from storage.sqlite import SQLiteWriter
from storage.ticks import BATCH_DTYPE, TickBatch

__all__ = [
    "PG_SCHEMA_VERSION", "Leases", "PostgresReader", "PostgresWriter", "SqlSession", "channel", "connect", "lock_key",
    "mask_dsn", "migrate", "translate",
]

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
BAR_PERIODS_MS = (1_000, 60_000, 300_000)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_BARS_JOB = "-- bars --"  # marks a queued bar write among the writer's SQL jobs (compared by identity)
_BLOCK_INSERT = "INSERT OR IGNORE INTO bar_blocks (symbol, period_ms, block_start, rows, data) VALUES (?, ?, ?, ?, ?)"

TICKS_TABLE = """
CREATE TABLE IF NOT EXISTS ticks (
    symbol          text             NOT NULL,
    agg_id          bigint           NOT NULL,
    trade_time      bigint           NOT NULL,
    event_time      bigint,
    recv_time       double precision,
    price           double precision NOT NULL,
    qty             double precision NOT NULL,
    first_trade_id  bigint,
    last_trade_id   bigint,
    is_buyer_maker  boolean          NOT NULL,
    PRIMARY KEY (symbol, trade_time, agg_id)
)"""

MIGRATIONS: list[str] = [
    # v1 (ticks is created by migrate(): partitioned by day, or a hypertable)
    """
    CREATE TABLE IF NOT EXISTS symbol_state (
        symbol           text PRIMARY KEY,
        last_agg_id      bigint NOT NULL,
        last_trade_time  bigint NOT NULL,
        rows             bigint NOT NULL DEFAULT 0,
        updated_at       double precision
    );
    CREATE TABLE IF NOT EXISTS bars (
        symbol             text    NOT NULL,
        period_ms          integer NOT NULL,
        bar_time           bigint  NOT NULL,
        open               double precision NOT NULL,
        high               double precision NOT NULL,
        low                double precision NOT NULL,
        close              double precision NOT NULL,
        volume             double precision NOT NULL,
        quote_volume       double precision NOT NULL,
        vwap               double precision NOT NULL,
        trades             bigint  NOT NULL,
        fills              bigint  NOT NULL,
        taker_buy_volume   double precision NOT NULL,
        taker_sell_volume  double precision NOT NULL,
        PRIMARY KEY (symbol, period_ms, bar_time)
    );
    CREATE TABLE IF NOT EXISTS bar_blocks (
        symbol       text    NOT NULL,
        period_ms    integer NOT NULL,
        block_start  bigint  NOT NULL,
        rows         integer NOT NULL,
        data         bytea   NOT NULL,
        PRIMARY KEY (symbol, period_ms, block_start)
    );
    -- packed float64 compresses poorly and decompressing costs more than reading: store it out of line, as is
    ALTER TABLE bar_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE IF NOT EXISTS gaps (
        id           bigserial PRIMARY KEY,
        symbol       text   NOT NULL,
        from_agg_id  bigint NOT NULL,
        to_agg_id    bigint NOT NULL,
        from_time    bigint,
        to_time      bigint,
        detected_at  double precision NOT NULL,
        status       text   NOT NULL,
        filled       bigint NOT NULL DEFAULT 0,
        note         text
    );
    CREATE INDEX IF NOT EXISTS gaps_symbol ON gaps (symbol, from_agg_id);
    CREATE TABLE IF NOT EXISTS universe (
        symbol    text PRIMARY KEY,
        added_at  double precision NOT NULL,
        note      text
    );
    CREATE TABLE IF NOT EXISTS alert_rules (
        id          bigserial PRIMARY KEY,
        rule_json   text NOT NULL,
        created_at  double precision NOT NULL,
        updated_at  double precision NOT NULL
    );
    CREATE TABLE IF NOT EXISTS alert_events (
        id              bigint PRIMARY KEY,
        rule_id         bigint NOT NULL,
        fired_at        double precision NOT NULL,
        bar_time        bigint,
        value           double precision,
        threshold       double precision,
        severity        text,
        message         text,
        acknowledged    boolean NOT NULL DEFAULT false,
        webhook_status  text,
        UNIQUE (rule_id, bar_time)
    );
    """,
]
PG_SCHEMA_VERSION = len(MIGRATIONS)

BLOCK_MS = 3_600_000  # one block: an hour of bars
BLOCK_DTYPE = np.dtype([("bar_time", "<i8")] + [(c, "<i8" if c in ("trades", "fills") else "<f8") for c in (
    "open", "high", "low", "close", "volume", "quote_volume", "vwap", "trades", "fills", "taker_buy_volume", "taker_sell_volume")])
TICK_COLUMNS = ("symbol", "agg_id", "trade_time", "event_time", "recv_time", "price", "qty", "first_trade_id", "last_trade_id",
                "is_buyer_maker")
BAR_DB_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "vwap", "trades", "fills", "taker_buy_volume",
                  "taker_sell_volume")


# -- connection helpers -----------------------------------------------------------------------
def mask_dsn(dsn: str) -> str:
    """``dsn`` without its password (for messages and logs)."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "postgresql://…"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


def connect(dsn: str, autocommit: bool = True, timeout_s: float = 5.0):
    """A psycopg connection with TCP keepalives (a dead peer is noticed in ~15 s)."""
    import psycopg

    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=max(1, int(timeout_s)), keepalives=1,
                           keepalives_idle=5, keepalives_interval=2, keepalives_count=3, application_name="alphastream")


_PLACEHOLDER = re.compile(r"\?")


def translate(sql: str) -> str:
    """SQLite-dialect SQL shared by both backends → PostgreSQL (``?`` → ``%s``, ``INSERT OR IGNORE``)."""
    out = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
    if out.lstrip().upper().startswith("INSERT OR IGNORE INTO"):
        out = re.sub(r"(?i)INSERT\s+OR\s+IGNORE\s+INTO", "INSERT INTO", out, count=1) + " ON CONFLICT DO NOTHING"
    return out


def channel(schema: str) -> str:
    """The NOTIFY channel of a deployment (one per schema)."""
    return ("alphastream_" + re.sub(r"[^a-z0-9_]", "_", schema.lower()))[:63]


def lock_key(schema: str, name: str) -> str:
    """Text hashed to an advisory-lock key (``hashtextextended``): per schema, per lock name."""
    return f"alphastream:{schema}:{name}"


def current_schema(conn) -> str:
    return str(conn.execute("SELECT current_schema()").fetchone()[0])


def migrate(conn) -> int:
    """Create or upgrade the schema (serialised by an advisory lock); returns the version. Refuses newer."""
    schema = current_schema(conn)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key(schema, "migrate"),))
        conn.execute("CREATE TABLE IF NOT EXISTS alphastream_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM alphastream_schema").fetchone()
        current = int(row[0]) if row else 0
        if current > PG_SCHEMA_VERSION:
            raise RuntimeError(f"database schema v{current} is newer than this app (v{PG_SCHEMA_VERSION}); upgrade AlphaStream")
        if current == 0:
            timescale = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None
            if timescale:
                conn.execute(TICKS_TABLE)
                conn.execute("SELECT create_hypertable('ticks', 'trade_time', chunk_time_interval => %s, if_not_exists => true)",
                             (DAY_MS,))
            else:
                conn.execute(TICKS_TABLE + " PARTITION BY RANGE (trade_time)")
        for version in range(current, PG_SCHEMA_VERSION):
            conn.execute(MIGRATIONS[version])
        if row is None:
            conn.execute("INSERT INTO alphastream_schema (version) VALUES (%s)", (PG_SCHEMA_VERSION,))
        else:
            conn.execute("UPDATE alphastream_schema SET version = %s", (PG_SCHEMA_VERSION,))
    return PG_SCHEMA_VERSION


def is_partitioned(conn) -> bool:
    row = conn.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('ticks')").fetchone()
    return bool(row) and row[0] == "p"


def _describe(exc: BaseException, dsn: str) -> tuple[str, str]:
    """(state, message) for a database error; never the password."""
    import psycopg

    where = mask_dsn(dsn)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.replace(dsn, where)
    if isinstance(exc, psycopg.errors.DiskFull):
        return "error", f"PostgreSQL disk full ({where}); ticks are kept in memory and retried"
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return "error", f"PostgreSQL is read-only (a standby?) at {where}; ticks are kept in memory and retried"
    if isinstance(exc, psycopg.OperationalError):
        return "error", f"cannot reach PostgreSQL at {where} ({text}); ticks are kept in memory and retried"
    if "newer than this app" in text:
        return "corrupt", text
    return "error", f"PostgreSQL error at {where}: {text}; retrying"


# -- binary COPY ---------------------------------------------------------------------------------
def _tick_copy_dtype(symbol_len: int) -> np.dtype:
    fields = [("n", ">i2"), ("l0", ">i4"), ("symbol", f"S{symbol_len}")]
    for i, (name, kind) in enumerate((("agg_id", ">i8"), ("trade_time", ">i8"), ("event_time", ">i8"), ("recv_time", ">f8"),
                                      ("price", ">f8"), ("qty", ">f8"), ("first_id", ">i8"), ("last_id", ">i8"),
                                      ("is_buyer_maker", "u1")), start=1):
        fields += [(f"l{i}", ">i4"), (name, kind)]
    return np.dtype(fields)


def tick_copy_bytes(batch: TickBatch) -> bytes:
    """The rows of ``batch`` in PostgreSQL's binary COPY format (no header/trailer), built by NumPy."""
    sym = batch.symbol.encode()
    d = batch.data
    out = np.empty(len(d), dtype=_tick_copy_dtype(len(sym)))
    out["n"] = len(TICK_COLUMNS)
    out["l0"] = len(sym)
    out["symbol"] = sym
    for i, name in enumerate(("agg_id", "trade_time", "event_time", "recv_time", "price", "qty", "first_id", "last_id"), start=1):
        out[f"l{i}"] = 8
        out[name] = d[name]
    out["l9"] = 1
    out["is_buyer_maker"] = d["is_buyer_maker"].astype(np.uint8)
    return out.tobytes()


def _bar_copy_bytes(symbol: str, period_ms: int, bars: pd.DataFrame) -> bytes:
    sym = symbol.encode()
    fields = [("n", ">i2"), ("l0", ">i4"), ("symbol", f"S{len(sym)}"), ("l1", ">i4"), ("period_ms", ">i4"), ("l2", ">i4"),
              ("bar_time", ">i8")]
    for i, c in enumerate(BAR_DB_COLUMNS, start=3):
        fields += [(f"l{i}", ">i4"), (c, ">i8" if c in ("trades", "fills") else ">f8")]
    out = np.empty(len(bars), dtype=np.dtype(fields))
    out["n"] = 3 + len(BAR_DB_COLUMNS)
    out["l0"], out["symbol"], out["l1"], out["period_ms"], out["l2"] = len(sym), sym, 4, period_ms, 8
    out["bar_time"] = bars.index.as_unit("ms").asi8
    for i, c in enumerate(BAR_DB_COLUMNS, start=3):
        out[f"l{i}"] = 8
        out[c] = bars[c].to_numpy(dtype=np.int64 if c in ("trades", "fills") else np.float64)
    return out.tobytes()


def _parse_copy(data: bytes, kinds: Sequence[tuple[str, str]]) -> np.ndarray:
    """Rows of a binary ``COPY … TO STDOUT`` whose columns are all NOT NULL and fixed width."""
    if not data:
        return np.empty(0, dtype=[(n, k) for n, k in kinds])
    if not data.startswith(b"PGCOPY\n\xff\r\n\x00"):
        raise ValueError("not a binary COPY stream")
    ext = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + ext: len(data) - 2]
    fields = [("n", ">i2")]
    for i, (name, kind) in enumerate(kinds):
        fields += [(f"l{i}", ">i4"), (name, kind)]
    rows = np.frombuffer(body, dtype=np.dtype(fields))
    return rows


def _copy_out(conn, sql: str, params: Sequence[object]) -> bytes:
    cur = conn.cursor()
    with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as cp:
        return b"".join(bytes(chunk) for chunk in cp)


# -- writer ---------------------------------------------------------------------------------
class PostgresWriter(SQLiteWriter):
    """The batching writer (queueing, backoff, drop accounting of :class:`storage.sqlite.SQLiteWriter`) on PostgreSQL.

    One transaction per flush: COPY every pending batch into the staging table,
    insert the new ticks, update ``symbol_state``, run queued SQL jobs and bar
    writes, NOTIFY. A lost connection leaves everything queued (bounded by
    ``max_pending_rows``) and is retried with backoff; the health shows it.
    """

    def __init__(self, dsn: str, flush_interval_ms: int = 250, flush_max_rows: int = 20_000, max_pending_rows: int = 5_000_000,
                 retention_days: float = 0.0, on_commit: Callable[[list[TickBatch]], None] | None = None) -> None:
        super().__init__(":memory:", flush_interval_ms=flush_interval_ms, flush_max_rows=flush_max_rows,
                         max_pending_rows=max_pending_rows, retention_days=retention_days, on_commit=on_commit)
        self.dsn = dsn
        self.where = mask_dsn(dsn)
        self._days: set[int] = set()
        self._partitioned = True
        self._channel = ""
        self.status.schema_version = PG_SCHEMA_VERSION

    def submit_bars(self, symbol: str, period_ms: int, bars: pd.DataFrame) -> None:
        """Queue closed bars for ``bars`` (written once: an existing bar is kept)."""
        if len(bars):  # a job like a SQL statement: same queue, same transaction, same retry
            self.submit_sql(_BARS_JOB, (symbol.upper(), int(period_ms), bars))

    def submit_block(self, symbol: str, period_ms: int, block_start_ms: int, bars: pd.DataFrame) -> None:
        """Queue one complete hour of closed bars as a packed block (written once)."""
        if len(bars):
            packed = np.empty(len(bars), dtype=BLOCK_DTYPE)
            packed["bar_time"] = bars.index.as_unit("ms").asi8
            for c in BLOCK_DTYPE.names[1:]:
                packed[c] = bars[c].to_numpy()
            self.submit_sql(_BLOCK_INSERT, (symbol.upper(), int(period_ms), int(block_start_ms), len(packed), packed.tobytes()))

    def _check_existing(self) -> None:
        return None

    def _open(self) -> bool:
        try:
            conn = connect(self.dsn)
            migrate(conn)
            self._partitioned = is_partitioned(conn)
            self._channel = channel(current_schema(conn))
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS ticks_stage (LIKE ticks) ON COMMIT DELETE ROWS")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS bars_stage (LIKE bars) ON COMMIT DELETE ROWS")
            self._conn = conn
            again = " (reconnected after an outage)" if self.status.errors else ""
            self.status.state, self.status.message = "ok", f"persisting to {self._target()}{again}"
            return True
        except Exception as exc:  # psycopg.Error, OSError, a newer schema
            self._fail(exc)
            self._reopen_later()
            return False

    def _reopen_later(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _fail(self, exc: BaseException) -> None:
        state, message = _describe(exc, self.dsn)
        if self.status.message != message:
            log.warning("%s", message)
        self.status.state, self.status.message = state, message
        self.status.errors += 1
        self.status.last_error_at = time.time()

    def _ensure_partitions(self, batches: list[TickBatch]) -> None:
        if not self._partitioned:
            return
        days = set()
        for b in batches:
            tt = b.data["trade_time"]
            days.update(range(int(tt[0]) // DAY_MS, int(tt[-1]) // DAY_MS + 1))
        for day in sorted(days - self._days):
            name = "ticks_" + pd.Timestamp(day * DAY_MS, unit="ms").strftime("%Y%m%d")
            with self._conn.transaction():  # one at a time across recorders: concurrent CREATEs would collide
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('alphastream:partitions', 0))")
                self._conn.execute(f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF ticks FOR VALUES FROM ({day * DAY_MS}) TO ({(day + 1) * DAY_MS})')
            self._days.add(day)

    def _commit(self, batches: list[TickBatch], jobs: list, upto: int = 0) -> bool:
        assert self._conn is not None
        bars = [params for sql, params in jobs if sql is _BARS_JOB]
        sql_jobs = [(sql, params) for sql, params in jobs if sql is not _BARS_JOB]
        rows = sum(len(b) for b in batches)
        conn = self._conn
        try:
            self._ensure_partitions([b for b in batches if len(b)])
            with conn.transaction():
                if batches:
                    cur = conn.cursor()
                    with cur.copy(f"COPY ticks_stage ({', '.join(TICK_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.write(_COPY_HEADER)
                        for b in batches:
                            cp.write(tick_copy_bytes(b))
                        cp.write(_COPY_TRAILER)
                    conn.execute(
                        "WITH ins AS (INSERT INTO ticks SELECT * FROM ticks_stage ON CONFLICT DO NOTHING"
                        "  RETURNING symbol, agg_id, trade_time)"
                        " INSERT INTO symbol_state (symbol, last_agg_id, last_trade_time, rows, updated_at)"
                        " SELECT symbol, max(agg_id), max(trade_time), count(*), extract(epoch from clock_timestamp()) FROM ins GROUP BY symbol"
                        " ON CONFLICT (symbol) DO UPDATE SET last_agg_id = GREATEST(symbol_state.last_agg_id, EXCLUDED.last_agg_id),"
                        "  last_trade_time = GREATEST(symbol_state.last_trade_time, EXCLUDED.last_trade_time),"
                        "  rows = symbol_state.rows + EXCLUDED.rows, updated_at = EXCLUDED.updated_at"
                    )
                for sql, params in sql_jobs:
                    conn.execute(translate(sql), params)
                if bars:
                    cur = conn.cursor()
                    with cur.copy("COPY bars_stage (symbol, period_ms, bar_time, " + ", ".join(BAR_DB_COLUMNS) + ") FROM STDIN (FORMAT BINARY)") as cp:
                        cp.write(_COPY_HEADER)
                        for symbol, period, frame in bars:
                            cp.write(_bar_copy_bytes(symbol, period, frame))
                        cp.write(_COPY_TRAILER)
                    conn.execute("INSERT INTO bars SELECT * FROM bars_stage ON CONFLICT DO NOTHING")
                kinds = [k for k, present in (("ticks", batches), ("bars", bars), ("alerts", sql_jobs)) if present]
                if kinds:
                    conn.execute("SELECT pg_notify(%s, %s)", (self._channel, ",".join(kinds)))
        except Exception as exc:  # psycopg.Error or OSError: keep everything queued
            self._fail(exc)
            self._reopen_later()
            return False
        return self._acknowledge(batches, len(jobs), rows, upto)

    def _target(self) -> str:
        return f"PostgreSQL {self.where}"

    def _maybe_prune(self) -> None:
        """Retention: drop whole day partitions older than ``retention_days`` (hourly check)."""
        if self.retention_ms <= 0 or self._conn is None or time.monotonic() - self._last_prune < 3600:
            return
        self._last_prune = time.monotonic()
        cutoff_day = (int(time.time() * 1000) - self.retention_ms) // DAY_MS
        try:
            if self._partitioned:
                rows = self._conn.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass('ticks')"
                ).fetchall()
                for (name,) in rows:
                    m = re.fullmatch(r"ticks_(\d{8})", name)
                    if m and int(pd.Timestamp(m.group(1)).value // 1_000_000) // DAY_MS < cutoff_day:
                        self._conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            else:
                self._conn.execute("DELETE FROM ticks WHERE trade_time < %s", (cutoff_day * DAY_MS,))
        except Exception as exc:
            self._fail(exc)
            self._reopen_later()


# -- readers -----------------------------------------------------------------------------------
class _Result:
    """Rows fetched eagerly (the pooled connection goes back at once)."""

    def __init__(self, cur) -> None:
        self.rows = cur.fetchall() if cur.description is not None else []
        self.rowcount = cur.rowcount

    def fetchall(self) -> list[tuple]:
        return list(self.rows)

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def __iter__(self):
        return iter(self.rows)


class SqlSession:
    """A sqlite3-like facade on a connection pool for code shared by both backends.

    ``execute(sql, params)`` takes SQLite-dialect SQL (:func:`translate`);
    ``with session:`` runs the statements inside it in one transaction on one
    connection, like ``with sqlite3_connection:``. Not shared between threads.
    """

    def __init__(self, pool) -> None:
        self.pool = pool
        self._conn = None
        self._ctx = None
        self._tx = None

    def __enter__(self) -> SqlSession:
        self._ctx = self.pool.connection()
        self._conn = self._ctx.__enter__()
        self._tx = self._conn.transaction()
        self._tx.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._tx.__exit__(*exc)
        finally:
            conn_ctx, self._conn, self._tx, self._ctx = self._ctx, None, None, None
            conn_ctx.__exit__(*exc)

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Result:
        if self._conn is not None:
            return _Result(self._conn.execute(translate(sql), tuple(params)))
        with self.pool.connection() as conn:
            return _Result(conn.execute(translate(sql), tuple(params)))

    def close(self) -> None:
        return None


class PostgresReader:
    """Read helpers on a small connection pool (safe to share between threads)."""

    def __init__(self, dsn: str, max_size: int = 6) -> None:
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        self.pool = ConnectionPool(dsn, min_size=1, max_size=max_size, open=False, timeout=10,
                                   kwargs={"autocommit": True, "application_name": "alphastream-reader", "connect_timeout": 5,
                                           "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3})
        self._opened = False
        self._lock = threading.Lock()
        self._local = threading.local()

    def _pool(self):
        with self._lock:
            if not self._opened:
                self.pool.open(wait=False)
                self._opened = True
        return self.pool

    def session(self) -> SqlSession:
        """This thread's :class:`SqlSession`."""
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = SqlSession(self._pool())
        return s

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        return self.session().execute(sql, params).fetchall()

    def schema(self) -> str:
        return str(self.query("SELECT current_schema()")[0][0])

    def last_agg_ids(self) -> dict[str, int]:
        return {s: int(a) for s, a in self.query("SELECT symbol, last_agg_id FROM symbol_state")}

    def symbol_state(self) -> dict[str, tuple[int, int]]:
        """symbol → (newest agg id, its trade time ms) over every recorder."""
        return {s: (int(a), int(t)) for s, a, t in self.query("SELECT symbol, last_agg_id, last_trade_time FROM symbol_state")}

    def count_ticks(self) -> int:
        return int(self.query("SELECT COALESCE(sum(rows), 0) FROM symbol_state")[0][0])

    _TICK_SELECT = ("SELECT agg_id, trade_time, COALESCE(event_time, trade_time), COALESCE(recv_time, trade_time::float8), price, qty,"
                    " COALESCE(first_trade_id, agg_id), COALESCE(last_trade_id, agg_id), is_buyer_maker FROM ticks")
    _TICK_KINDS = (("agg_id", ">i8"), ("trade_time", ">i8"), ("event_time", ">i8"), ("recv_time", ">f8"), ("price", ">f8"),
                   ("qty", ">f8"), ("first_id", ">i8"), ("last_id", ">i8"), ("is_buyer_maker", "u1"))

    def _ticks(self, where: str, params: Sequence[object], order: str) -> np.ndarray:
        with self._pool().connection() as conn:
            raw = _copy_out(conn, f"{self._TICK_SELECT} WHERE {where} ORDER BY {order}", params)
        rows = _parse_copy(raw, self._TICK_KINDS)
        out = np.empty(len(rows), dtype=BATCH_DTYPE)
        for name, _ in self._TICK_KINDS:
            out[name] = rows[name]
        return out

    def load_batch(self, symbol: str, since_ms: int | None = None, until_ms: int | None = None, limit: int | None = None) -> TickBatch:
        """Ticks of ``symbol`` with ``since_ms <= trade_time < until_ms`` (agg_id order; ``limit``: the newest)."""
        lo = since_ms if since_ms is not None else -(2**62)
        hi = until_ms if until_ms is not None else 2**62
        if limit is None:
            arr = self._ticks("symbol = %s AND trade_time >= %s AND trade_time < %s", (symbol.upper(), lo, hi), "trade_time, agg_id")
        else:
            arr = self._ticks("symbol = %s AND trade_time >= %s AND trade_time < %s", (symbol.upper(), lo, hi),
                              f"trade_time DESC, agg_id DESC LIMIT {int(limit)}")[::-1].copy()
        if len(arr) > 1 and np.any(np.diff(arr["agg_id"]) < 0):
            arr = arr[np.argsort(arr["agg_id"], kind="stable")]
        return TickBatch(symbol.upper(), arr)

    def ticks_after(self, symbol: str, after_id: int, after_time_ms: int, limit: int = 200_000) -> TickBatch:
        """Ticks of ``symbol`` newer than ``after_id`` (whose trade time is ``after_time_ms``), oldest first."""
        arr = self._ticks("symbol = %s AND trade_time >= %s AND agg_id > %s", (symbol.upper(), int(after_time_ms), int(after_id)),
                          f"trade_time, agg_id LIMIT {int(limit)}")
        return TickBatch(symbol.upper(), arr)

    def _bar_rows(self, conn, symbol: str, period_ms: int, lo: int, hi: int) -> np.ndarray:
        kinds = [("bar_time", ">i8")] + [(c, ">i8" if c in ("trades", "fills") else ">f8") for c in BAR_DB_COLUMNS]
        raw = _copy_out(conn, "SELECT bar_time, " + ", ".join(BAR_DB_COLUMNS) + " FROM bars WHERE symbol = %s AND period_ms = %s"
                        " AND bar_time >= %s AND bar_time < %s ORDER BY bar_time", (symbol, int(period_ms), lo, hi))
        rows = _parse_copy(raw, kinds)
        out = np.empty(len(rows), dtype=BLOCK_DTYPE)
        for name in BLOCK_DTYPE.names:
            out[name] = rows[name]
        return out

    def load_bars(self, symbol: str, period_ms: int, start_ms: int | None = None, end_ms: int | None = None) -> pd.DataFrame:
        """Stored closed bars with ``start_ms <= bar start < end_ms`` as a :func:`storage.bars.empty_bars`-shaped frame.

        Complete hours come from ``bar_blocks`` (one row each); the rest — the current hour, an
        hour whose block was never written — row by row from ``bars``.
        """
        from storage.bars import empty_bars

        sym = symbol.upper()
        lo = start_ms if start_ms is not None else -(2**62)
        hi = end_ms if end_ms is not None else 2**62
        parts: list[np.ndarray] = []
        with self._pool().connection() as conn:
            cur = conn.cursor(binary=True)
            blocks = cur.execute("SELECT block_start, data FROM bar_blocks WHERE symbol = %s AND period_ms = %s AND block_start >= %s"
                                 " AND block_start < %s ORDER BY block_start", (sym, int(period_ms), lo // BLOCK_MS * BLOCK_MS, hi)).fetchall()
            cursor = lo
            for block_start, data in blocks:  # rows between the blocks (holes, the head), then the blocks themselves
                if block_start > cursor:
                    parts.append(self._bar_rows(conn, sym, period_ms, cursor, min(block_start, hi)))
                parts.append(np.frombuffer(bytes(data), dtype=BLOCK_DTYPE))
                cursor = max(cursor, block_start + BLOCK_MS)
            if cursor < hi:
                parts.append(self._bar_rows(conn, sym, period_ms, cursor, hi))
        rows = np.concatenate(parts) if parts else np.empty(0, dtype=BLOCK_DTYPE)
        rows = rows[(rows["bar_time"] >= lo) & (rows["bar_time"] < hi)]
        if not len(rows):
            return empty_bars()
        out = pd.DataFrame({c: rows[c] for c in BAR_DB_COLUMNS})
        out["closed"] = True
        out.index = pd.DatetimeIndex(pd.to_datetime(rows["bar_time"], unit="ms", utc=True), name="time")
        return out

    def last_block_times(self) -> dict[tuple[str, int], int]:
        """(symbol, period ms) → start of the newest stored block."""
        return {(s, int(p)): int(t) for s, p, t in self.query("SELECT symbol, period_ms, max(block_start) FROM bar_blocks GROUP BY 1, 2")}

    def last_bar_times(self) -> dict[tuple[str, int], int]:
        """(symbol, period ms) → start of the newest stored bar."""
        return {(s, int(p)): int(t) for s, p, t in self.query("SELECT symbol, period_ms, max(bar_time) FROM bars GROUP BY 1, 2")}

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk (tables + indexes + TOAST) of ticks (all partitions), bars and bar blocks."""
        q = ("SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
             " WHERE c.oid = to_regclass(?) OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(?))")
        return {t: int(self.query(q, (t, t))[0][0]) for t in ("ticks", "bars", "bar_blocks")}

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self.pool.close()
                self._opened = False


# -- advisory-lock leases and notifications -------------------------------------------------------
class Leases:
    """Session-level advisory locks held by one dedicated connection, re-tried every ``interval_s``.

    ``want(names)`` says which locks this process should try to hold; a lock
    held by another process is retried (hot standby) and taken as soon as that
    process's session ends. ``on_change(held)`` runs (on the lease thread)
    whenever the held set changes — also when the connection is lost, which
    releases every lock server-side.
    """

    def __init__(self, dsn: str, names: Iterable[str] = (), on_change: Callable[[frozenset[str]], None] | None = None,
                 interval_s: float = 1.0) -> None:
        self.dsn = dsn
        self.interval_s = interval_s
        self._handlers: list[Callable[[frozenset[str]], None]] = [on_change] if on_change is not None else []
        self._wanted: list[str] = list(dict.fromkeys(names))
        self.held: frozenset[str] = frozenset()
        self.state = "connecting"
        self.message = ""
        self.schema = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn = None

    def want(self, names: Iterable[str]) -> None:
        with self._lock:
            self._wanted = list(dict.fromkeys([*self._wanted, *names]))
        self._wake.set()

    def wanted(self) -> list[str]:
        with self._lock:
            return list(self._wanted)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-leases", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # releases every lock
            self._conn = None
        self._set(frozenset())

    def subscribe(self, handler: Callable[[frozenset[str]], None]) -> None:
        """Call ``handler(held)`` on the lease thread whenever the held set changes."""
        self._handlers.append(handler)

    def _set(self, held: frozenset[str]) -> None:
        if held != self.held:
            self.held = held
            for handler in list(self._handlers):
                try:
                    handler(held)
                except Exception:
                    log.exception("lease change handler failed")

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self._conn is None:
                    self._conn = connect(self.dsn)
                    self.schema = current_schema(self._conn)
                    self.state, self.message, backoff = "ok", "", 0.5
                held = set(self.held)
                self._conn.execute("SELECT 1")  # the session (and its locks) is alive
                for name in self.wanted():
                    if name in held:
                        continue
                    got = self._conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                                             (lock_key(self.schema, name),)).fetchone()[0]
                    if got:
                        held.add(name)
                self._set(frozenset(held))
            except Exception as exc:
                state, message = _describe(exc, self.dsn)
                self.state, self.message = "error", message.replace("ticks are kept in memory and retried", "locks released; retrying")
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        self._conn.close()
                self._conn = None
                self._set(frozenset())
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._wake.wait(self.interval_s)
            self._wake.clear()


class Listener:
    """LISTEN on the deployment's channel in a thread; calls ``on_notify(kinds)`` per notification,
    and every ``idle_s`` without one (a reconnect may have missed some)."""

    def __init__(self, dsn: str, on_notify: Callable[[set[str]], None], idle_s: float = 2.0) -> None:
        self.dsn = dsn
        self.on_notify = on_notify
        self.idle_s = idle_s
        self.state = "connecting"
        self.message = ""
        self.notifications = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            conn = None
            try:
                conn = connect(self.dsn)
                chan = channel(current_schema(conn))
                conn.execute(f'LISTEN "{chan}"')
                self.state, self.message, backoff = "ok", "", 0.5
                self.on_notify({"ticks", "bars", "alerts", "rules"})  # catch up on what a reconnect missed
                while not self._stop.is_set():
                    kinds: set[str] = set()
                    for n in conn.notifies(timeout=self.idle_s, stop_after=1):
                        kinds.update(n.payload.split(","))
                    if kinds:
                        self.notifications += 1
                    self.on_notify(kinds or {"idle"})
            except Exception as exc:
                self.state, self.message = "error", _describe(exc, self.dsn)[1]
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
