"""Recorder shards on a real PostgreSQL, through the loopback exchange serving the real recordings.

Chaos: two shards (BTCUSDT / ETHUSDT) and a hot standby for both, all ``python -m ingest``
processes. The BTCUSDT shard is SIGKILLed mid-stream and restarted; PostgreSQL itself is
restarted mid-stream. At the end every aggregate id the exchange produced is in the
database exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from tests.conftest import ROOT
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames
from tests.storage.test_postgres import _pg_restart

pytestmark = pytest.mark.timeout(300)
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _ids(url: str) -> dict[str, list[int]]:
    """Stored ids per symbol (none while the first recorder has not created the tables yet)."""
    try:
        with psycopg.connect(url, connect_timeout=5) as c:
            rows = c.execute("SELECT symbol, agg_id FROM ticks ORDER BY symbol, agg_id").fetchall()
    except psycopg.errors.UndefinedTable:
        rows = []
    out: dict[str, list[int]] = {s: [] for s in SYMBOLS}
    for s, a in rows:
        out[s].append(a)
    return out


def _count(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as c:
            return int(c.execute("SELECT count(*) FROM ticks").fetchone()[0])
    except psycopg.Error:
        return -1


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_shards_standby_sigkill_and_a_database_restart_store_every_id_once(pg_url, data_dir, tmp_path):
    frames = {s: aggtrade_frames(data_dir, s)[:9000] for s in SYMBOLS}
    fake = FakeBinance(frames, rate=400, rebase_time=True)
    fake.start()
    base = {**os.environ, "ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url,
            "ALPHASTREAM_DATABASE_URL": pg_url, "ALPHASTREAM_SEED_HISTORY": "false", "ALPHASTREAM_FLUSH_INTERVAL_MS": "100",
            "ALPHASTREAM_DB_PATH": str(tmp_path / "unused.sqlite")}
    logs: list[tuple[str, object]] = []

    def recorder(name: str, symbols: str) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("a")
        logs.append((name, log))
        return subprocess.Popen([sys.executable, "-m", "ingest", "--status-every", "1"], cwd=ROOT, env={**base, "ALPHASTREAM_SYMBOLS": symbols},
                                stdout=log, stderr=subprocess.STDOUT)

    def log_of(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text(errors="replace")

    procs = {}
    try:
        procs["btc"] = recorder("btc", "btcusdt")
        procs["eth"] = recorder("eth", "ethusdt")
        _wait(lambda: all(ids for ids in _ids(pg_url).values()), 60, "both shards to store trades")
        procs["standby"] = recorder("standby", "btcusdt,ethusdt")
        _wait(lambda: "standby for BTCUSDT,ETHUSDT" in log_of("standby"), 30, "the standby to wait")
        before = len(_ids(pg_url)["BTCUSDT"])

        procs["btc"].send_signal(signal.SIGKILL)  # mid-stream: whatever it had not committed is lost with it
        procs["btc"].wait(10)
        _wait(lambda: "recording BTCUSDT" in log_of("standby"), 30, "the standby to take BTCUSDT over")
        _wait(lambda: len(_ids(pg_url)["BTCUSDT"]) > before + 200, 60, "BTCUSDT to move on after the takeover")
        procs["btc"] = recorder("btc-again", "btcusdt")  # the restarted shard is now the standby
        _wait(lambda: "standby for BTCUSDT" in log_of("btc-again"), 30, "the restarted shard to stand by")

        _pg_restart()  # the database goes away and comes back mid-stream
        _wait(lambda: fake.done(list(SYMBOLS)), 180, "the exchange to send every recorded trade")
        expected = {s: sorted(f["data"]["a"] for f in fr) for s, fr in frames.items()}
        _wait(lambda: _count(pg_url) == sum(len(v) for v in expected.values()), 90, "every trade to be stored")
        stored = _ids(pg_url)
        for s in SYMBOLS:
            assert stored[s] == expected[s], s  # all of them, each once (a missing or repeated id fails here)
        with psycopg.connect(pg_url) as c:
            rows = dict(c.execute("SELECT symbol, rows FROM symbol_state").fetchall())
        assert rows == {s: len(expected[s]) for s in SYMBOLS}  # the row counts agree with the table
        assert "reconnected after an outage" in log_of("eth") + log_of("standby") + log_of("btc-again")
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for name, p in procs.items():
            if name != "btc" or p.poll() is None:
                assert p.wait(30) == 0, f"{name} did not stop cleanly:\n{log_of(name)[-2000:]}"
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for _, log in logs:
            log.close()
        fake.stop()
