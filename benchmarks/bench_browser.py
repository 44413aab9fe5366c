"""Tick-to-screen in Chromium with 1, 10 and 20 open sessions, before and after the push channel.

``python -m benchmarks.bench_browser [--sessions 1,10,20] [--modes before,after] [--seconds 20]``

Each run starts the real server (``streamlit run app.py``) against a loopback Binance replaying the
shared recordings at their own pace, opens N browser sessions (separate Chromium contexts; the first
views ETH/BTC 1 s, the others a mix of that pair, the swapped pair, 1m and tick views) and, after the
z-score has warmed up, measures for ``--seconds``:

* **tick-to-screen** in the first session: for every aggregate id the exchange sent, the time until
  that page first shows the id or a newer one (stamped in the page, ``tests/browser.py``);
* **server-side** latency: the same for a plain WebSocket client of ``/live`` in this process (what
  the server adds, without a browser's main thread);
* **server CPU**: user+system seconds of the server process and its writer child per wall second,
  minus the same figure with no session open, divided by N;
* **long-task share**: the first page's main-thread time in tasks > 50 ms (Performance API).

Modes: ``before`` = the pre-push build's behaviour (every live figure re-rendered by a Streamlit
fragment rerun, Streamlit's ``gc.collect(2)`` after every run: ``ALPHASTREAM_PUSH_ENABLED=false``,
``STREAMLIT_RUNNER_POST_SCRIPT_GC=true``); ``after`` = the defaults (``/live`` push, no per-run GC).
Exchange, server and browsers share this machine's cores, so at 10–20 sessions the browsers' own
rendering competes with the server; the server-side column separates the two.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from tests.browser import launch, long_task_share, percentiles_ms, shown_ids, stamp_ticks, tick_latencies
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames
from tests.serving import serve_app

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"
VIEWS = ("sym_y=ETHUSDT&sym_x=BTCUSDT&timeframe=1s", "sym_y=BTCUSDT&sym_x=ETHUSDT&timeframe=1s",
         "sym_y=ETHUSDT&sym_x=BTCUSDT&timeframe=1m", "sym_y=ETHUSDT&sym_x=BTCUSDT&timeframe=tick")
MODES = {
    "before": {"ALPHASTREAM_PUSH_ENABLED": "false", "STREAMLIT_RUNNER_POST_SCRIPT_GC": "true"},
    "after": {},
}


def _cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of ``pid`` and its live children (the writer process)."""
    total = 0.0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks (USER_HZ = 100)
        except (OSError, IndexError, ValueError):
            pass
    return total


def _cpu_share(pid: int, seconds: float) -> float:
    c0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def _server_side(port: int, url: str, fake: FakeBinance, seconds: float, out: dict) -> None:
    """Latency until a plain /live client receives each tick (seconds, sorted) into ``out['server']``."""
    from websockets.sync.client import connect

    recs: list[tuple[float, dict[str, int]]] = []
    with connect(f"ws://127.0.0.1:{port}/live", additional_headers={"Origin": url}) as ws:
        ws.send(json.dumps({"subscribe": {"y": "ETHUSDT", "x": "BTCUSDT", "timeframe": "1s", "params": {"window": "20"}}}))
        t_start = time.time() + 1
        t_end = time.time() + seconds
        while time.time() < t_end:
            msg = json.loads(ws.recv(timeout=10))
            if msg.get("ticks"):
                recs.append((time.time(), {s: v["id"] for s, v in msg["ticks"].items() if v["id"] is not None}))
    out["server"] = tick_latencies(recs, fake, t_start) if recs else []


def run_one(mode: str, sessions: int, seconds: float, warm_s: float, tmp: Path) -> dict:
    from playwright.sync_api import sync_playwright

    frames = {s: aggtrade_frames(DATA, s) for s in ("BTCUSDT", "ETHUSDT")}
    fake = FakeBinance(frames, rate="real")
    fake.start()
    db = tmp / f"{mode}_{sessions}.sqlite"
    env = {"ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url, "ALPHASTREAM_DB_PATH": str(db), **MODES[mode]}
    try:
        with serve_app(env, db.with_suffix(".log")) as srv, sync_playwright() as pw:
            idle_cpu = _cpu_share(srv.proc.pid, 8)
            browser = launch(pw)
            pages = []
            for i in range(sessions):
                page = browser.new_context(viewport={"width": 1600, "height": 2000}).new_page()
                page.goto(f"{srv.url}/?window=20&{VIEWS[i % len(VIEWS)]}", timeout=180_000)  # 20 Chromiums on 2 cores load slowly
                pages.append(page)
            for page in pages:
                page.get_by_text("LIVE", exact=True).first.wait_for(timeout=180_000)
            time.sleep(warm_s)  # the z-score warms up (41 one-second bars) and every session is live
            watched = stamp_ticks(pages[0])
            t_start = time.time() + 1
            side: dict = {}
            probe = threading.Thread(target=_server_side, args=(srv.port, srv.url, fake, seconds, side))
            probe.start()
            cpu_box: dict = {}
            cpu = threading.Thread(target=lambda: cpu_box.update(share=_cpu_share(srv.proc.pid, seconds)))
            cpu.start()
            busy, longest = long_task_share(pages[0], seconds)
            probe.join()
            cpu.join()
            lat = tick_latencies(shown_ids(pages[0]), fake, t_start)
            browser.close()
    finally:
        fake.stop()
    p50, p95, p99 = percentiles_ms(lat)
    s50, s95, s99 = percentiles_ms(side["server"]) if side.get("server") else (np.nan,) * 3
    return {"mode": mode, "sessions": sessions, "watched": watched, "ticks": len(lat), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "server_p50_ms": s50, "server_p95_ms": s95, "server_p99_ms": s99, "server_cpu_idle": idle_cpu,
            "server_cpu": cpu_box["share"], "cpu_per_session": (cpu_box["share"] - idle_cpu) / sessions,
            "long_task_share": busy, "longest_task_ms": longest}


def render(rows: list[dict]) -> str:
    head = ("| mode | sessions | tick-to-screen p50 / p95 / p99 (ms) | server-side p50 / p95 / p99 (ms) | server CPU | "
            "CPU per session | page long-task share (max) |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['sessions']} | {r['p50_ms']:.0f} / {r['p95_ms']:.0f} / {r['p99_ms']:.0f} | "
                     f"{r['server_p50_ms']:.0f} / {r['server_p95_ms']:.0f} / {r['server_p99_ms']:.0f} | "
                     f"{r['server_cpu'] * 100:.0f} % (idle {r['server_cpu_idle'] * 100:.0f} %) | {r['cpu_per_session'] * 100:.1f} % | "
                     f"{r['long_task_share'] * 100:.1f} % ({r['longest_task_ms']:.0f} ms) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,10,20")
    parser.add_argument("--modes", default="before,after")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warm", type=float, default=45.0, help="seconds between opening the sessions and measuring")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            for n in (int(s) for s in args.sessions.split(",")):
                print(f"running {mode} with {n} session(s) ...", file=sys.stderr, flush=True)
                rows.append(run_one(mode, n, args.seconds, args.warm, Path(tmp)))
                print(render(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(render(rows))
    if args.json:
        args.json.write_text(pd.DataFrame(rows).to_json(orient="records", indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
