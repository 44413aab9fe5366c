"""PostgreSQL specifics against the real server: partitions, COPY, leases, LISTEN/NOTIFY, bars, a restart."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import numpy as np
import psycopg
import pytest

from ingest.shards import BarRecorder
from storage.postgres import Leases, PostgresReader, connect, mask_dsn, migrate, translate
from storage.store import TickStore
from storage.ticks import TickBatch
from tests.storage.test_contract import _recent


def _wait(cond, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_translation_and_masking():
    assert translate("INSERT OR IGNORE INTO universe (symbol, added_at, note) VALUES (?, ?, ?)") == (
        "INSERT INTO universe (symbol, added_at, note) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING")
    assert translate("SELECT 1 WHERE a LIKE '5%'") == "SELECT 1 WHERE a LIKE '5%%'"
    assert mask_dsn("postgresql://alice:s3cret@db.example:5432/ticks") == "postgresql://alice:***@db.example:5432/ticks"
    assert "s3cret" not in mask_dsn("postgres://u:s3cret@h/d?sslmode=require")


def test_ticks_are_partitioned_by_day_and_migrations_are_serialised(pg_url, data_dir):
    # two processes migrating at once (two recorders starting together) must not collide
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with connect(pg_url) as c:
                migrate(c)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    arr = _recent(data_dir, "BTCUSDT")
    arr["trade_time"][len(arr) // 2 :] += 86_400_000  # the second half a day later: a second partition
    arr["event_time"][len(arr) // 2 :] += 86_400_000
    store = TickStore(":memory:", database_url=pg_url)
    store.start()
    store.write(TickBatch("BTCUSDT", arr))
    assert store.writer.flush_now(30)
    with connect(pg_url) as c:
        parts = c.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass('ticks')").fetchone()[0]
        assert parts == 2
        assert c.execute("SELECT version FROM alphastream_schema").fetchone()[0] == 1
        # a database from a newer app is refused with a message, not altered
        c.execute("UPDATE alphastream_schema SET version = 99")
        with pytest.raises(RuntimeError, match="newer than this app"):
            migrate(c)
    assert store.reader.disk_bytes()["ticks"] > 0
    store.close()


def test_a_second_lock_holder_waits_and_takes_over_when_the_first_session_ends(pg_url):
    first, second = Leases(pg_url, ["symbol:BTCUSDT", "alerts"], interval_s=0.2), Leases(pg_url, ["symbol:BTCUSDT"], interval_s=0.2)
    changes: list[frozenset] = []
    second.subscribe(changes.append)
    first.start()
    _wait(lambda: first.held == {"symbol:BTCUSDT", "alerts"}, what="the first holder")
    second.start()
    time.sleep(1.0)
    assert second.held == frozenset()  # hot standby
    first.stop()  # its session ends: the lock is free
    _wait(lambda: second.held == {"symbol:BTCUSDT"}, 10, "the standby to take over")
    assert changes == [frozenset({"symbol:BTCUSDT"})]
    second.stop()


def test_a_dashboard_follows_ticks_another_process_stores(pg_url, data_dir):
    from storage.follower import Follower

    btc = _recent(data_dir, "BTCUSDT")
    recorder = TickStore(":memory:", database_url=pg_url)
    recorder.start()
    recorder.write(TickBatch("BTCUSDT", btc[:5000]))  # stored before the dashboard starts: its warm start
    assert recorder.writer.flush_now(30)
    dashboard = TickStore(":memory:", database_url=pg_url, warm_start_hours=1.0)
    dashboard.start()
    follower = Follower(dashboard, warm_hours=1.0)
    follower.start()
    for i in range(5000, len(btc), 1000):  # then it streams: each commit NOTIFYs
        recorder.write(TickBatch("BTCUSDT", btc[i : i + 1000]))
        time.sleep(0.05)
    assert recorder.writer.flush_now(30)
    _wait(lambda: dashboard.buffer.buffer("BTCUSDT").last_agg_id() == int(btc["agg_id"][-1]), what="the follower")
    assert follower.listener.notifications > 0
    mine = dashboard.buffer.snapshot("BTCUSDT")
    assert np.array_equal(mine["agg_id"], btc["agg_id"]) and np.array_equal(mine["price"], btc["price"])
    assert dashboard.status().rows_stored == len(btc)
    follower.stop()
    dashboard.close()
    recorder.close()


def test_the_recorder_writes_each_closed_bar_once_and_a_dashboard_reads_them(pg_url, data_dir):
    btc = _recent(data_dir, "BTCUSDT")
    store = TickStore(":memory:", database_url=pg_url)
    store.start()
    store.write(TickBatch("BTCUSDT", btc))
    bars = BarRecorder(store, lambda: ("BTCUSDT",))
    bars.start()
    assert bars.flush() > 0
    assert bars.flush() == 0  # nothing new: nothing written again
    bars.stop()
    assert store.writer.flush_now(30)
    reader = PostgresReader(pg_url)
    for period in (1_000, 60_000, 300_000):
        stored = reader.load_bars("BTCUSDT", period)
        full = store.full_bars("BTCUSDT", period)
        closed = full[full["closed"]]
        closed = closed[closed.index.as_unit("ms").asi8 >= btc["trade_time"][0]]  # bars whose every tick is in memory
        assert len(stored) == len(closed), period
        assert len(stored) > 0 or period == 300_000, period  # the recording spans minutes: maybe no whole 5m bar
        for col in ("open", "high", "low", "close", "volume", "vwap", "trades", "taker_buy_volume"):
            assert np.allclose(stored[col].to_numpy(float), closed[col].to_numpy(float), rtol=1e-12), (period, col)
    reader.close()
    store.close()


def _pg_restart() -> None:
    ctl = shutil.which("pg_ctlcluster") or "/usr/bin/pg_ctlcluster"
    subprocess.run([ctl, "--skip-systemctl-redirect", "15", "main", "restart"], check=True, capture_output=True, timeout=120)


def test_a_postgres_restart_during_ingestion_loses_nothing(pg_url, data_dir):
    """The server restarts mid-stream: the writer reports it, keeps the ticks in memory and writes them after."""
    btc = _recent(data_dir, "BTCUSDT")
    store = TickStore(":memory:", database_url=pg_url, flush_interval_ms=50)
    store.start()
    states: list[str] = []
    stop = threading.Event()

    def feed() -> None:
        for i in range(0, len(btc), 200):
            store.write(TickBatch("BTCUSDT", btc[i : i + 200]))
            states.append(store.writer.status.state)
            time.sleep(0.01)
        stop.set()

    t = threading.Thread(target=feed)
    t.start()
    time.sleep(0.5)
    _pg_restart()
    t.join()
    _wait(lambda: store.writer.flush_now(1), 90, "the writer to recover")
    assert "error" in states, "the restart was not noticed"
    assert store.writer.status.state == "ok" and "reconnected" in store.writer.status.message
    with psycopg.connect(pg_url) as c:
        ids = np.array([r[0] for r in c.execute("SELECT agg_id FROM ticks ORDER BY agg_id")])
    assert np.array_equal(ids, btc["agg_id"])  # every tick once
    store.close()


def test_hour_blocks_and_rows_read_back_as_the_same_bars(pg_url):
    """A day read takes complete hours from packed blocks and the rest row by row: same bars either way."""
    from benchmarks.bench_postgres import _bars_day
    from storage.postgres import BLOCK_MS, PostgresWriter

    start = 1_796_083_200_000  # a UTC midnight
    bars = _bars_day(start).iloc[: int(2.5 * 3600)]
    w = PostgresWriter(pg_url)
    w.start()
    w.submit_bars("BTCUSDT", 1000, bars)
    for hour in (0, 2):  # hour 1 has no block (never written): its rows are read instead
        sel = (bars.index.as_unit("ms").asi8 >= start + hour * BLOCK_MS) & (bars.index.as_unit("ms").asi8 < start + (hour + 1) * BLOCK_MS)
        w.submit_block("BTCUSDT", 1000, start + hour * BLOCK_MS, bars[sel])
    assert w.flush_now(60)
    w.stop()
    reader = PostgresReader(pg_url)
    cols = ["open", "high", "low", "close", "volume", "quote_volume", "vwap", "trades", "fills", "taker_buy_volume", "taker_sell_volume"]
    for lo, hi in ((None, None), (start + 1_800_000, start + 9_000_000 - 17_000), (start + 3_600_000, start + 7_200_000)):
        got = reader.load_bars("BTCUSDT", 1000, lo, hi)
        want = bars
        if lo is not None:
            want = bars[(bars.index.as_unit("ms").asi8 >= lo) & (bars.index.as_unit("ms").asi8 < hi)]
        assert got.index.equals(want.index), (lo, hi)
        assert np.array_equal(got[cols].to_numpy(float), want[cols].to_numpy(float)), (lo, hi)
    assert reader.last_block_times() == {("BTCUSDT", 1000): start + 2 * BLOCK_MS}
    reader.close()
