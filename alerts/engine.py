"""Background alert engine and webhook delivery.

The engine thread wakes on every new batch in storage, recomputes each enabled
rule's metric with the **same** ``analytics`` functions as the charts (on the
closed bars of the rule's timeframe), and feeds every new closed bar to the
rule's hysteresis state machine (:func:`alerts.rules.step`). Cooldowns run on
the data clock (bar times), so a replay fires exactly like live data.

Fired alerts are kept in memory for the UI, written to ``alert_events`` and,
when a webhook URL is set, posted by a separate thread (retries with backoff;
evaluation never waits for it).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

import analytics
from alerts.rules import PAIR_METRICS, AlertRule, RuleState, RuleStore, step
from storage.bars import timeframe_ms
from storage.sqlite import connect
from storage.store import TickStore

__all__ = ["AlertEngine", "AlertEvent", "WebhookSender", "metric_series"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertEvent:
    id: int
    rule_id: int
    rule_name: str
    severity: str
    fired_at: float  # wall clock, s
    bar_time: int  # ms UTC: start of the closed bar that triggered it
    value: float
    threshold: float
    message: str
    latency_ms: float | None = None  # trigger tick received -> alert recorded
    acknowledged: bool = False
    webhook_status: str = ""


def _tail(frame: pd.DataFrame, rule: AlertRule, since_ms: int | None, extra: int = 0) -> pd.DataFrame:
    """Rows needed for exact values on every bar after ``since_ms``: each of them
    needs ``window`` bars of hedge plus ``window`` bars of spread before it
    (plus ``extra`` bars of spread, e.g. the ADF sample)."""
    new = len(frame) if since_ms is None else int((frame.index.as_unit("ms").asi8 > since_ms).sum())
    return frame.iloc[-(2 * rule.window + 2 + extra + max(new, 1)) :]


def metric_series(store: TickStore, rule: AlertRule, since_ms: int | None = None) -> pd.Series:
    """The rule's metric on closed bars (index = bar start, UTC), as the charts compute it.

    Pair metrics come from ``analytics.pair_analytics`` on the aligned pair bars.
    OLS/Huber are computed on just enough trailing bars for the values after
    ``since_ms`` to equal a full-history computation; Kalman uses the whole
    history (its state is path dependent).
    """
    if rule.metric in PAIR_METRICS:
        frame = store.pair_bars(rule.symbol_y, rule.symbol_x, rule.timeframe)
        frame = frame[frame["closed"].astype(bool)]
        if rule.method != "Kalman":
            frame = _tail(frame, rule, since_ms, analytics.RECENT_ADF_POINTS if rule.metric == "adf_pvalue" else 0)
        if len(frame) < 3:
            return pd.Series(dtype=float)
        params = analytics.PairParams(window=rule.window, method=rule.method, log_prices=rule.log_prices)
        table = analytics.pair_analytics(frame["close_y"], frame["close_x"], params)
        if rule.metric == "adf_pvalue":  # the same sample and test as the dashboard's KPI
            p = analytics.recent_adf_pvalue(table["spread"])
            return pd.Series(dtype=float) if math.isnan(p) else pd.Series([p], index=table.index[-1:])
        return table[rule.metric]
    bars = _tail(store.bars(rule.symbol, rule.timeframe).query("closed"), rule, since_ms)
    if rule.metric == "price":
        return bars["close"]
    if rule.metric == "volume_z":
        return analytics.volume_zscore(bars["volume"], rule.window)
    if rule.metric == "volume_ratio":
        avg = bars["volume"].rolling(rule.window, min_periods=rule.window).mean().shift(1)
        return bars["volume"] / avg.where(avg > 0)
    raise ValueError(f"metric {rule.metric} is not bar based")


class WebhookSender:
    """Posts alert payloads (Slack ``text`` + Discord ``content`` + generic ``alert``) with retries."""

    def __init__(self, attempts: int = 4, timeout_s: float = 5.0, backoff_s: float = 0.5) -> None:
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-webhooks", daemon=True)
        self._thread.start()

    def submit(self, url: str, event: AlertEvent, on_result) -> None:
        self._queue.put((url, event, on_result))

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(5)

    @staticmethod
    def payload(event: AlertEvent) -> bytes:
        text = f"[{event.severity.upper()}] {event.message}"
        return json.dumps({"text": text, "content": text, "alert": asdict(event)}).encode()

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            url, event, on_result = item
            on_result(event, self.deliver(url, event))

    def deliver(self, url: str, event: AlertEvent) -> str:
        delay = self.backoff_s
        last = ""
        for attempt in range(1, self.attempts + 1):
            req = urllib.request.Request(url, data=self.payload(event), headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return f"delivered (HTTP {resp.status}, attempt {attempt})"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last = str(getattr(exc, "reason", exc)) or type(exc).__name__
            if attempt < self.attempts and self._stop.wait(delay):
                break
            delay *= 2
        return f"failed after {self.attempts} attempts: {last}"


class AlertEngine:
    """Evaluates rules in a background thread; see the module docstring."""

    def __init__(self, store: TickStore, webhook_url: str = "", max_events: int = 2000) -> None:
        self.store = store
        self.webhook_url = webhook_url
        self._local = threading.local()
        self.rules = RuleStore(self._conn)
        self.events: deque[AlertEvent] = deque(maxlen=max_events)
        self._states: dict[int, RuleState] = {}
        self._rules: list[AlertRule] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_id = 1
        self.errors: dict[int, str] = {}
        self.webhooks = WebhookSender()
        self.latencies_ms: deque[float] = deque(maxlen=10_000)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.store.db_path)
            self._local.conn = conn
        return conn

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self.reload_rules()
        try:
            rows = self._conn().execute(
                "SELECT id, rule_id, fired_at, bar_time, value, threshold, severity, message, acknowledged, COALESCE(webhook_status, '')"
                " FROM alert_events ORDER BY id DESC LIMIT ?", (self.events.maxlen,)
            ).fetchall()
            names = {r.id: r.name for r in self._rules}
            for r in reversed(rows):
                self.events.append(AlertEvent(r[0], r[1], names.get(r[1], f"rule {r[1]}"), r[6], r[2], r[3], r[4], r[5], r[7], None, bool(r[8]), r[9]))
            self._next_id = (rows[0][0] + 1) if rows else 1
        except sqlite3.Error as exc:
            log.warning("alert history unavailable: %s", exc)
        self._thread = threading.Thread(target=self._run, name="alert-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.webhooks.stop()

    def reload_rules(self) -> None:
        """Re-read rules (after the UI changed them); keeps state of unchanged rules."""
        try:
            rules = self.rules.list()
        except sqlite3.Error as exc:
            log.warning("cannot read alert rules: %s", exc)
            return
        with self._lock:
            old = {r.id: r for r in self._rules}
            for r in rules:
                if r.id not in old or old[r.id] != r:
                    self._states[r.id] = RuleState()
            self._rules = rules

    def acknowledge(self, event_id: int) -> None:
        self._amend(event_id, "acknowledged", True)

    def _amend(self, event_id: int, column: str, value: object) -> None:
        """Change one field of a fired event, in memory and in ``alert_events``."""
        if column not in ("acknowledged", "webhook_status"):  # a column name goes into the SQL text
            raise ValueError(f"alert events cannot amend {column!r}")
        for i, e in enumerate(self.events):
            if e.id == event_id:
                self.events[i] = replace(e, **{column: value})
        self.store.writer.submit_sql(f"UPDATE alert_events SET {column} = ? WHERE id = ?", (value, event_id))

    # -- evaluation -------------------------------------------------------------
    def _run(self) -> None:
        seen = -1
        while not self._stop.is_set():
            seen = self.store.wait_for_data(seen, timeout=0.5)
            try:
                self.evaluate()
            except Exception:  # the engine must outlive any bad rule or data
                log.exception("alert evaluation failed")

    def evaluate(self, now: float | None = None) -> list[AlertEvent]:
        """Evaluate every enabled rule on its new closed bars; return the events fired."""
        with self._lock:
            rules = [r for r in self._rules if r.enabled]
        fired: list[AlertEvent] = []
        for rule in rules:
            state = self._states.setdefault(rule.id, RuleState())
            try:
                fired.extend(self._evaluate_rule(rule, state, now))
                self.errors.pop(rule.id, None)
            except ValueError as exc:
                self.errors[rule.id] = str(exc)
        return fired

    def _evaluate_rule(self, rule: AlertRule, state: RuleState, now: float | None) -> list[AlertEvent]:
        if rule.metric == "staleness_s":
            last = self.store.buffer.buffer(rule.symbol).stats().get("last_time")
            wall = time.time() if now is None else now
            value = math.inf if last is None else wall - last / 1000
            if step(rule, state, value, wall):
                return [self._fire(rule, int(wall * 1000), value, None)]
            return []
        series = metric_series(self.store, rule, state.last_bar_ms)
        if series.empty:
            return []
        times = series.index.as_unit("ms").asi8
        if state.last_bar_ms is None:
            # first look at a rule: judge only the newest closed bar, never replay history
            state.last_bar_ms = int(times[-1]) - 1
            state.first_bar_ms = int(times[-1])
        new = times > state.last_bar_ms
        out = []
        for t_ms, value in zip(times[new], series.to_numpy()[new], strict=True):
            state.last_bar_ms = int(t_ms)
            if step(rule, state, float(value), t_ms / 1000.0):
                out.append(self._fire(rule, int(t_ms), float(value), timeframe_ms(rule.timeframe)))
        return out

    def _trigger_recv_ms(self, rule: AlertRule, bar_end_ms: int) -> float | None:
        """When the tick that closed the bar (first trade at/after its end) was received."""
        syms = (rule.symbol_y, rule.symbol_x) if rule.metric in PAIR_METRICS else (rule.symbol,)
        times = [t for s in syms if (t := self.store.received_at(s, bar_end_ms)) is not None]
        return min(times) if times else None

    def _fire(self, rule: AlertRule, bar_ms: int, value: float, period_ms: int | None) -> AlertEvent:
        fired_at = time.time()
        latency = None
        if period_ms is not None:
            recv = self._trigger_recv_ms(rule, bar_ms + period_ms)
            if recv is not None:
                latency = fired_at * 1000 - recv
                self.latencies_ms.append(latency)
        bar_iso = pd.Timestamp(bar_ms, unit="ms", tz="UTC").isoformat()
        event = AlertEvent(
            id=self._next_id, rule_id=int(rule.id or 0), rule_name=rule.name, severity=rule.severity, fired_at=fired_at,
            bar_time=bar_ms, value=value, threshold=rule.threshold,
            message=f"{rule.name}: {rule.describe()} — value {value:.6g} at bar {bar_iso}", latency_ms=latency,
        )
        self._next_id += 1
        self.events.append(event)
        self.store.writer.submit_sql(
            "INSERT INTO alert_events (id, rule_id, fired_at, bar_time, value, threshold, severity, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event.id, event.rule_id, event.fired_at, event.bar_time, event.value, event.threshold, event.severity, event.message),
        )
        url = rule.webhook_url or self.webhook_url
        if url:
            self.webhooks.submit(url, event, self._webhook_result)
        return event

    def _webhook_result(self, event: AlertEvent, status: str) -> None:
        self._amend(event.id, "webhook_status", status)

    def latency_summary(self) -> dict[str, float]:
        lat = np.array(self.latencies_ms)
        if not len(lat):
            return {}
        return {"n": float(len(lat)), "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}
