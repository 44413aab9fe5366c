"""The Binance source end to end against a loopback Binance serving real recorded trades."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import numpy as np
import pytest

from ingest.binance import BinanceSource
from storage.store import TickStore
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames

pytestmark = pytest.mark.timeout(120)


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="module")
def frames(data_dir):
    return {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT", "ETHUSDT")}


def _ids(frames, symbol):
    return np.array([f["data"]["a"] for f in frames[symbol]])


def _source(store, fake, symbols=("BTCUSDT", "ETHUSDT"), **kw) -> BinanceSource:
    kw.setdefault("backoff_initial_s", 0.05)
    kw.setdefault("backoff_max_s", 0.2)
    return BinanceSource(store, symbols, fake.ws_url, fake.rest_url, **kw)


def _complete(store, frames, symbols=("BTCUSDT", "ETHUSDT")) -> bool:
    return all(store.last_agg_id(s) == frames[s][-1]["data"]["a"] for s in symbols)


def _assert_exact(store, frames, symbols=("BTCUSDT", "ETHUSDT")) -> None:
    store.writer.flush_now()
    conn = sqlite3.connect(store.db_path)
    for s in symbols:
        expected = _ids(frames, s)
        mem = store.buffer.snapshot(s)["agg_id"]
        assert np.array_equal(mem, expected), f"{s}: memory ids differ from the source"
        rows = conn.execute("SELECT agg_id, price FROM ticks WHERE symbol = ? ORDER BY agg_id", (s,)).fetchall()
        assert [r[0] for r in rows] == expected.tolist(), f"{s}: SQLite ids differ from the source"
        prices = {f["data"]["a"]: float(f["data"]["p"]) for f in frames[s]}
        assert all(prices[a] == p for a, p in rows[:: max(1, len(rows) // 500)])
    conn.close()


def test_normal_stream_stores_every_tick_once_in_order(tmp_path, frames):
    with FakeBinance(frames) as fake:
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake)
        src.start()
        wait_until(lambda: _complete(store, frames), 60, "all ticks")
        assert src.health.state == "live"
        src.stop()
        store.close()
        _assert_exact(store, frames)
        assert src.health.symbols["BTCUSDT"].gaps_detected == 0
        assert src.health.malformed == 0


def test_server_pings_are_answered_while_streaming_and_while_idle(tmp_path, frames):
    """The server pings every 50 ms and drops the client if a pong is 1 s late:
    pings interleaved with trade frames (and on an idle socket) must go through
    websocket-client's reader, which pongs, without losing the frames around them."""
    with FakeBinance(frames, ping_interval_s=0.05) as fake:
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake)
        src.start()
        wait_until(lambda: _complete(store, frames), 60, "all ticks")
        time.sleep(1.5)  # idle: only pings now
        assert fake.connections == 1 and src.health.reconnects == 0, src.health.message
        assert src.health.state == "live"
        src.stop()
        store.close()
        _assert_exact(store, frames)


def test_dropped_connections_are_reconnected_and_backfilled(tmp_path, frames):
    with FakeBinance(frames) as fake:
        fake.drop_after = [3000, 2500, 4000, 1000]
        fake.lost_on_drop = 150  # trades the client never sees on the socket
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake)
        src.start()
        wait_until(lambda: _complete(store, frames), 60, "all ticks after drops")
        src.stop()
        store.close()
        assert src.health.reconnects >= 4
        assert sum(h.gaps_filled for h in src.health.symbols.values()) >= 4
        assert sum(h.ticks_backfilled for h in src.health.symbols.values()) >= 4 * 150
        _assert_exact(store, frames)


def test_silent_connection_triggers_watchdog_reconnect(tmp_path, frames):
    with FakeBinance(frames) as fake:
        fake.stall_after = 800
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake, stale_after_s=1.0)
        src.start()
        wait_until(lambda: _complete(store, frames), 60, "all ticks after a stall")
        src.stop()
        store.close()
        assert fake.connections >= 2 and src.health.reconnects >= 1
        _assert_exact(store, frames)


def test_dropped_frames_are_filled_from_rest_and_ids_match_exactly(tmp_path, frames):
    rng = np.random.default_rng(1)
    with FakeBinance(frames) as fake:
        fake.skip_ids = set(rng.choice(_ids(frames, "BTCUSDT")[1:-1], 40, replace=False).tolist()) | set(
            rng.choice(_ids(frames, "ETHUSDT")[1:-1], 25, replace=False).tolist()
        )
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake)
        src.start()
        wait_until(lambda: _complete(store, frames), 60, "all ticks with gaps")
        src.stop()
        store.close()
        gaps = sum(h.gaps_detected for h in src.health.symbols.values())
        assert 40 <= gaps <= 65  # adjacent skipped ids merge into one gap
        assert sum(h.gaps_unfillable for h in src.health.symbols.values()) == 0
        _assert_exact(store, frames)
        assert all(g.status == "filled" for g in store.status().gaps)


def test_malformed_frames_are_counted_and_never_stop_the_stream(tmp_path, frames):
    with FakeBinance(frames) as fake:
        fake.malformed_every = 1000
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake)
        src.start()
        wait_until(lambda: _complete(store, frames), 60, "all ticks with malformed frames")
        src.stop()
        store.close()
        assert src.health.malformed >= 60
        assert src.health.last_malformed
        _assert_exact(store, frames)


def test_rest_429_retry_after_is_obeyed(tmp_path, frames):
    with FakeBinance(frames) as fake:
        fake.skip_ids = {frames["BTCUSDT"][5000]["data"]["a"]}
        fake.rest_retry_after = 1.5
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake, symbols=("BTCUSDT",))
        src.start()
        wait_until(lambda: _complete(store, frames, ("BTCUSDT",)), 60, "backfill after 429")
        src.stop()
        store.close()
        assert fake.rest_429_at is not None and fake.rest_after_429_at is not None
        assert fake.rest_after_429_at - fake.rest_429_at >= 1.5
        assert src.rest is not None and src.rest.rate_limit_waits == 1
        _assert_exact(store, frames, ("BTCUSDT",))


def test_http_451_is_a_blocked_state_not_a_retry_storm(tmp_path, frames):
    with FakeBinance(frames) as fake:
        fake.reject_status = 451
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake)
        src.start()
        wait_until(lambda: src.health.state == "blocked", 10, "blocked state")
        time.sleep(2.0)
        assert fake.handshakes_rejected == 1
        assert "451" in src.health.message and "location" in src.health.message
        src.stop()
        store.close()


def test_subscribe_new_symbol_at_runtime(tmp_path, frames):
    with FakeBinance(frames, rate=4000) as fake:
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake, symbols=("BTCUSDT",))
        src.start()
        wait_until(lambda: (store.last_agg_id("BTCUSDT") or 0) > 0, 20, "first BTC ticks")
        src.set_symbols(["BTCUSDT", "ETHUSDT"])
        wait_until(lambda: _complete(store, frames), 60, "both symbols")
        src.stop()
        store.close()
        subs = [m for m in fake.subscriptions if m.get("method") == "SUBSCRIBE"]
        assert subs and subs[0]["params"] == ["ethusdt@aggTrade"] and isinstance(subs[0]["id"], int)
        assert fake.connections == 1  # no reconnect needed
        assert len(store.buffer.snapshot("ETHUSDT")) > 1000


def test_restart_resumes_from_database_and_backfills_downtime(tmp_path, frames):
    db = tmp_path / "db.sqlite"
    with FakeBinance(frames, rate=3000) as fake:
        store = TickStore(db)
        store.start()
        src = _source(store, fake)
        src.start()
        wait_until(lambda: (store.last_agg_id("BTCUSDT") or 0) >= frames["BTCUSDT"][2000]["data"]["a"], 30, "first part")
        src.stop()
        store.close()
        stored_before = store.status().rows_stored
        # downtime: the exchange trades on without us
        for s in fake.cursor:
            fake.cursor[s] += 1500
        fake.rate = None
        store2 = TickStore(db, warm_start_hours=10**7)
        store2.start()
        src2 = _source(store2, fake)
        src2.start()
        wait_until(lambda: _complete(store2, frames), 60, "resume + backfill")
        src2.stop()
        store2.close()
        assert stored_before > 2000
        assert sum(h.ticks_backfilled for h in src2.health.symbols.values()) >= 1500
        _assert_exact(store2, frames)


def test_ids_older_than_rest_horizon_are_recorded_as_known_gaps(tmp_path, frames):
    btc = _ids(frames, "BTCUSDT")
    with FakeBinance(frames) as fake:
        fake.skip_ids = set(btc[1000:1100].tolist())
        fake.rest_min_id = {"BTCUSDT": int(btc[1050])}  # REST only has the later half of the hole
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = _source(store, fake, symbols=("BTCUSDT",))
        src.start()
        wait_until(lambda: _complete(store, frames, ("BTCUSDT",)), 60, "stream past the hole")
        src.stop()
        store.close()
        gaps = store.status().gaps
        unfillable = [g for g in gaps if g.status == "unfillable"]
        assert [(g.from_agg_id, g.to_agg_id) for g in unfillable] == [(int(btc[1000]), int(btc[1049]))]
        assert "48 h" in unfillable[0].note
        mem = store.buffer.snapshot("BTCUSDT")["agg_id"]
        assert np.array_equal(mem, np.concatenate([btc[:1000], btc[1050:]]))


def test_legacy_url_without_market_route_is_reported(tmp_path, frames):
    with FakeBinance(frames) as fake:
        store = TickStore(tmp_path / "db.sqlite")
        store.start()
        src = BinanceSource(store, ("BTCUSDT",), fake.ws_url.replace("/market", ""), fake.rest_url, stale_after_s=1.0, backoff_initial_s=5)
        src.start()
        wait_until(lambda: "market" in src.health.message and src.health.state in ("stale", "backoff"), 15, "silent-failure hint")
        src.stop()
        store.close()


def test_headless_recorder_flushes_and_exits_zero_on_sigint(tmp_path, frames):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    db = tmp_path / "recorder.sqlite"
    with FakeBinance(frames, rate=3000) as fake:
        env = dict(os.environ, ALPHASTREAM_WS_URL=fake.ws_url, ALPHASTREAM_REST_URL=fake.rest_url, ALPHASTREAM_DB_PATH=str(db),
                   ALPHASTREAM_SYMBOLS="btcusdt,ethusdt")
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "--status-every", "0.5"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: fake.sent > 5000, 60, "frames to flow")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        sent = fake.sent
    assert proc.returncode == 0, err[-2000:]
    assert "stopped:" in err
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT COUNT(*) FROM ticks").fetchone()[0]
    conn.close()
    assert 5000 <= stored <= sent  # everything received before the signal was flushed
