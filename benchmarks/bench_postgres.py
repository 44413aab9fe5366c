"""Both storage backends in one run: sustained commits, tick → committed latency, bars read, bytes per tick.

PostgreSQL is the server at ``ALPHASTREAM_TEST_DATABASE_URL`` (default the local test
database); every run works in its own schema, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_storage import _ticks
from benchmarks.harness import Row, median_time
from storage.bars import resample_ticks
from storage.postgres import PostgresReader, PostgresWriter
from storage.sqlite import SQLiteWriter
from storage.ticks import TickBatch

PG_URL = os.environ.get("ALPHASTREAM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _writer(kind: str, where: str, **kw):
    w = SQLiteWriter(Path(where) / "b.sqlite", **kw) if kind == "sqlite" else PostgresWriter(where, **kw)
    w.start()
    while w.status.state == "starting":
        time.sleep(0.01)
    return w


@contextlib.contextmanager
def _backends() -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp, _schema() as url:
        yield [("SQLite", tmp), ("PostgreSQL", url)]


def bench_sustained(quick: bool) -> list[Row]:
    """Ticks/s committed when the feed delivers faster than the database can take (batches of 2,000)."""
    n = 200_000 if quick else 1_000_000
    a = _ticks(n)
    rows = []
    with _backends() as backends:
        results = {}
        for label, where in backends:
            w = _writer("sqlite" if label == "SQLite" else "pg", where, flush_interval_ms=250, flush_max_rows=20_000)
            t0 = time.perf_counter()
            for i in range(0, n, 2000):
                w.submit(TickBatch("BTCUSDT", a[i : i + 2000]))
            while w.status.committed_rows < n and time.perf_counter() - t0 < 300:
                time.sleep(0.002)
            results[label] = time.perf_counter() - t0
            w.stop()
        for label, dt in results.items():
            rows.append(Row(f"{label}: {n:,} ticks committed, flat out", dt, "-", None, f"{n / dt / 1e3:.0f}k ticks/s"))
    return rows


def bench_commit_latency(quick: bool) -> list[Row]:
    """A steady 2,000 ticks/s in batches of 20 (every 10 ms), the app's flush settings (250 ms / 20k rows)."""
    seconds = 4 if quick else 10
    a = _ticks(2000 * seconds)
    rows = []
    with _backends() as backends:
        for label, where in backends:
            submitted: dict[int, float] = {}
            lat: list[float] = []

            def done(batches, submitted=submitted, lat=lat) -> None:
                now = time.perf_counter()
                lat.extend(now - submitted[int(b.data["agg_id"][0])] for b in batches)

            w = _writer("sqlite" if label == "SQLite" else "pg", where, flush_interval_ms=250, flush_max_rows=20_000, on_commit=done)
            t0 = time.perf_counter()
            for k, i in enumerate(range(0, len(a), 20)):
                batch = TickBatch("BTCUSDT", a[i : i + 20])
                submitted[int(batch.data["agg_id"][0])] = time.perf_counter()
                w.submit(batch)
                wait = t0 + (k + 1) * 0.01 - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            w.flush_now(30)
            w.stop()
            p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
            rows.append(Row(f"{label}: tick -> committed at 2,000 ticks/s", p50, "-", None,
                            f"p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms (flush every 250 ms)"))
    return rows


def _bars_day(start_ms: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 86_400
    close = 60_000 + np.cumsum(rng.normal(0, 2, n))
    idx = pd.DatetimeIndex(pd.to_datetime(start_ms + np.arange(n) * 1000, unit="ms", utc=True), name="time")
    vol = rng.exponential(1.0, n)
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": vol, "quote_volume": vol * close,
                         "vwap": close, "trades": rng.integers(1, 50, n), "fills": rng.integers(1, 80, n),
                         "taker_buy_volume": vol / 2, "taker_sell_volume": vol / 2, "closed": True}, index=idx)


def bench_bars_read(quick: bool) -> list[Row]:
    """A dashboard's read of 24 h of 1 s bars for a pair (2 × 86,400 rows) from the ``bars`` table."""
    start = int(time.time() * 1000) // 86_400_000 * 86_400_000 - 86_400_000
    with _schema() as url:
        w = _writer("pg", url)
        day = _bars_day(start)
        t = day.index.as_unit("ms").asi8
        for sym in ("BTCUSDT", "ETHUSDT"):  # as the recorder writes them: every bar, and each complete hour as a block
            w.submit_bars(sym, 1000, day)
            for hour in range(start, start + 86_400_000, 3_600_000):
                w.submit_block(sym, 1000, hour, day[(t >= hour) & (t < hour + 3_600_000)])
        w.flush_now(120)
        w.stop()
        reader = PostgresReader(url)

        def ours() -> None:
            for sym in ("BTCUSDT", "ETHUSDT"):
                assert len(reader.load_bars(sym, 1000, start, start + 86_400_000)) == 86_400

        def alternative() -> None:  # the obvious way: SELECT, fetchall, DataFrame
            with reader.pool.connection() as conn:
                for sym in ("BTCUSDT", "ETHUSDT"):
                    cur = conn.execute("SELECT bar_time, open, high, low, close, volume, quote_volume, vwap, trades, fills,"
                                       " taker_buy_volume, taker_sell_volume FROM bars WHERE symbol = %s AND period_ms = 1000"
                                       " AND bar_time >= %s AND bar_time < %s ORDER BY bar_time", (sym, start, start + 86_400_000))
                    df = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
                    df.index = pd.to_datetime(df.pop("bar_time"), unit="ms", utc=True)

        t_ours = median_time(ours, repeat=5)
        t_alt = median_time(alternative, repeat=3)
        reader.close()
    return [Row("PostgreSQL: read 24 h of 1 s bars, a pair (172,800 rows)", t_ours, "SELECT rows + fetchall + DataFrame", t_alt,
                "24 hour blocks per leg, unpacked by NumPy")]


def bench_bytes_per_tick(quick: bool) -> list[Row]:
    """Disk per stored tick (table + primary key index), after 500k ticks."""
    n = 100_000 if quick else 500_000
    a = _ticks(n)
    notes = []
    with _backends() as backends:
        for label, where in backends:
            w = _writer("sqlite" if label == "SQLite" else "pg", where)
            for i in range(0, n, 5000):
                w.submit(TickBatch("BTCUSDT", a[i : i + 5000]))
            w.flush_now(300)
            w.stop()
            if label == "SQLite":
                size = sum(p.stat().st_size for p in Path(where).glob("b.sqlite*"))
            else:
                r = PostgresReader(where)
                size = r.disk_bytes()["ticks"]
                r.close()
            notes.append(f"{label} {size / n:.0f} B")
    return [Row(f"bytes per tick on disk ({n:,} ticks)", 0.0, "-", None, ", ".join(notes) + " (memory: 45 B)")]


def bench_resample_vs_stored(quick: bool) -> list[Row]:
    """Building a day of 1 s bars from ticks in memory (what a SQLite dashboard does instead of reading them)."""
    a = _ticks(500_000 if quick else 2_000_000)
    tt, p, q, m = (np.ascontiguousarray(a[c]) for c in ("trade_time", "price", "qty", "is_buyer_maker"))
    t = median_time(lambda: resample_ticks(tt, p, q, m, 1000), repeat=3)
    return [Row(f"memory: {len(a):,} ticks -> 1 s bars (one leg)", t, "-", None, "the SQLite dashboards' path")]


SUITE = [bench_sustained, bench_commit_latency, bench_bars_read, bench_bytes_per_tick, bench_resample_vs_stored]
