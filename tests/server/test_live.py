"""The push hub on its own: one topic per view, only the current topic reaches a connection, bounded work."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from types import SimpleNamespace

import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from analytics import PairParams
from pairs import LiveBars, Timeframe
from server import live
from storage.store import TickStore
from storage.ticks import TickBatch
from tests.recordings import trades_array
from tests.serving import free_port


@pytest.fixture
def rt(tmp_path, data_dir):
    store = TickStore(tmp_path / "l.sqlite", max_age_s=10**9)
    store.start(warm_start=False)
    arrays = {s: trades_array(data_dir, s) for s in ("ETHUSDT", "BTCUSDT")}
    for s, a in arrays.items():
        store.write(TickBatch(s, a))
    end = int(max(a["trade_time"][-1] for a in arrays.values())) + 500
    bars = LiveBars(store, lambda: ("ETHUSDT", "BTCUSDT"), clock=lambda: end)
    yield SimpleNamespace(store=store, bars=bars, settings=SimpleNamespace(stale_after_s=30.0), now_ms=lambda: end)
    store.close()


class _Client:
    """Opens real WebSocket connections to the loopback server."""

    def __init__(self, port: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/live"

    def websocket_connect(self, _path: str):
        return _Socket(self.url)


class _Socket:
    def __init__(self, url: str) -> None:
        self.cm = connect(url, open_timeout=10)

    def __enter__(self) -> _Socket:
        self.ws = self.cm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cm.__exit__(None, None, None)

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def receive_text(self) -> str:
        return self.ws.recv(timeout=30)


@contextlib.contextmanager
def _served(rt):
    """``/live`` on a real uvicorn server (loopback), with its own hub."""
    hub = live.LiveHub()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        hub.start(rt, asyncio.get_running_loop())
        yield
        hub.stop()

    old = live.hub
    live.hub = hub
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=live.live_routes(), lifespan=lifespan), host="127.0.0.1", port=port,
                                           log_level="warning", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield _Client(port), hub
    finally:
        server.should_exit = True
        thread.join(10)
        live.hub = old


def _sub(y: str, x: str, tf: str = "1s", **params: object) -> str:
    return json.dumps({"subscribe": {"y": y, "x": x, "timeframe": tf, "params": PairParams(**params).to_query()}})


def _until(ws, kind: str, n: int = 200) -> dict:
    for _ in range(n):
        msg = json.loads(ws.receive_text())
        if msg.get("type") == kind or (kind == "error" and "error" in msg):
            return msg
    raise AssertionError(f"no {kind} message")


def test_a_subscriber_gets_its_view_as_data_and_never_a_message_of_the_pair_it_left(rt):
    with _served(rt) as (client, hub), client.websocket_connect("/live") as ws:
        ws.send_text(_sub("ETHUSDT", "BTCUSDT", window=60))
        snap = _until(ws, "snapshot")
        keys = [t["key"] for t in snap["view"]["tiles"]]
        assert keys[:4] == ["price_y", "price_x", "z", "beta"] and len(snap["append"]["t"]) > 100
        assert snap["caption"].startswith("Newest tick on screen:") and "ETHUSDT #" in snap["caption"]
        first = snap["topic"]
        # swap the legs: from now on only the new topic's messages arrive, whatever was in flight
        ws.send_text(_sub("BTCUSDT", "ETHUSDT", window=60))
        snap2 = _until(ws, "snapshot")
        assert snap2["topic"] != first
        for _ in range(5):
            msg = json.loads(ws.receive_text())
            assert msg.get("topic") == snap2["topic"], msg.get("type")
        # a view still collecting: a snapshot with no rows (the page clears its chart) and a note in time
        ws.send_text(_sub("ETHUSDT", "BTCUSDT", tf="5m", window=100))
        collecting = _until(ws, "snapshot")
        assert collecting["append"]["t"] == [] and "head" not in collecting
        assert any("collecting 5m bars" in n["text"] and "more" in n["text"] for n in collecting["view"]["notes"])
        assert hub.topic_count() == 1


def test_a_flood_of_subscribe_messages_costs_no_thread_and_one_snapshot(rt):
    with _served(rt) as (client, hub), client.websocket_connect("/live") as ws:
        before = threading.active_count()
        for w in range(20, 220):
            ws.send_text(_sub("ETHUSDT", "BTCUSDT", window=w))
        assert threading.active_count() <= before + 1  # not a thread per message (it was 157 for 200)
        snap = _until(ws, "snapshot", n=400)
        assert snap["view"]["tiles"]
        time.sleep(0.5)
        assert hub.topic_count() == 1 and hub.subscriber_count() == 1
        ws.send_text("{not json")
        assert "error" in _until(ws, "error")
        ws.send_text(json.dumps({"subscribe": {"y": "ETHUSDT", "x": "NOPEUSDT"}}))
        assert "two different recorded symbols" in _until(ws, "error")["error"]


def test_connections_beyond_the_cap_are_refused(rt, monkeypatch):
    monkeypatch.setattr(live, "MAX_CONNECTIONS", 2)
    with _served(rt) as (client, hub):
        with client.websocket_connect("/live") as a, client.websocket_connect("/live") as b:
            a.send_text(_sub("ETHUSDT", "BTCUSDT"))
            b.send_text(_sub("ETHUSDT", "BTCUSDT"))
            _until(a, "snapshot")
            _until(b, "snapshot")
            assert hub.connections == 2 and hub.topic_count() == 1 and hub.subscriber_count() == 2
            with pytest.raises(ConnectionClosed) as refused, client.websocket_connect("/live") as c:
                c.receive_text()
            assert refused.value.rcvd is not None and refused.value.rcvd.code == 1013
        time.sleep(0.3)
        assert hub.connections == 0 and hub.subscriber_count() == 0


def test_concurrent_subscribe_and_unsubscribe_leave_consistent_topics(rt):
    """Four threads move clients between topics while the hub computes and snapshots: no client ever
    sits in two topics, empty topics are dropped, and the hub survives."""
    hub = live.LiveHub()
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    hub.start(rt, loop)
    clients = [live._Client(ws=None) for _ in range(8)]
    views = [("ETHUSDT", "BTCUSDT", Timeframe.S1, PairParams(window=w)) for w in (30, 60)] + [
        ("BTCUSDT", "ETHUSDT", Timeframe.TICK, PairParams(window=40))]
    errors: list[BaseException] = []

    def churn(seed: int) -> None:
        try:
            for i in range(60):
                c = clients[(seed + i) % len(clients)]
                if i % 5 == 4:
                    hub.unsubscribe(c)
                else:
                    hub.subscribe(c, *views[(seed * 7 + i) % len(views)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    time.sleep(1.0)
    try:
        assert not errors
        with hub._lock:
            topics = list(hub._topics.values())
            members = [c for t in topics for c in t.clients]
            assert len(members) == len(set(members))  # nobody in two topics
            assert all(t.clients for t in topics)  # no empty topic kept
            for t in topics:
                assert all(c.topic is t for c in t.clients)
        assert hub._thread is not None and hub._thread.is_alive()
    finally:
        hub.stop()
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
