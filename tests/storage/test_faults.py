"""Persistence under faults: recovery after a read-only database, dropped rows become backfilled gaps,
a corrupt file is never touched, memory plateaus at its bounds, unsaved ticks fail the recorder's exit."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from ingest.binance import BinanceSource
from storage.store import TickStore
from storage.ticks import TickBatch
from tests.conftest import ROOT
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames, trades_array

pytestmark = pytest.mark.timeout(180)


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _count(path) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute("SELECT COUNT(*) FROM ticks").fetchone()[0])


def _pending_gaps(path) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute("SELECT COUNT(*) FROM gaps WHERE status = 'pending'").fetchone()[0])


def test_the_writer_recovers_once_the_database_is_writable_again(tmp_path, data_dir):
    """A connection opened while the file was read-only stays read-only: the writer must reopen."""
    path = tmp_path / "ro.sqlite"
    store = TickStore(path, flush_interval_ms=20)
    store.writer.connect_pragmas = {"query_only": 1}  # every write fails like a read-only file
    store.start()
    arr = trades_array(data_dir, "BTCUSDT")[:3000]
    store.write(TickBatch("BTCUSDT", arr))
    _wait(lambda: store.writer.status.state == "error", 20, "the write to fail")
    assert "read-only" in store.writer.status.message and store.writer.status.pending_rows == 3000
    store.writer.connect_pragmas = {}  # the file became writable
    _wait(lambda: store.writer.status.state == "ok" and store.writer.status.pending_rows == 0, 30, "recovery")
    store.close()
    assert _count(path) == 3000


def test_a_corrupt_database_with_a_valid_header_is_never_modified(tmp_path, data_dir):
    path = tmp_path / "bad.sqlite"
    store = TickStore(path)
    store.start()
    store.write(TickBatch("BTCUSDT", trades_array(data_dir, "BTCUSDT")))
    store.close()
    with sqlite3.connect(path) as c:  # a rollback-journal file (its header says so), as an older tool might leave it
        c.execute("PRAGMA journal_mode=DELETE")
    data = bytearray(path.read_bytes())
    assert data[:16] == b"SQLite format 3\x00" and len(data) > 20 * 4096
    data[8 * 4096 : 12 * 4096] = os.urandom(4 * 4096)  # damaged pages, intact header
    path.write_bytes(bytes(data))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    store = TickStore(path)
    store.start()
    assert store.writer.status.state == "corrupt" and "left untouched" in store.writer.status.message
    store.write(TickBatch("ETHUSDT", trades_array(data_dir, "ETHUSDT")[:100]))  # memory keeps working
    assert len(store.bars("ETHUSDT", "1s")) > 0
    store.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not (tmp_path / "bad.sqlite-wal").exists()


def test_rows_dropped_by_an_overflowing_writer_are_recorded_and_backfilled(tmp_path, data_dir):
    frames = {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT",)}
    ids = [f["data"]["a"] for f in frames["BTCUSDT"]]
    with FakeBinance(frames, rate=4000) as fake:
        path = tmp_path / "drop.sqlite"
        store = TickStore(path, flush_interval_ms=20)
        store.writer.max_pending_rows = 2000
        store.writer.connect_pragmas = {"query_only": 1}  # the database stops keeping up
        store.start()
        src = BinanceSource(store, ("BTCUSDT",), fake.ws_url, fake.rest_url, backoff_initial_s=0.05, backoff_max_s=0.2)
        src.pending_retry_s = 1.0
        src.start()
        _wait(lambda: store.writer.status.dropped_rows > 5000, 60, "the write queue to overflow")
        pending = [g for g in store.status().gaps if g.status == "pending"]
        assert pending and sum(g.to_agg_id - g.from_agg_id + 1 for g in pending) == store.writer.status.dropped_rows
        store.writer.connect_pragmas = {}  # the database is back
        _wait(lambda: fake.done(), 60, "the exchange to finish")
        _wait(lambda: _count(path) == len(ids), 90, "every trade in SQLite (pending gaps backfilled)")
        # the gap's status follows its rows (a later commit): wait for it rather than race it
        _wait(lambda: not _pending_gaps(path), 60, "no gap left pending")
        src.stop()
        store.close()
    with sqlite3.connect(path) as c:
        assert [r[0] for r in c.execute("SELECT agg_id FROM ticks ORDER BY agg_id")] == ids
        statuses = {r[0] for r in c.execute("SELECT status FROM gaps")}
    assert "pending" not in statuses and "filled" in statuses


def test_memory_plateaus_at_the_configured_bounds(data_dir):
    """A soak past ALPHASTREAM_BUFFER_MAX_TICKS: after the buffer fills, memory stops growing
    (the bar caches are trimmed with the ticks they came from)."""
    base = trades_array(data_dir, "BTCUSDT")
    store = TickStore(":memory:", max_ticks=20_000)
    step = int(base["trade_time"][-1] - base["trade_time"][0]) + 1
    tracemalloc.start()
    marks = []
    for rep in range(30):
        arr = base.copy()
        arr["agg_id"] += rep * len(base)
        arr["trade_time"] += rep * step
        for chunk in np.array_split(arr, 20):
            store.buffer.append(TickBatch("BTCUSDT", chunk))
            store.bars("BTCUSDT", "1s")
            store.bars("BTCUSDT", "1m")
        marks.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    assert store.buffer.buffer("BTCUSDT").stats()["ticks"] == 20_000
    grown = marks[-1] - marks[5]
    print(f"\nmemory after 6 / 30 rounds of 21k ticks: {marks[5] / 1e6:.1f} / {marks[-1] / 1e6:.1f} MB")
    assert grown < 2_000_000, f"memory kept growing by {grown / 1e6:.1f} MB"


def test_the_recorder_exits_non_zero_when_ticks_stay_unsaved(tmp_path, data_dir):
    frames = {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT", "ETHUSDT")}
    with FakeBinance(frames, rate=2000) as fake:
        db = tmp_path / "adir.sqlite"
        db.mkdir()  # cannot be opened as a database: nothing is ever written
        env = {**os.environ, "ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url,
               "ALPHASTREAM_DB_PATH": str(db), "ALPHASTREAM_SEED_HISTORY": "false"}
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "--status-every", "1"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait(lambda: fake.sent > 500, 60, "trades to arrive")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, out[-2000:]
    assert "were NOT saved" in out
