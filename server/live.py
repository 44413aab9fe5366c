"""Live push channel: ``/live`` (same-origin WebSocket) — ticks, KPIs and z points, no Streamlit rerun.

A browser tab subscribes to what it views (pair, timeframe, parameters). The
hub computes each distinct subscription **once per update**, however many
tabs view it, on one compute thread woken by new data, and sends every
subscriber the same message:

* ``ticks`` — the newest trade per leg (symbol, aggregate id, price, time),
  sent as soon as it is stored (before the heavier table work);
* ``kpi`` — prices, z, β, spread, correlation of the newest row, its age, the
  warm-up note while collecting;
* ``append`` — table rows (time, z, spread) finalised since the last message,
  and ``head``, the still-forming newest row (it replaces the previous head).

A new subscriber first gets a ``snapshot`` (the last :data:`SNAPSHOT_POINTS`
rows). Slow clients never queue: each connection keeps only the newest
pending message (older ones are merged into it or dropped). OLS/Huber tables
are computed on just enough trailing bars for the newest values to equal a
full computation; Kalman uses the whole history (its state is path dependent).
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
from typing import Any

import numpy as np
import pandas as pd
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import analytics
from server.pipeline import compute_table, pair_frame

__all__ = ["SNAPSHOT_POINTS", "LiveHub", "hub", "live_routes"]

log = logging.getLogger(__name__)
SNAPSHOT_POINTS = 3000
MIN_INTERVAL_S = 0.05  # per topic: at most 20 table updates a second
TIMEFRAMES = ("tick", "1s", "1m", "5m")


@dataclass
class Topic:
    """One distinct subscription (pair, timeframe, parameters) and who watches it."""

    key: tuple
    y: str
    x: str
    timeframe: str
    params: analytics.PairParams
    clients: set = field(default_factory=set)
    last_t: int | None = None  # ms: the newest finalised row already sent
    last_compute: float = 0.0
    cost_s: float = 0.0
    seq: int = 0
    last_ids: tuple = ()


class _Client:
    """A connection's single outgoing slot: a newer message merges into or replaces the pending one."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.pending: dict | None = None
        self.event = asyncio.Event()
        self.topic: Topic | None = None

    def offer(self, msg: dict) -> None:
        if self.pending is None or msg.get("type") == "snapshot":
            self.pending = msg
        else:  # merge: keep the points not yet sent, take the newest everything else
            old = self.pending
            merged = {**old, **{k: v for k, v in msg.items() if k not in ("append",)}}
            if old.get("type") == "snapshot":
                merged["type"] = "snapshot"
                merged["append"] = _concat(old.get("append"), msg.get("append"))
            else:
                merged["append"] = _concat(old.get("append"), msg.get("append"))
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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
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
    def subscribe(self, client: _Client, y: str, x: str, timeframe: str, params: analytics.PairParams) -> Topic:
        key = (y, x, timeframe, tuple(sorted(params.__dict__.items())))
        with self._lock:
            self._unsubscribe_locked(client)
            topic = self._topics.get(key)
            if topic is None:
                topic = self._topics[key] = Topic(key, y, x, timeframe, params)
            topic.clients.add(client)
            client.topic = topic
        self._wake.set()
        # a new subscriber needs the full picture: computed on the hub thread, sent only to it
        threading.Thread(target=self._snapshot_for, args=(client, topic), name="live-snapshot", daemon=True).start()
        return topic

    def unsubscribe(self, client: _Client) -> None:
        with self._lock:
            self._unsubscribe_locked(client)

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
            with self._lock:
                topics = [t for t in self._topics.values() if t.clients]
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
                    msg = {"type": "update", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
                if msg is not None:
                    self._broadcast(topic, msg)
            time.sleep(0.005)  # let bursts of batches coalesce into one update

    def _ticks(self, topic: Topic) -> dict[str, Any]:
        out = {}
        for sym in (topic.y, topic.x):
            st = self.rt.store.buffer.buffer(sym).stats()
            last = st.get("last_time")
            price = None
            if last is not None:
                snap = self.rt.store.buffer.buffer(sym).snapshot(last, None, ("price",))
                price = float(snap["price"][-1]) if len(snap) else None
            out[sym] = {"id": st.get("last_agg_id"), "t": last, "p": price}
        return out

    def _send_ticks(self, topics: list[Topic]) -> None:
        for topic in topics:
            ticks = self._ticks(topic)
            ids = tuple(v["id"] for v in ticks.values())
            if ids != topic.last_ids:
                topic.last_ids = ids
                self._broadcast(topic, {"type": "ticks", "ticks": ticks, "server_ms": int(time.time() * 1000)})

    def _table(self, topic: Topic) -> tuple[pd.DataFrame | None, str | None, int]:
        p = topic.params
        pf = pair_frame(self.rt.store, topic.y, topic.x, topic.timeframe, p, now_ms=self.rt.now_ms())
        need = analytics.warmup_bars(p)
        if pf.rows == 0:
            waiting = [s for s in (topic.y, topic.x) if not self.rt.store.buffer.buffer(s).stats().get("ticks")]
            return None, (f"Waiting for the first trade of {', '.join(waiting)}." if waiting
                          else "Waiting for both legs to trade in the same bar."), 0
        if pf.rows < need:
            unit = "ticks" if topic.timeframe == "tick" else f"{topic.timeframe} bars"
            return None, f"collecting {unit}: {pf.rows:,} of {need:,} needed before the first z-score", pf.rows
        frame = pf.frame
        if p.method != "Kalman":  # enough trailing bars for the shown values to equal a full computation
            frame = frame.iloc[-(SNAPSHOT_POINTS + 2 * max(p.window, p.zscore_window) + 2):]
        table = compute_table(pf.__class__(frame, pf.timeframe, pf.closed_only), p)
        return table, None, pf.rows

    def _kpi(self, topic: Topic, table: pd.DataFrame | None, note: str | None) -> dict[str, Any]:
        ticks = self._ticks(topic)
        newest = max((v["t"] or 0) for v in ticks.values()) or None
        now_ms = self.rt.now_ms()
        kpi: dict[str, Any] = {"note": note, "price_y": ticks[topic.y]["p"], "price_x": ticks[topic.x]["p"],
                               "newest_ms": newest, "age_s": None if newest is None else max(0.0, (now_ms - newest) / 1000),
                               "stale_after_s": self.rt.settings.stale_after_s}
        if table is not None and len(table):
            last = table.iloc[-1]
            kpi.update({"z": _num(last["zscore"]), "beta": _num(last["beta"]), "spread": _num(last["spread"]),
                        "corr": _num(last["correlation"]), "stale_leg": bool(last.get("stale", False)),
                        "row_ms": int(table.index[-1].value // 1_000_000)})
        return kpi

    def _update(self, topic: Topic) -> dict | None:
        t0 = time.perf_counter()
        table, note, _rows_n = self._table(topic)
        topic.last_compute = time.monotonic()
        topic.cost_s = time.perf_counter() - t0
        self.computes += 1
        msg: dict[str, Any] = {"type": "update", "kpi": self._kpi(topic, table, note), "ticks": self._ticks(topic)}
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
        try:
            table, note, _ = self._table(topic)
            msg: dict[str, Any] = {"type": "snapshot", "kpi": self._kpi(topic, table, note), "ticks": self._ticks(topic),
                                   "entry": topic.params.entry, "exit": topic.params.exit}
            if table is not None and len(table):
                shown = table.iloc[-SNAPSHOT_POINTS:]
                msg["append"] = _rows(shown.iloc[:-1])
                msg["head"] = {k: v[0] for k, v in _rows(shown.iloc[-1:]).items()}
                if topic.last_t is None and len(shown) > 1:
                    topic.last_t = int(shown.index[-2].value // 1_000_000)
                elif topic.last_t is not None:  # rows after the topic's cursor come with the next update
                    keep = np.asarray(msg["append"]["t"]) <= topic.last_t
                    msg["append"] = {k: [v for v, ok in zip(vals, keep, strict=True) if ok] for k, vals in msg["append"].items()}
        except Exception as exc:
            msg = {"type": "snapshot", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        self._deliver(client, msg)

    # -- fan-out (thread -> event loop) ---------------------------------------------------------
    def _broadcast(self, topic: Topic, msg: dict) -> None:
        topic.seq += 1
        msg["seq"] = topic.seq
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


def _subscription(msg: dict) -> tuple[str, str, str, analytics.PairParams]:
    from server.api import ApiError, pair_params

    sub = msg.get("subscribe")
    if not isinstance(sub, dict):
        raise ApiError("expected {\"subscribe\": {...}}")
    rt = hub.rt
    recorded = rt.universe.recorded() if rt is not None and rt.universe else ()
    y, x = str(sub.get("y", "")).upper()[:30], str(sub.get("x", "")).upper()[:30]
    if y not in recorded or x not in recorded or y == x:
        raise ApiError("y and x must be two different recorded symbols")
    tf = str(sub.get("timeframe", "1s"))
    if tf not in TIMEFRAMES:
        raise ApiError("timeframe must be tick, 1s, 1m or 5m")
    q = {k: str(v) for k, v in (sub.get("params") or {}).items() if v is not None}
    return y, x, tf, pair_params(q)


async def live_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    client = _Client(ws)

    async def sender() -> None:
        while True:
            await client.event.wait()
            client.event.clear()
            msg, client.pending = client.pending, None
            if msg is not None:
                await ws.send_text(json.dumps(msg, separators=(",", ":")))

    task = asyncio.create_task(sender())
    try:
        while True:
            raw = await ws.receive_text()
            if len(raw) > 4096:
                await ws.send_text(json.dumps({"type": "error", "error": "message too long"}))
                continue
            try:
                y, x, tf, params = _subscription(json.loads(raw))
            except Exception as exc:
                await ws.send_text(json.dumps({"type": "error", "error": str(exc)[:300]}))
                continue
            hub.subscribe(client, y, x, tf, params)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unsubscribe(client)
        task.cancel()


def live_routes() -> list:
    return [WebSocketRoute("/live", live_endpoint)]
