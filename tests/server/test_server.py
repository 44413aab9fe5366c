"""The server records without a browser, serves ops and read endpoints, and shuts down without losing ticks."""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from alerts import AlertEngine, AlertRule
from storage.store import TickStore
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames
from tests.serving import serve_app

pytestmark = pytest.mark.timeout(300)


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")


def _count(db, sql: str) -> int:
    with sqlite3.connect(db) as c:
        return int(c.execute(sql).fetchone()[0])


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_restarted_server_records_and_alerts_with_no_browser_open(tmp_path, data_dir):
    db = tmp_path / "live.sqlite"
    store = TickStore(db)
    store.start()
    engine = AlertEngine(store)
    engine.rules.save(AlertRule(name="btc trades", metric="price", comparison=">", threshold=0.0, symbol="BTCUSDT",
                                timeframe="1s", window=3, cooldown_s=0))
    assert store.writer.flush_now()
    engine.stop()
    store.close()
    frames = {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT", "ETHUSDT")}
    with FakeBinance(frames, rate=1500, rebase_time=True) as fake:
        env = {"ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url, "ALPHASTREAM_DB_PATH": str(db),
               "ALPHASTREAM_STALE_AFTER_S": "4"}
        with serve_app(env, tmp_path / "server.log") as srv:
            # nobody opens the page: the lifespan started ingestion and the alert engine
            _wait(lambda: _count(db, "SELECT COUNT(*) FROM ticks") > 500, 60, "ticks in SQLite")
            _wait(lambda: _count(db, "SELECT COUNT(*) FROM alert_events") >= 1, 60, "a fired alert")
            status, body, _ = _get(srv.url + "/healthz")
            health = json.loads(body)
            assert status == 200 and health["status"] == "ok", health
            assert health["symbols"]["BTCUSDT"]["state"] == "live" and health["writer"]["state"] == "ok"
            status, body, ctype = _get(srv.url + "/metrics")
            text = body.decode()
            assert status == 200 and ctype.startswith("text/plain")
            frames_btc = next(float(line.split()[-1]) for line in text.splitlines() if line.startswith('alphastream_frames_total{symbol="BTCUSDT"}'))
            assert frames_btc > 0 and "# TYPE alphastream_writer_lag_seconds gauge" in text
            assert "alphastream_alert_events_total 1.0" in text or "alphastream_alert_events_total" in text

            # read API: JSON and CSV are the same rows
            status, body, _ = _get(srv.url + "/api/v1/bars?symbol=BTCUSDT&timeframe=1s")
            bars = json.loads(body)
            assert status == 200 and bars["rows"] > 5 and set(bars["columns"]) >= {"open", "close", "volume", "trades"}
            status, body, ctype = _get(srv.url + "/api/v1/bars?symbol=BTCUSDT&timeframe=1s&format=csv&end=" + urllib.parse.quote(bars["time"][4]))
            rows = list(csv.DictReader(io.StringIO(body.decode())))
            assert ctype.startswith("text/csv") and len(rows) == 4
            assert [float(r["close"]) for r in rows] == bars["columns"]["close"][:4]
            assert rows[0]["timestamp"] == bars["time"][0]
            status, body, _ = _get(srv.url + "/api/v1/pair?y=ETHUSDT&x=BTCUSDT&timeframe=1s&window=20")
            pair = json.loads(body)
            assert status == 200 and pair["diagnostics"]["verdict"] in ("not enough data", "no evidence", "cointegrated at 5 %")
            assert set(pair["columns"]) >= {"beta", "spread", "zscore", "signal"}
            research = pair["research"]  # OU fit, Bertram bands and the CUSUM test of the same window
            if pair["rows"] >= 50:
                assert research["bars"] == min(pair["rows"], 2000)
                assert set(research["cusum"]) >= {"statistic", "broke", "verdict"} and "half_life_s" in research["ou"]
            else:
                assert research == {"note": f"needs at least 50 bars, has {pair['rows']}"}
            status, body, _ = _get(srv.url + "/api/v1/scan?timeframe=1s&formation_bars=100")
            scan = json.loads(body)
            assert status == 200 and len(scan["pairs"]) == 1 and {scan["pairs"][0]["y"], scan["pairs"][0]["x"]} == {"ETHUSDT", "BTCUSDT"}
            for bad, code in (("/api/v1/bars?symbol=XRPUSDT&timeframe=1m", 404), ("/api/v1/bars?symbol=BTCUSDT&timeframe=7m", 400),
                              ("/api/v1/pair?y=ETHUSDT&x=ETHUSDT", 400), ("/api/v1/pair?y=ETHUSDT&x=BTCUSDT&window=abc", 400),
                              ("/api/v1/bars?symbol=BTCUSDT&timeframe=1m&start=yesterday", 400)):
                status, body, _ = _get(srv.url + bad)
                assert status == code and "error" in json.loads(body), (bad, status, body)

            # the exchange goes silent: health turns 503 and says why
            fake.paused.set()
            _wait(lambda: _get(srv.url + "/healthz")[0] == 503, 30, "a 503 health check")
            assert any("feed" in p for p in json.loads(_get(srv.url + "/healthz")[1])["problems"])
            fake.paused.clear()
            _wait(lambda: fake.done(), 120, "the exchange to send every recorded trade")
            _wait(lambda: _count(db, "SELECT COUNT(*) FROM ticks") >= fake.sent, 60, "every sent trade in SQLite")
            srv.proc.send_signal(signal.SIGTERM)  # a clean shutdown: sockets closed, the writer flushed
            assert srv.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
            assert "runtime stopped: ingestion closed, storage flushed" in srv.log()
    sent = sum(len(f) for f in frames.values())
    assert _count(db, "SELECT COUNT(*) FROM ticks") == sent
    assert _count(db, "SELECT COUNT(DISTINCT symbol || '/' || agg_id) FROM ticks") == sent
