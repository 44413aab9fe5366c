"""Ingestion throughput and latency: real frames through parse -> sequencer -> buffer -> SQLite.

A minimal WebSocket server runs in a **separate process** (so it does not share
the GIL with the client) and writes pre-encoded ``aggTrade`` frames — built from
the real recordings in ``../shared/data/binance`` when present — as fast as the
socket takes them (with ``TCP_NODELAY``, as real servers and asyncio set:
without it, small paced writes wait for the client's 40 ms delayed ACK — that
artefact, not the client, was most of this benchmark's earlier 7–9 ms p99).
We time the client pipeline until every tick is in memory, then read the
receive-to-buffer latency the sequencer recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing as mp
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import Row
from ingest import binance
from ingest.binance import BinanceSource
from storage.store import TickStore

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "usdm_BTCUSDT_trades_20240808T235416Z_20240808T235959Z.ws.jsonl"


def _frames(n: int) -> list[bytes]:
    base = []
    if DATA.exists():
        for line in DATA.read_text().splitlines():
            d = json.loads(line)["data"]
            base.append(d)
    else:  # synthetic fallback keeps the benchmark runnable anywhere
        base = [{"E": 1, "T": 1, "s": "BTCUSDT", "t": i, "p": "60000.1", "q": "0.01", "m": False} for i in range(1000)]
    out = []
    for i in range(n):
        d = base[i % len(base)]
        a = 1_000_000 + i
        msg = {"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": d["E"], "s": "BTCUSDT", "a": a, "p": d["p"], "q": d["q"], "nq": d["q"], "f": a, "l": a, "T": d["T"], "m": d["m"]}}
        out.append(json.dumps(msg, separators=(",", ":")).encode())
    return out


def _encode(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    return bytes([0x81, 126]) + n.to_bytes(2, "big") + payload


def _serve(port_q: mp.Queue, n: int, rate: float | None = None, nodelay: bool = True) -> None:
    encoded = [_encode(f) for f in _frames(n)]
    blob = b"".join(encoded)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port_q.put(srv.getsockname()[1])
    conn, _ = srv.accept()
    if nodelay:  # like asyncio/`websockets`; nodelay=False plays a server that runs Nagle
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b""
    while b"\r\n\r\n" not in req:
        req += conn.recv(4096)
    key = next(line.split(b":", 1)[1].strip() for line in req.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key"))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    if rate is None:
        conn.sendall(blob)
    else:  # paced: bursts of 10 frames at ``rate`` frames/s; frame i is due at t0 + i/rate
        t0 = time.perf_counter()
        port_q.put(time.time() - (time.perf_counter() - t0))
        for i in range(0, n, 10):
            conn.sendall(b"".join(encoded[i : i + 10]))
            ahead = t0 + (i + 10) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    time.sleep(30)
    conn.close()


def _run(n: int, rate: float | None, nodelay: bool = True) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Returns (seconds to buffer, seconds to SQLite, receive->buffer ms, send->receive ms)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(q, n, rate, nodelay), daemon=True)
    proc.start()
    port = q.get(timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        store = TickStore(Path(tmp) / "b.sqlite")
        store.start(warm_start=False)
        src = BinanceSource(store, ("BTCUSDT",), f"ws://127.0.0.1:{port}/market", None, stale_after_s=60)
        t0 = time.perf_counter()
        src.start()
        last = 1_000_000 + n - 1
        while store.last_agg_id("BTCUSDT") != last and time.perf_counter() - t0 < 120:
            time.sleep(0.002)
        dt = time.perf_counter() - t0
        lat = np.array(src.sequencer.delivery_latency_ms)
        store.writer.flush_now(timeout=120)
        persisted = time.perf_counter() - t0
        src.stop()
        wire = np.empty(0)
        if rate is not None:
            sent0 = q.get(timeout=10) * 1000.0
            rows = np.array(store.reader.query("SELECT agg_id, recv_time FROM ticks ORDER BY agg_id"))
            due = sent0 + (rows[:, 0] - 1_000_000) // 10 * 10 / rate * 1000.0
            wire = rows[:, 1] - due
        store.close()
    proc.terminate()
    return dt, persisted, lat, wire


def bench_ingest_pipeline(quick: bool) -> list[Row]:
    n = 50_000 if quick else 300_000
    dt, persisted, _, _ = _run(n, None)
    m, rate = (10_000, 5000.0) if quick else (50_000, 5000.0)
    _, _, lat, wire = _run(m, rate)
    return [
        Row(f"ingest {n:,} frames flat out: parse->buffer", dt, "-", None, f"{n / dt / 1e3:.0f}k frames/s on one connection"),
        Row(f"ingest {n:,} frames: ... -> SQLite committed", persisted, "-", None, f"{n / persisted / 1e3:.0f}k frames/s end to end"),
        Row(f"ingest at {rate:,.0f} frames/s (Binance peak)", m / rate, "-", None,
            f"receive->buffer p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms;"
            f" server write->receive p99 {np.percentile(wire, 99):.2f} ms"),
    ]


def bench_nagle_server(quick: bool) -> list[Row]:
    """A server that runs Nagle's algorithm: our TCP_QUICKACK vs the stock delayed ACK."""
    m, rate = (10_000, 5000.0) if quick else (20_000, 5000.0)
    _, _, _, ours = _run(m, rate, nodelay=False)
    saved = binance._TCP_QUICKACK
    binance._TCP_QUICKACK = None
    try:
        _, _, _, stock = _run(m, rate, nodelay=False)
    finally:
        binance._TCP_QUICKACK = saved
    p99, alt = np.percentile(ours, 99) / 1e3, np.percentile(stock, 99) / 1e3
    return [Row(f"Nagle server at {rate:,.0f} frames/s: write->receive p99", p99, "no TCP_QUICKACK (delayed ACK)", alt,
                f"max {ours.max():.1f} ms vs {stock.max():.1f} ms")]


def bench_replay_pace(quick: bool) -> list[Row]:
    """Wall time of a replay of real ETH trades at 10× / 100× / as fast as possible, vs the data span / speed."""
    import pandas as pd

    from ingest.replay import ReplaySource, frames_to_ticks
    from tests.recordings import trades_array

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"
    arr = trades_array(data, "ETHUSDT")
    rows = []
    for speed, span_s in ((10.0, 10.0), (100.0, 60.0), (None, 300.0)):
        cut = arr[arr["trade_time"] < arr["trade_time"][0] + span_s * 1000]
        frame = pd.DataFrame({k: cut[k] for k in ("trade_time", "price", "qty", "is_buyer_maker", "agg_id")})
        with tempfile.TemporaryDirectory() as tmp:
            store = TickStore(Path(tmp) / "r.sqlite")
            src = ReplaySource(store, frames_to_ticks({"ETHUSDT": frame})[0], speed=speed)
            t0 = time.monotonic()
            src.start()
            while not src.done():
                time.sleep(0.005)
            elapsed = time.monotonic() - t0
            src.stop()
            store.close()
        label = "as fast as possible" if speed is None else f"{speed:g}×"
        target = None if speed is None else span_s / speed
        rows.append(Row(f"replay {span_s:g} s of ETH trades ({len(cut):,}) at {label}", elapsed,
                        "data span / speed" if target else "-", target, "ratio ≈ 1 means on pace" if target else ""))
    return rows


SUITE = [bench_ingest_pipeline, bench_nagle_server, bench_replay_pace]
