"""Background alert engine and webhook delivery.

The engine thread wakes on every new batch in storage, recomputes each enabled
rule's metric with the **same** ``analytics`` functions as the charts (on the
closed bars of the rule's timeframe), and feeds every new closed bar to the
rule's hysteresis state machine (:func:`alerts.rules.step`). Cooldowns run on
the data clock (bar times), so a replay fires exactly like live data.

Fired alerts are kept in memory for the UI, written to ``alert_events`` and,
when a webhook URL is set, posted by a separate thread (retries with backoff;
evaluation never waits for it).

Several processes sharing one PostgreSQL database (several dashboards) elect
one **leader** (an advisory lock, ``leader``): only it records alerts and calls
webhooks. The others evaluate in *shadow*: the same state machine on the same
bars, so a takeover continues exactly where the leader was (no alert fired twice
for one excursion); an alert the shadow would have fired in the last minute
that the old leader did not record is recorded at takeover (none missed). The
followers read the leader's alerts from the database for their toasts and
history, and every engine re-reads the rules when another process changed them.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

import analytics
from alerts.destinations import DestinationError, mask_url, post_json
from alerts.rules import DIAGNOSTIC_METRICS, PAIR_METRICS, AlertRule, RuleError, RuleState, RuleStore, step
from storage.bars import timeframe_ms
from storage.store import DB_ERRORS, TickStore

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


def _tail(frame: pd.DataFrame, rule: AlertRule, since_ms: int | None) -> pd.DataFrame:
    """Rows needed for exact values on every bar after ``since_ms``: each of them
    needs ``window`` bars of hedge plus ``window`` bars of spread before it."""
    new = len(frame) if since_ms is None else int((frame.index.as_unit("ms").asi8 > since_ms).sum())
    return frame.iloc[-(2 * rule.window + 2 + max(new, 1)) :]


def _diagnostic_series(frame: pd.DataFrame, rule: AlertRule, since_ms: int | None) -> pd.Series:
    """``eg_pvalue``/``half_life``/``hedge_break`` at each new closed bar: the formation window ending at that bar."""
    params = rule.pair_params()
    times = frame.index.as_unit("ms").asi8
    ends = np.flatnonzero(times > since_ms) if since_ms is not None else np.arange(len(frame))[-1:]
    values = []
    for end in ends:
        window = frame.iloc[max(0, end + 1 - params.formation_bars) : end + 1]
        if rule.metric == "hedge_break":
            y, x = window["close_y"], window["close_x"]
            if params.log_prices:
                y, x = np.log(y), np.log(x)
            values.append(analytics.cusum_test(y, x).statistic)
            continue
        d = analytics.pair_diagnostics(window["close_y"], window["close_x"], params)
        values.append(d.eg_pvalue if rule.metric == "eg_pvalue" else d.half_life_bars)
    return pd.Series(values, index=frame.index[ends], dtype=float)


def metric_series(store: TickStore, rule: AlertRule, since_ms: int | None = None) -> pd.Series:
    """The rule's metric on closed bars (index = bar start, UTC), as the dashboard computes it.

    Pair metrics come from ``analytics.pair_table`` on the aligned pair bars
    (``eg_pvalue``/``half_life`` from ``analytics.pair_diagnostics`` on the
    formation window ending at each bar). OLS/Huber are computed on just enough
    trailing bars for the values after ``since_ms`` to equal a full-history
    computation; Kalman uses the whole history (its state is path dependent).
    """
    if rule.metric in PAIR_METRICS:
        params = rule.pair_params()
        frame = store.pair_bars(rule.symbol_y, rule.symbol_x, rule.timeframe,
                                ffill_limit=int(math.ceil(params.stale_after_s / (timeframe_ms(rule.timeframe) / 1000))) + 5)
        frame = frame[frame["closed"].astype(bool)]
        if rule.metric in DIAGNOSTIC_METRICS:
            return _diagnostic_series(frame, rule, since_ms)
        if rule.method != "Kalman":
            frame = _tail(frame, rule, since_ms)
        if len(frame) < 3:
            return pd.Series(dtype=float)
        table = analytics.pair_table(frame, params)
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
    """Posts alert payloads (Slack ``text`` + Discord ``content`` + generic ``alert``) with retries.

    Every attempt goes through :func:`alerts.destinations.post_json`: the
    destination is resolved and checked again (DNS can change after a rule was
    saved), redirects are not followed, and a failed delivery is reported as
    ``"failed: could not deliver"`` — never the socket error, which would tell
    a user about hosts on the server's network.
    """

    def __init__(self, attempts: int = 4, timeout_s: float = 3.0, backoff_s: float = 0.5, allow_hosts: tuple[str, ...] = ()) -> None:
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.allow_hosts = tuple(allow_hosts)
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
        last = "could not deliver"
        for attempt in range(1, self.attempts + 1):
            try:
                status = post_json(url, self.payload(event), self.allow_hosts, self.timeout_s)
            except DestinationError:
                log.warning("webhook destination %s refused at send time", mask_url(url))
                return "failed: destination not allowed"
            except OSError as exc:
                log.info("webhook to %s failed: %s", mask_url(url), exc)  # the reason stays in the server log
                last = "could not deliver"
            else:
                if 200 <= status < 300:
                    return f"delivered (HTTP {status}, attempt {attempt})"
                if 300 <= status < 400:
                    return f"failed: HTTP {status} redirect not followed"
                last = f"HTTP {status}"
            if attempt < self.attempts and self._stop.wait(delay):
                break
            delay *= 2
        return f"failed after {self.attempts} attempts: {last}"


def _rule_symbols(rules: list[AlertRule]) -> list[str]:
    out: list[str] = []
    for r in rules:
        out.extend([r.symbol_y, r.symbol_x] if r.metric in PAIR_METRICS else [r.symbol])
    return list(dict.fromkeys(s for s in out if s))


class AlertEngine:
    """Evaluates rules in a background thread; see the module docstring."""

    def __init__(self, store: TickStore, webhook_url: str = "", max_events: int = 2000, webhook_allow_hosts: tuple[str, ...] = (),
                 leader: Callable[[], bool] | None = None) -> None:
        """``leader``: True while this process may record alerts (None: always — a single process)."""
        self.store = store
        self.leader = leader
        self._was_leader = leader is None
        self._shadow: deque[tuple[AlertRule, int, float, int | None, float]] = deque(maxlen=1000)
        self._rules_version: tuple | None = None
        self._last_sync = 0.0
        self.webhook_url = webhook_url
        self._local = threading.local()
        self.rules = RuleStore(self._conn, webhook_allow_hosts)
        self.events: deque[AlertEvent] = deque(maxlen=max_events)
        self._states: dict[int, RuleState] = {}
        self._rules: list[AlertRule] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_id = 1
        self.errors: dict[int, str] = {}
        self.webhooks = WebhookSender(allow_hosts=tuple(webhook_allow_hosts))
        self.latencies_ms: deque[float] = deque(maxlen=10_000)
        self.on_rules_changed: Callable[[], None] | None = None  # e.g. record the symbols a new rule needs

    def _conn(self):
        return self.store.sql()

    def is_leader(self) -> bool:
        return self.leader is None or bool(self.leader())

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self.reload_rules()
        try:
            self._sync_events(self.events.maxlen or 2000)
        except DB_ERRORS as exc:
            log.warning("alert history unavailable: %s", exc)
        self._thread = threading.Thread(target=self._run, name="alert-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.webhooks.stop()

    def _sync_events(self, limit: int = 200) -> None:
        """Merge the newest ``limit`` stored events into memory (a follower sees the leader's alerts,
        acknowledgements and webhook results); the next id follows the newest stored one."""
        rows = self._conn().execute(
            "SELECT id, rule_id, fired_at, bar_time, value, threshold, severity, message, acknowledged, COALESCE(webhook_status, '')"
            " FROM alert_events ORDER BY id DESC LIMIT ?", (int(limit),)
        ).fetchall()
        names = {r.id: r.name for r in self._rules}
        stored = {int(r[0]): AlertEvent(int(r[0]), int(r[1]), names.get(r[1], f"rule {r[1]}"), r[6], r[2], r[3], r[4], r[5], r[7], None,
                                        bool(r[8]), r[9]) for r in rows}
        with self._lock:
            have = {e.id: i for i, e in enumerate(self.events)}
            for eid, ev in sorted(stored.items()):
                if eid in have:
                    old = self.events[have[eid]]
                    self.events[have[eid]] = replace(ev, latency_ms=old.latency_ms)
                elif not self.events or eid > self.events[-1].id:
                    self.events.append(ev)
            if stored:
                self._next_id = max(self._next_id, max(stored) + 1)

    def reload_rules(self) -> None:
        """Re-read rules (after the UI changed them); keeps state of unchanged rules."""
        try:
            rules = self.rules.list()
        except DB_ERRORS as exc:
            log.warning("cannot read alert rules: %s", exc)
            return
        with self._lock:
            old = {r.id: r for r in self._rules}
            for r in rules:
                if r.id not in old or old[r.id] != r:
                    self._states[r.id] = RuleState()
            self._rules = rules
        if self.on_rules_changed is not None:
            self.on_rules_changed()

    def symbols(self) -> list[str]:
        """Every symbol an enabled rule watches (the recorded universe keeps them)."""
        with self._lock:
            rules = [r for r in self._rules if r.enabled]
        return _rule_symbols(rules)

    def stored_rule_symbols(self) -> list[str]:
        """Symbols of the enabled rules in the database (before :meth:`start`)."""
        try:
            return _rule_symbols([r for r in self.rules.list() if r.enabled])
        except (*DB_ERRORS, RuleError, ValueError) as exc:
            log.warning("cannot read alert rules: %s", exc)
            return []

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
                self._housekeeping()
                self.evaluate()
            except Exception:  # the engine must outlive any bad rule or data
                log.exception("alert evaluation failed")

    def _housekeeping(self, every_s: float = 1.0) -> None:
        """Rules changed by another process, leadership changes, the leader's alerts (followers)."""
        now = time.monotonic()
        if now - self._last_sync < every_s:
            return
        self._last_sync = now
        try:
            version = self.rules.version()
            if self._rules_version is not None and version != self._rules_version:
                self.reload_rules()
            self._rules_version = version
            leader = self.is_leader()
            if leader and not self._was_leader:
                self._take_over()
            elif not leader:
                self._sync_events()
            self._was_leader = leader
        except DB_ERRORS as exc:
            log.warning("alert engine cannot reach the database: %s", exc)

    def _take_over(self) -> None:
        """This process became the leader: continue from the stored alerts; record what the old leader
        missed (bars the shadow fired on in the last minute that have no stored alert)."""
        self._sync_events(self.events.maxlen or 2000)
        recent = [s for s in self._shadow if time.time() - s[4] < 60.0]
        self._shadow.clear()
        log.warning("alert leadership taken over: %d shadow alert(s) of the last minute to check", len(recent))
        if not recent:
            return
        stored = {(int(r), int(b)) for r, b in self._conn().execute(
            "SELECT rule_id, bar_time FROM alert_events WHERE fired_at >= ?", (time.time() - 600,)).fetchall() if b is not None}
        for rule, bar_ms, value, period, _ in recent:
            rid = int(rule.id or 0)
            # bar rules: the same state machine on the same bars fired there, so the old leader should have
            # recorded exactly that bar; if it did not (its insert died with it, or its view of the bars had
            # a hole), record it now — even when it stored a later one. Staleness (wall-clock stamped,
            # period None): any alert of it in that minute.
            if period is not None:
                known = (rid, bar_ms) in stored
            else:
                known = any(r == rid and abs(b - bar_ms) < 60_000 for r, b in stored)
            if not known:
                log.warning("recording alert %s at bar %s that the previous leader did not", rule.name, bar_ms)
                self._fire(rule, bar_ms, value, period, force=True)

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
                ev = self._fire(rule, int(wall * 1000), value, None)
                return [ev] if ev is not None else []
            return []
        series = metric_series(self.store, rule, state.last_bar_ms)
        if series.empty:
            return []
        times = series.index.as_unit("ms").asi8
        if state.last_bar_ms is None:
            resume = max((e.bar_time for e in list(self.events) if e.rule_id == rule.id and e.bar_time is not None), default=None)
            at = np.flatnonzero(times == resume) if resume is not None else []
            if len(at):
                # the rule's last stored alert is in the data (a restart, a takeover): continue from that bar as
                # it was left — fired there — so an excursion that is still going on does not fire again
                state.last_bar_ms = state.first_bar_ms = int(resume)
                state.armed, state.last_fired = False, resume / 1000.0
                state.prev_value = float(series.to_numpy()[at[0]])
            else:
                # first look at a rule: judge only the newest closed bar, never replay history
                state.last_bar_ms = int(times[-1]) - 1
                state.first_bar_ms = int(times[-1])
            log.info("rule %s: evaluating from bar %s (last stored alert: %s)", rule.name, state.first_bar_ms, resume)
        new = times > state.last_bar_ms
        out = []
        for t_ms, value in zip(times[new], series.to_numpy()[new], strict=True):
            state.last_bar_ms = int(t_ms)
            if step(rule, state, float(value), t_ms / 1000.0):
                ev = self._fire(rule, int(t_ms), float(value), timeframe_ms(rule.timeframe))
                if ev is not None:
                    out.append(ev)
        return out

    def _trigger_recv_ms(self, rule: AlertRule, bar_end_ms: int) -> float | None:
        """When the tick that closed the bar (first trade at/after its end) was received."""
        syms = (rule.symbol_y, rule.symbol_x) if rule.metric in PAIR_METRICS else (rule.symbol,)
        times = [t for s in syms if (t := self.store.received_at(s, bar_end_ms)) is not None]
        return min(times) if times else None

    def _fire(self, rule: AlertRule, bar_ms: int, value: float, period_ms: int | None, force: bool = False) -> AlertEvent | None:
        fired_at = time.time()
        if not force and not self.is_leader():  # shadow: remember, do not record (the leader does)
            self._shadow.append((rule, bar_ms, value, period_ms, fired_at))
            log.debug("shadow alert %s at bar %s", rule.name, bar_ms)
            return None
        latency = None
        if period_ms is not None:
            recv = self._trigger_recv_ms(rule, bar_ms + period_ms)
            if recv is not None:
                latency = fired_at * 1000 - recv
                self.latencies_ms.append(latency)
        bar_iso = pd.Timestamp(bar_ms, unit="ms", tz="UTC").isoformat()
        # ids are fired-at microseconds (kept increasing here), never "the stored maximum + 1": another
        # process's alert can commit between reading that maximum and this insert (a dying leader's
        # writer still flushing), and an id conflict would silently drop this alert
        event_id = self._next_id = max(self._next_id, int(fired_at * 1_000_000))
        event = AlertEvent(
            id=event_id, rule_id=int(rule.id or 0), rule_name=rule.name, severity=rule.severity, fired_at=fired_at,
            bar_time=bar_ms, value=value, threshold=rule.threshold,
            message=f"{rule.name}: {rule.describe()} — value {value:.6g} at bar {bar_iso}", latency_ms=latency,
        )
        self._next_id += 1
        log.info("alert %s recorded at bar %s (value %.6g)", rule.name, bar_ms, value)
        with self._lock:
            self.events.append(event)
        self.store.writer.submit_sql(
            "INSERT OR IGNORE INTO alert_events (id, rule_id, fired_at, bar_time, value, threshold, severity, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
