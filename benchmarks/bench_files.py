"""Loading a 1M-row data.binance.vision aggTrades file (real rows, repeated)."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.harness import Row
from ingest.files import load_bytes

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "BTCUSD_PERP-aggTrades-2026-05-08.csv"


def bench_load_1m_rows(quick: bool) -> list[Row]:
    if not DATA.exists():
        return []
    head, body = DATA.read_bytes().split(b"\n", 1)
    n_target = 200_000 if quick else 1_000_000
    reps = -(-n_target // body.count(b"\n"))
    data = head + b"\n" + body * reps
    rows = body.count(b"\n") * reps
    t0 = time.perf_counter()
    loaded = load_bytes("BTCUSD_PERP-aggTrades.csv", data)
    dt = time.perf_counter() - t0
    return [Row(f"load aggTrades CSV {rows:,} rows ({len(data) / 1e6:.0f} MB)", dt, "-", None,
                f"{rows / dt / 1e3:.0f}k rows/s; {loaded.report.dropped_duplicates:,} repeated ids dropped")]


SUITE = [bench_load_1m_rows]
