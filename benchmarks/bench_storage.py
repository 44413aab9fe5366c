"""Storage: resampling vs pandas, buffer append rate, SQLite insert rate, memory per tick."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import Row, median_time
from storage.bars import resample_ticks
from storage.buffer import BYTES_PER_TICK, SymbolBuffer
from storage.sqlite import SQLiteWriter
from storage.ticks import BATCH_DTYPE, TickBatch


def _ticks(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    arr = np.empty(n, dtype=BATCH_DTYPE)
    arr["agg_id"] = np.arange(n) + 1_000_000
    arr["trade_time"] = 1_700_000_000_000 + np.cumsum(rng.integers(0, 90, n))  # ~22 trades/s
    arr["event_time"] = arr["trade_time"] + 1
    arr["recv_time"] = arr["event_time"] + 5.0
    arr["price"] = np.round(60_000 + np.cumsum(rng.normal(0, 0.5, n)), 1)
    arr["qty"] = np.round(rng.exponential(0.05, n), 3)
    arr["first_id"] = arr["agg_id"]
    arr["last_id"] = arr["agg_id"]
    arr["is_buyer_maker"] = rng.random(n) < 0.5
    return arr


def bench_resample(quick: bool) -> list[Row]:
    n = 200_000 if quick else 1_000_000
    a = _ticks(n)
    # the store hands the resampler contiguous column copies (storage.buffer snapshots)
    tt, price, qty, maker = (np.ascontiguousarray(a[c]) for c in ("trade_time", "price", "qty", "is_buyer_maker"))
    rows = []
    df = pd.DataFrame({"price": a["price"], "qty": a["qty"]}, index=pd.to_datetime(a["trade_time"], unit="ms", utc=True))
    for label, period, rule in (("1s", 1000, "1s"), ("1m", 60_000, "1min"), ("5m", 300_000, "5min")):
        ours = median_time(lambda p=period: resample_ticks(tt, price, qty, maker, p), repeat=7)
        alt = median_time(lambda r=rule: df.resample(r).agg({"price": ["first", "max", "min", "last"], "qty": "sum"}), repeat=5)
        rows.append(Row(f"resample {n:,} ticks -> {label} (12 columns)", ours, "pandas resample().agg (OHLC+volume)", alt))
    return rows


def bench_append(quick: bool) -> list[Row]:
    n = 1_000_000
    a = _ticks(n)
    batches = [TickBatch("BTCUSDT", a[i : i + 500]) for i in range(0, n, 500)]

    def run() -> None:
        buf = SymbolBuffer("BTCUSDT", max_ticks=2_000_000, max_age_ms=0)
        for b in batches:
            buf.append(b)

    ours = median_time(run, repeat=3)
    return [Row(f"buffer append {n:,} ticks in batches of 500", ours, "-", None, f"{n / ours / 1e6:.1f} M ticks/s; {BYTES_PER_TICK} B/tick")]


def bench_sqlite(quick: bool) -> list[Row]:
    n = 100_000 if quick else 500_000
    a = _ticks(n)
    with tempfile.TemporaryDirectory() as tmp:
        w = SQLiteWriter(Path(tmp) / "b.sqlite", flush_interval_ms=250, flush_max_rows=20_000)
        w.start()
        while w.status.state == "starting":
            time.sleep(0.01)
        t0 = time.perf_counter()
        for i in range(0, n, 2000):
            w.submit(TickBatch("BTCUSDT", a[i : i + 2000]))
        while w.status.committed_rows < n and time.perf_counter() - t0 < 120:
            time.sleep(0.002)
        dt = time.perf_counter() - t0
        w.stop()
    return [Row(f"SQLite WAL batched insert {n:,} ticks", dt, "-", None, f"{n / dt / 1e3:.0f}k ticks/s")]


SUITE = [bench_resample, bench_append, bench_sqlite]
