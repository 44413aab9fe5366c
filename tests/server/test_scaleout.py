"""Scale-out end to end: a recorder service and two dashboards on one PostgreSQL, the alert leader killed.

``python -m ingest`` records BTCUSDT from the loopback exchange (real recorded trades); two
``streamlit run app.py`` servers with ingestion off follow the database. A stored rule
(BTCUSDT 1s close crosses above a level the recording crosses many times) is evaluated by
both engines, recorded only by the leader. The leader is SIGKILLed mid-stream; the other
takes over. Every crossing after the first alert is recorded exactly once — none twice,
none missed across the handover — checked against the stored ticks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import psycopg
import pytest

from alerts import AlertEngine, AlertRule
from storage.bars import resample_ticks
from storage.store import TickStore
from tests.conftest import ROOT
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames
from tests.serving import serve_app

pytestmark = pytest.mark.timeout(400)


def _health(url: str) -> dict:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:  # 503 still carries the body
        return json.loads(exc.read())
    except OSError:
        return {}


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _events(url: str) -> list[tuple]:
    try:
        with psycopg.connect(url, connect_timeout=5) as c:
            return c.execute("SELECT rule_id, bar_time, fired_at, value FROM alert_events ORDER BY bar_time").fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def _busiest_level(frames: list[dict]) -> float:
    """The price level the recording's 1 s closes cross upwards most often (between two ticks' prices,
    so a close never equals it)."""
    d = [f["data"] for f in frames]
    bars = resample_ticks(np.array([x["T"] for x in d]), np.array([float(x["p"]) for x in d]), np.array([float(x["q"]) for x in d]),
                          np.array([x["m"] for x in d]), 1000)
    c = bars["close"].to_numpy()
    levels = np.unique(np.round(c, 1)) + 0.05
    counts = [int(((c[:-1] <= lv) & (c[1:] > lv)).sum()) for lv in levels]
    return float(levels[int(np.argmax(counts))])


def test_two_dashboards_record_each_alert_once_across_a_leader_kill(pg_url, data_dir, tmp_path):
    frames = {"BTCUSDT": aggtrade_frames(data_dir, "BTCUSDT")}
    level = _busiest_level(frames["BTCUSDT"])
    fake = FakeBinance(frames, rate=400, rebase_time=True)
    fake.paused.set()  # the market opens once everything is up
    fake.start()

    setup = TickStore(tmp_path / "setup.sqlite", database_url=pg_url)
    setup.start()
    rule = AlertEngine(setup).rules.save(AlertRule(name="btc crosses the median", metric="price", comparison="crosses_above",
                                                   threshold=level, symbol="BTCUSDT", timeframe="1s", window=3, cooldown_s=0))
    setup.close()

    common = {"ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url, "ALPHASTREAM_DATABASE_URL": pg_url,
              "ALPHASTREAM_SYMBOLS": "btcusdt", "ALPHASTREAM_SEED_HISTORY": "false", "ALPHASTREAM_FLUSH_INTERVAL_MS": "100"}
    dash_env = {**common, "ALPHASTREAM_INGEST_ENABLED": "false"}
    log = (tmp_path / "recorder.log").open("w")
    recorder = subprocess.Popen([sys.executable, "-m", "ingest", "--status-every", "1"], cwd=ROOT,
                                env={**os.environ, **common, "ALPHASTREAM_DB_PATH": str(tmp_path / "r.sqlite")},
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        with serve_app({**dash_env, "ALPHASTREAM_DB_PATH": str(tmp_path / "a.sqlite")}, tmp_path / "a.log") as a, \
             serve_app({**dash_env, "ALPHASTREAM_DB_PATH": str(tmp_path / "b.sqlite")}, tmp_path / "b.log") as b:
            _wait(lambda: sum(bool(_health(d.url).get("role", {}).get("alert_leader")) for d in (a, b)) == 1, 60, "one alert leader")
            leader, other = (a, b) if _health(a.url)["role"]["alert_leader"] else (b, a)
            fake.paused.clear()
            _wait(lambda: len(_events(pg_url)) >= 2, 120, "alerts recorded by the leader")
            health = _health(other.url)
            assert health["role"]["follows"] == ["BTCUSDT"] and health["symbols"]["BTCUSDT"]["state"] in ("live", "stale")
            leader.proc.send_signal(signal.SIGKILL)  # mid-stream, with alerts still to come
            killed_at = time.time()
            leader.proc.wait(10)
            _wait(lambda: _health(other.url).get("role", {}).get("alert_leader"), 30, "the other dashboard to lead")
            _wait(lambda: fake.done(["BTCUSDT"]), 180, "the exchange to send every trade")
            n = len(frames["BTCUSDT"])
            with psycopg.connect(pg_url) as c:
                _wait(lambda: c.execute("SELECT count(*) FROM ticks").fetchone()[0] == n, 60, "every trade stored")
            time.sleep(4)  # the last closed bars reach the engine
            with psycopg.connect(pg_url) as c:
                rows = c.execute("SELECT trade_time, price, qty, is_buyer_maker FROM ticks ORDER BY trade_time, agg_id").fetchall()
            events = _events(pg_url)
            other_log = other.log()
    finally:
        recorder.send_signal(signal.SIGTERM)
        recorder.wait(30)
        log.close()
        fake.stop()
    tt = np.array([r[0] for r in rows], dtype=np.int64)
    bars = resample_ticks(tt, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), np.array([r[3] for r in rows], dtype=bool), 1000)
    bars = bars[bars["closed"]]
    close, times = bars["close"].to_numpy(), bars.index.as_unit("ms").asi8
    crossings = times[1:][(close[:-1] <= level) & (close[1:] > level)]
    recorded = [int(e[1]) for e in events]
    assert all(e[0] == rule.id for e in events)
    assert len(recorded) == len(set(recorded)), "an alert was recorded twice"
    last_bar = int(times[-2])  # the newest closed bar may not have been evaluated yet when we stopped
    expected = [int(t) for t in crossings if recorded[0] <= t <= last_bar]
    got = [t for t in recorded if t <= last_bar]
    assert got == expected, f"recorded {len(got)} crossings, the ticks show {len(expected)}"
    assert len(expected) >= 5
    assert any(e[2] > killed_at for e in events), "nothing was recorded after the leader died"
    assert "Traceback" not in other_log
