"""In-memory buffer: bounds, duplicates, and consistent snapshots under concurrent writes."""

from __future__ import annotations

import threading
import time

import numpy as np

from storage.buffer import BYTES_PER_TICK, SymbolBuffer, TickBuffer
from storage.ticks import TickBatch
from tests.recordings import trades_array


def test_bytes_per_tick_within_target():
    assert BYTES_PER_TICK <= 48


def test_duplicates_dropped_and_order_kept(data_dir):
    arr = trades_array(data_dir, "BTCUSDT")[:5000]
    buf = SymbolBuffer("BTCUSDT", max_ticks=100_000, max_age_ms=0)
    assert buf.append(TickBatch("BTCUSDT", arr[:3000])) == 3000
    assert buf.append(TickBatch("BTCUSDT", arr[2000:5000])) == 2000  # overlap of 1000
    snap = buf.snapshot()
    assert np.array_equal(snap["agg_id"], arr["agg_id"])
    assert np.array_equal(snap["price"], arr["price"])
    assert buf.stats()["duplicates_dropped"] == 1000


def test_count_and_age_bounds(data_dir):
    arr = trades_array(data_dir, "BTCUSDT")
    buf = SymbolBuffer("BTCUSDT", max_ticks=1000, max_age_ms=0, initial_capacity=64)
    for i in range(0, len(arr), 333):
        buf.append(TickBatch("BTCUSDT", arr[i : i + 333]))
    snap = buf.snapshot()
    assert len(snap) == 1000
    assert np.array_equal(snap["agg_id"], arr["agg_id"][-1000:])
    aged = SymbolBuffer("BTCUSDT", max_ticks=10**6, max_age_ms=60_000)
    aged.append(TickBatch("BTCUSDT", arr))
    tt = aged.snapshot()["trade_time"]
    assert tt[0] >= arr["trade_time"][-1] - 60_000
    assert len(tt) == int((arr["trade_time"] >= arr["trade_time"][-1] - 60_000).sum())


def test_time_range_snapshot(data_dir):
    arr = trades_array(data_dir, "ETHUSDT")
    buf = TickBuffer()
    buf.append(TickBatch("ETHUSDT", arr))
    lo, hi = int(arr["trade_time"][100]), int(arr["trade_time"][5000])
    snap = buf.snapshot("ETHUSDT", lo, hi)
    expected = (arr["trade_time"] >= lo) & (arr["trade_time"] < hi)
    assert np.array_equal(snap["agg_id"], arr["agg_id"][expected])


def test_concurrent_writer_and_readers_never_see_torn_rows(data_dir):
    arr = trades_array(data_dir, "BTCUSDT")
    price_of = dict(zip(arr["agg_id"].tolist(), arr["price"].tolist(), strict=True))
    buf = SymbolBuffer("BTCUSDT", max_ticks=8_000, max_age_ms=0, initial_capacity=64)
    stop = threading.Event()
    errors: list[str] = []
    checked = [0]

    def writer() -> None:
        rounds = 0
        while not stop.is_set():
            base = rounds * len(arr)
            for i in range(0, len(arr), 97):
                chunk = arr[i : i + 97].copy()
                chunk["agg_id"] += base  # keep ids increasing across rounds
                buf.append(TickBatch("BTCUSDT", chunk))
            rounds += 1

    def reader() -> None:
        while not stop.is_set():
            snap = buf.snapshot()
            ids = snap["agg_id"]
            if len(ids) == 0:
                continue
            if np.any(np.diff(ids) <= 0):
                errors.append("ids not increasing")
            n = len(arr)
            base = (ids - arr["agg_id"][0]) // n * n
            for j in (0, len(ids) // 2, len(ids) - 1):
                if price_of[int(ids[j] - base[j])] != snap["price"][j]:
                    errors.append("price/id mismatch (torn row)")
            if not all(len(v) == len(ids) for v in snap.columns.values()):
                errors.append("columns of different length")
            checked[0] += 1

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors[:5]
    assert checked[0] > 100
    assert buf.stats()["appended"] > len(arr)
