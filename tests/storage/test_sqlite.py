"""SQLite persistence: idempotency, warm start, crash safety (SIGKILL) and faults."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from storage.sqlite import SCHEMA_VERSION, SQLiteWriter, connect
from storage.store import GapRecord, TickStore
from storage.ticks import TickBatch
from tests.conftest import ROOT
from tests.recordings import trades_array


def _count(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM ticks").fetchone()[0]


def test_schema_wal_and_version(tmp_path):
    store = TickStore(tmp_path / "db.sqlite")
    store.start()
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = {r[1] for r in conn.execute("PRAGMA table_info(ticks)")}
    assert {"symbol", "agg_id", "trade_time", "price", "qty", "is_buyer_maker"} <= cols
    idx = [r[1] for r in conn.execute("PRAGMA index_list(ticks)")]
    assert "ticks_symbol_time" in idx
    store.close()


def test_inserts_are_idempotent_and_same_ms_trades_kept(tmp_path, data_dir):
    arr = trades_array(data_dir, "ETHUSDT")
    same_ms = int(np.sum(np.diff(arr["trade_time"]) == 0))
    assert same_ms > 100  # the recording has many trades sharing a millisecond
    store = TickStore(tmp_path / "db.sqlite")
    store.start()
    store.write(TickBatch("ETHUSDT", arr))
    store.write(TickBatch("ETHUSDT", arr[1000:3000]))  # reconnect overlap
    store.writer.submit(TickBatch("ETHUSDT", arr[:500]))  # backfill overlap straight to SQLite
    assert store.writer.flush_now()
    store.close()
    assert _count(tmp_path / "db.sqlite") == len(arr)


def test_warm_start_round_trip_and_resume_point(tmp_path, data_dir):
    btc, eth = trades_array(data_dir, "BTCUSDT"), trades_array(data_dir, "ETHUSDT")
    path = tmp_path / "db.sqlite"
    first = TickStore(path)
    first.start()
    first.write(TickBatch("BTCUSDT", btc))
    first.write(TickBatch("ETHUSDT", eth))
    first.record_gap(GapRecord("BTCUSDT", 5, 9, None, None, "unfillable", 0, "test gap"))
    first.close()
    second = TickStore(path, warm_start_hours=10**7)  # the recording is from 2024
    second.start()
    assert second.last_agg_id("BTCUSDT") == int(btc["agg_id"][-1])
    assert second.last_agg_id("ETHUSDT") == int(eth["agg_id"][-1])
    snap = second.buffer.snapshot("ETHUSDT")
    assert np.array_equal(snap["agg_id"], eth["agg_id"]) and np.array_equal(snap["price"], eth["price"])
    assert second.status().rows_stored == len(btc) + len(eth)
    assert [g.note for g in second.status().gaps] == ["test gap"]
    second.close()
    limited = TickStore(path, warm_start_hours=1)  # nothing in the last hour: charts start empty
    limited.start()
    assert len(limited.buffer.snapshot("ETHUSDT")) == 0
    assert limited.last_agg_id("ETHUSDT") == int(eth["agg_id"][-1])  # but ingestion can still resume
    exported = limited.ticks_export("ETHUSDT")  # the raw-ticks export is everything stored, not what memory holds
    assert np.array_equal(exported["agg_id"], eth["agg_id"]) and exported["timestamp"].iloc[0].endswith("+00:00")
    limited.close()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from storage.sqlite import SQLiteWriter
    from storage.ticks import TickBatch
    from tests.recordings import trades_array
    arr = trades_array(Path({data!r}), "BTCUSDT")
    def committed(batches):
        for b in batches:
            print("COMMITTED", int(b.data["agg_id"][-1]), flush=True)
    w = SQLiteWriter({db!r}, flush_interval_ms=20, flush_max_rows=500, on_commit=committed)
    w.start()
    i = 0
    while True:
        w.submit(TickBatch("BTCUSDT", arr[i % len(arr): i % len(arr) + 250].copy()))
        i += 250
        time.sleep(0.002)
    """
)


def test_sigkill_mid_flush_loses_no_committed_batch(tmp_path, data_dir):
    db = tmp_path / "crash.sqlite"
    code = KILL_SCRIPT.format(root=str(ROOT), data=str(data_dir), db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    reported: list[int] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(reported) < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("COMMITTED"):
            reported.append(int(line.split()[1]))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert len(reported) >= 40
    conn = connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r[0] for r in conn.execute("SELECT agg_id FROM ticks")}
    assert all(agg in stored for agg in reported)
    conn.close()


def test_locked_database_recovers_without_losing_ticks(tmp_path, data_dir):
    arr = trades_array(data_dir, "BTCUSDT")[:2000]
    path = tmp_path / "locked.sqlite"
    store = TickStore(path, flush_interval_ms=20)
    store.start()
    blocker = sqlite3.connect(path, timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")
    store.write(TickBatch("BTCUSDT", arr))
    deadline = time.monotonic() + 20
    while store.writer.status.state != "error" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.writer.status.state == "error"
    assert "locked" in store.writer.status.message
    assert len(store.buffer.snapshot("BTCUSDT")) == 2000  # still served from memory
    blocker.rollback()
    blocker.close()
    assert store.writer.flush_now(timeout=30)
    assert store.writer.status.state == "ok"
    store.close()
    assert _count(path) == 2000


def test_corrupt_file_is_left_alone_and_memory_keeps_working(tmp_path, data_dir):
    path = tmp_path / "corrupt.sqlite"
    garbage = b"this is not a database" * 500
    path.write_bytes(garbage)
    store = TickStore(path)
    store.start()
    assert store.writer.status.state == "corrupt"
    assert "corrupt" in store.writer.status.message
    arr = trades_array(data_dir, "BTCUSDT")[:100]
    store.write(TickBatch("BTCUSDT", arr))
    assert len(store.bars("BTCUSDT", "1s")) > 0
    store.close()
    assert path.read_bytes() == garbage


def test_disk_full_keeps_ticks_pending_and_reports_it(tmp_path, data_dir):
    path = tmp_path / "full.sqlite"
    conn = connect(path)
    conn.execute("CREATE TABLE filler (b BLOB)")
    conn.close()
    writer = SQLiteWriter(path, flush_interval_ms=20, connect_pragmas={"max_page_count": 40})
    writer.start()
    arr = trades_array(data_dir, "BTCUSDT")
    writer.submit(TickBatch("BTCUSDT", arr))
    deadline = time.monotonic() + 20
    while "disk full" not in writer.status.message and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.status.state == "error" and "disk full" in writer.status.message
    assert writer.status.pending_rows == len(arr)
    assert writer.status.dropped_rows == 0
    writer.stop(timeout=2)


@pytest.mark.parametrize("bad", ["directory"])
def test_unopenable_path_reports_error(tmp_path, bad):
    path = tmp_path / "adir.sqlite"
    path.mkdir()
    store = TickStore(path)
    store.start()
    assert store.writer.status.state == "error"
    assert str(path) in store.writer.status.message
    store.close()
