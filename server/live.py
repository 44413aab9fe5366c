"""Live push channel: ``/live`` (same-origin WebSocket) — ticks, the pair's tiles and z points, no Streamlit rerun.

A browser tab subscribes to what it views (pair, timeframe, parameters in
:meth:`analytics.PairParams.to_query` form). The hub computes each distinct
subscription (a *topic*) **once per update**, however many tabs view it, on its
one thread, woken by new data, and sends every subscriber the same message:

* ``ticks`` — the newest trade per leg, the caption and the price/age tiles,
  formatted, sent as soon as a tick is stored and at least every second (ages count);
* ``update`` — the :class:`pairs.PairView` of the topic (tiles with their
  colours, notes), ``append``: table rows (time, z, spread) finalised since the
  last message, and ``head``, the still-forming newest row;
* ``snapshot`` — to a new subscriber: the view and the last
  :data:`SNAPSHOT_POINTS` rows (no rows while collecting: the page clears its chart).

Every message names its topic; a connection only ever receives its current
topic's messages (a late message of the pair it left is dropped). Slow clients
never queue: each connection keeps only the newest pending message. Bounds:
at most :data:`MAX_CONNECTIONS` connections (then 1013 "try again later"), one
subscription per connection (a new one replaces it), and snapshots are computed
on the hub thread, one per connection at a time, whatever the number of
subscribe messages — a flood of them costs no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import numpy as np
import pandas as pd
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import analytics
from pairs import Timeframe, newest_caption, pair_view, price_tiles

__all__ = ["MAX_CONNECTIONS", "SNAPSHOT_POINTS", "LiveHub", "hub", "live_routes"]

log = logging.getLogger(__name__)
SNAPSHOT_POINTS = 3000
MIN_INTERVAL_S = 0.05  # per topic: at most 20 table updates a second
TICKS_EVERY_S = 1.0  # a ticks message at least this often (ages keep counting on the page)
MAX_CONNECTIONS = 64
MAX_MESSAGE_BYTES = 4096
_ids = count(1)


@dataclass
class Topic:
    """One distinct subscription (pair, timeframe, parameters) and who watches it."""

    key: tuple
    y: str
    x: str
    timeframe: Timeframe
    params: analytics.PairParams
    id: int = field(default_factory=lambda: next(_ids))
    clients: set = field(default_factory=set)
    cache: dict = field(default_factory=dict)  # pair_view's table/diagnostic cache (hub thread only)
    last_t: int | None = None  # ms: the newest finalised row already sent (hub thread only)
    last_compute: float = 0.0
    last_ticks_sent: float = 0.0
    cost_s: float = 0.0
    seq: int = 0
    last_ids: tuple = ()


class _Client:
    """A connection's single outgoing slot: a newer message merges into or replaces the pending one.

    Lives on the event loop; :meth:`offer` runs there (the hub hands messages over with
    ``call_soon_threadsafe``) and drops a message of any topic but the client's current one.
    """

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.pending: dict | None = None
        self.event = asyncio.Event()
        self.topic: Topic | None = None
        self.topic_id: int | None = None  # the topic whose messages it accepts (set on the loop)

    def offer(self, msg: dict) -> None:
        if msg.get("topic") is not None and msg["topic"] != self.topic_id:
            return  # a late message of the pair this connection left
        if self.pending is None or msg.get("type") in ("snapshot", "error") or self.pending.get("type") == "error":
            self.pending = msg
        else:  # merge: keep the points not yet sent, take the newest everything else
            old = self.pending
            merged = {**old, **{k: v for k, v in msg.items() if k not in ("append", "type")}}
            merged["type"] = "snapshot" if old.get("type") == "snapshot" else msg.get("type", old.get("type"))
            merged["append"] = _concat(old.get("append"), msg.get("append"))
            if "view" not in msg and "view" in old:
                merged["view"] = old["view"]
            if "tiles" in old and "tiles" in msg:
                merged["tiles"] = {**old["tiles"], **msg["tiles"]}
            self.pending = merged
        self.event.set()


def _concat(a: dict | None, b: dict | None) -> dict | None:
    if not a:
        return b
    if not b:
        return a
    return {k: list(a.get(k, [])) + list(b.get(k, [])) for k in set(a) | set(b)}


def _num(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _rows(table: pd.DataFrame) -> dict[str, list]:
    t = table.index.as_unit("ms").asi8.tolist()
    return {"t": t, "z": [_num(v) for v in table["zscore"].to_numpy()], "spread": [_num(v) for v in table["spread"].to_numpy()]}


class LiveHub:
    """Subscriptions, the compute thread and the fan-out (see the module docstring)."""

    def __init__(self) -> None:
        self.rt = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._topics: dict[tuple, Topic] = {}
        self._snapshots: dict[_Client, Topic] = {}  # one pending snapshot per connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = 0
        self.computes = 0
        self.messages = 0

    # -- lifecycle ------------------------------------------------------------------
    def start(self, rt, loop: asyncio.AbstractEventLoop) -> None:
        self.rt, self.loop = rt, loop
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(t.clients) for t in self._topics.values())

    def topic_count(self) -> int:
        with self._lock:
            return sum(1 for t in self._topics.values() if t.clients)

    # -- subscriptions ----------------------------------------------------------------
    def subscribe(self, client: _Client, y: str, x: str, timeframe: Timeframe, params: analytics.PairParams) -> Topic:
        """Move ``client`` to the topic (created on first use); its snapshot follows on the hub thread."""
        key = (y, x, timeframe.value, tuple(sorted(params.to_query().items())))
        with self._lock:
            self._unsubscribe_locked(client)
            topic = self._topics.get(key)
            if topic is None:
                topic = self._topics[key] = Topic(key, y, x, timeframe, params)
            topic.clients.add(client)
            client.topic = topic
            self._snapshots[client] = topic  # replaces a pending snapshot of an earlier subscription
        self._wake.set()
        return topic

    def unsubscribe(self, client: _Client) -> None:
        with self._lock:
            self._unsubscribe_locked(client)
            self._snapshots.pop(client, None)

    def _unsubscribe_locked(self, client: _Client) -> None:
        t = client.topic
        if t is not None:
            t.clients.discard(client)
            if not t.clients:
                self._topics.pop(t.key, None)
            client.topic = None

    # -- compute thread -----------------------------------------------------------------
    def _run(self) -> None:
        seen = -1
        while not self._stop.is_set():
            store = self.rt.store
            seen = store.wait_for_data(seen, timeout=0.25)
            if self._wake.is_set():
                self._wake.clear()
            with self._lock:
                snapshots = list(self._snapshots.items())
                self._snapshots.clear()
                topics = [t for t in self._topics.values() if t.clients]
            for client, topic in snapshots:
                self._snapshot_for(client, topic)
            if not topics:
                continue
            self._send_ticks(topics)
            now = time.monotonic()
            for topic in topics:
                wait = max(MIN_INTERVAL_S, 2 * topic.cost_s)  # an expensive table is not recomputed back to back
                if now - topic.last_compute < wait:
                    continue
                try:
                    msg = self._update(topic)
                except Exception as exc:  # a topic never stops the hub
                    log.warning("live topic %s failed: %s", topic.key[:3], exc)
                    msg = {"type": "update", "error": f"the pair could not be computed: {str(exc)[:200]}"}
                if msg is not None:
                    self._broadcast(topic, msg)
            time.sleep(0.005)  # let bursts of batches coalesce into one update

    def _last(self, topic: Topic) -> dict:
        return {s: self.rt.bars.last_trade(s) for s in (topic.y, topic.x)}

    def _age(self, last: dict) -> tuple[int | None, float | None]:
        newest = max((t.time_ms for t in last.values() if t is not None), default=None)
        return newest, (None if newest is None else max(0.0, (self.rt.now_ms() - newest) / 1000))

    def _ticks_message(self, topic: Topic, last: dict) -> dict[str, Any]:
        newest, age = self._age(last)
        stale = age is not None and age > self.rt.settings.stale_after_s
        tiles = {t.key: {"label": t.label, "value": t.value, "tone": t.tone} for t in price_tiles(topic.y, topic.x, last, age, stale)}
        return {"type": "ticks", "caption": newest_caption(last, newest, age), "tiles": tiles, "stale": stale,
                "ticks": {s: ({"id": t.agg_id, "t": t.time_ms, "p": t.price} if t else None) for s, t in last.items()},
                "server_ms": int(time.time() * 1000)}

    def _send_ticks(self, topics: list[Topic]) -> None:
        now = time.monotonic()
        for topic in topics:
            last = self._last(topic)
            ids = tuple((t.agg_id, t.time_ms) if t else None for t in last.values())
            if ids != topic.last_ids or now - topic.last_ticks_sent >= TICKS_EVERY_S:
                topic.last_ids = ids
                topic.last_ticks_sent = now
                self._broadcast(topic, self._ticks_message(topic, last))

    def _view(self, topic: Topic):
        return pair_view(self.rt.bars, topic.y, topic.x, topic.timeframe, topic.params, self.rt.settings.stale_after_s,
                         cache=topic.cache, tail=SNAPSHOT_POINTS)

    def _update(self, topic: Topic) -> dict | None:
        t0 = time.perf_counter()
        view = self._view(topic)
        topic.last_compute = time.monotonic()
        topic.cost_s = time.perf_counter() - t0
        self.computes += 1
        msg: dict[str, Any] = {"type": "update", "view": view.as_message(), **self._ticks_message(topic, view.last)}
        msg["type"] = "update"
        table = view.table
        if table is not None and len(table):
            closed_upto = len(table) - 1  # the last row may still be forming
            times = table.index.as_unit("ms").asi8
            new = np.flatnonzero(times[:closed_upto] > (topic.last_t if topic.last_t is not None else -(2**62)))
            if len(new):
                msg["append"] = _rows(table.iloc[new])
                topic.last_t = int(times[new[-1]])
            msg["head"] = {k: v[0] for k, v in _rows(table.iloc[-1:]).items()}
        return msg

    def _snapshot_for(self, client: _Client, topic: Topic) -> None:
        """The full picture for a new subscriber (hub thread): the view and the last rows up to the topic's cursor."""
        try:
            view = self._view(topic)
            msg: dict[str, Any] = {**self._ticks_message(topic, view.last), "type": "snapshot", "view": view.as_message(),
                                   "entry": topic.params.entry, "exit": topic.params.exit, "append": {"t": [], "z": [], "spread": []}}
            table = view.table
            if table is not None and len(table):
                shown = table.iloc[-SNAPSHOT_POINTS:]
                if topic.last_t is None and len(shown) > 1:
                    topic.last_t = int(shown.index[-2].value // 1_000_000)
                upto = shown[shown.index.as_unit("ms").asi8 <= (topic.last_t if topic.last_t is not None else -(2**62))]
                msg["append"] = _rows(upto)  # rows after the topic's cursor come with the next update
                msg["head"] = {k: v[0] for k, v in _rows(shown.iloc[-1:]).items()}
        except Exception as exc:
            log.warning("live snapshot of %s failed: %s", topic.key[:3], exc)
            msg = {"type": "snapshot", "error": f"the pair could not be computed: {str(exc)[:200]}"}
        msg["topic"] = topic.id
        self._deliver(client, msg)

    # -- fan-out (thread -> event loop) ---------------------------------------------------------
    def _broadcast(self, topic: Topic, msg: dict) -> None:
        topic.seq += 1
        msg["seq"] = topic.seq
        msg["topic"] = topic.id
        with self._lock:
            clients = list(topic.clients)
        for c in clients:
            self._deliver(c, msg)

    def _deliver(self, client: _Client, msg: dict) -> None:
        if self.loop is None:
            return
        self.messages += 1
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self.loop.call_soon_threadsafe(client.offer, msg)


hub = LiveHub()


def _subscription(msg: object) -> tuple[str, str, Timeframe, analytics.PairParams]:
    """``{"subscribe": {"y", "x", "timeframe", "params": {...}}}`` → a validated subscription (``ValueError`` says why)."""
    sub = msg.get("subscribe") if isinstance(msg, dict) else None
    if not isinstance(sub, dict):
        raise ValueError('expected {"subscribe": {...}}')
    rt = hub.rt
    recorded = rt.bars.symbols() if rt is not None else ()
    y, x = str(sub.get("y", "")).upper()[:30], str(sub.get("x", "")).upper()[:30]
    if y not in recorded or x not in recorded or y == x:
        raise ValueError("y and x must be two different recorded symbols")
    tf = Timeframe.parse(sub.get("timeframe", "1s"))
    params = sub.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("params must be an object")
    return y, x, tf, analytics.PairParams.from_query({k: str(v) for k, v in params.items() if v is not None})


async def live_endpoint(ws: WebSocket) -> None:
    if hub.connections >= MAX_CONNECTIONS:  # accepted, then closed with "try again later": the page retries
        await ws.accept()
        await ws.close(code=1013, reason="too many live connections; try again later")
        return
    hub.connections += 1
    try:
        await ws.accept()
        client = _Client(ws)
        loop = asyncio.get_running_loop()

        async def sender() -> None:
            while True:
                await client.event.wait()
                client.event.clear()
                msg, client.pending = client.pending, None
                if msg is not None:
                    await ws.send_text(json.dumps(msg, separators=(",", ":")))

        task = loop.create_task(sender())
        try:
            while True:
                raw = await ws.receive_text()
                if len(raw) > MAX_MESSAGE_BYTES:
                    client.offer({"type": "error", "error": "message too long"})
                    continue
                try:
                    y, x, tf, params = _subscription(json.loads(raw))
                except (ValueError, TypeError) as exc:
                    client.offer({"type": "error", "error": str(exc)[:300]})
                    continue
                topic = hub.subscribe(client, y, x, tf, params)
                client.topic_id = topic.id  # from now on only this topic's messages reach the page
                client.pending = None
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.unsubscribe(client)
            task.cancel()
    finally:
        hub.connections -= 1


def live_routes() -> list:
    return [WebSocketRoute("/live", live_endpoint)]
