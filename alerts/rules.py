"""Alert rules as validated data, their SQLite persistence, and the pure evaluation step.

A rule watches one metric of a pair (z-score, spread, correlation, ADF p-value)
or of a symbol (price, volume spike, data staleness) on closed bars of one
timeframe. Hysteresis: a level rule (``>``, ``<``, ``|x| >``) fires once when
its condition becomes true and re-arms only after the condition was false
again **and** ``cooldown_s`` has passed since it fired. Crossing rules fire on
each crossing, at most once per cooldown.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields, replace
from urllib.parse import urlparse

__all__ = ["COMPARISONS", "METRICS", "AlertRule", "RuleError", "RuleState", "RuleStore", "step"]

PAIR_METRICS = ("zscore", "spread", "correlation", "adf_pvalue")
SYMBOL_METRICS = ("price", "volume_z", "volume_ratio", "staleness_s")
METRICS = PAIR_METRICS + SYMBOL_METRICS
COMPARISONS = (">", "<", "crosses_above", "crosses_below", "abs_gt")
SEVERITIES = ("info", "warning", "critical")
TIMEFRAMES = ("1s", "1m", "5m")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


class RuleError(ValueError):
    """An impossible or malformed rule; the message says which field and why."""


@dataclass(frozen=True)
class AlertRule:
    """One alert rule (see the module docstring for the firing semantics)."""

    name: str
    metric: str
    comparison: str
    threshold: float
    symbol_y: str = ""
    symbol_x: str = ""
    symbol: str = ""
    timeframe: str = "1m"
    window: int = 100
    method: str = "OLS"
    log_prices: bool = True
    severity: str = "warning"
    cooldown_s: float = 60.0
    enabled: bool = True
    webhook_url: str = ""
    id: int | None = field(default=None, compare=False)

    def validate(self) -> AlertRule:
        """Return a normalised copy or raise :class:`RuleError`."""
        r = replace(self, symbol_y=self.symbol_y.upper().strip(), symbol_x=self.symbol_x.upper().strip(), symbol=self.symbol.upper().strip())
        if not r.name.strip():
            raise RuleError("name: give the rule a name")
        if r.metric not in METRICS:
            raise RuleError(f"metric: {r.metric!r} is not one of {', '.join(METRICS)}")
        if r.comparison not in COMPARISONS:
            raise RuleError(f"comparison: {r.comparison!r} is not one of {', '.join(COMPARISONS)}")
        if not isinstance(r.threshold, int | float) or not math.isfinite(r.threshold):
            raise RuleError("threshold: must be a finite number")
        if r.metric in PAIR_METRICS:
            for f_name in ("symbol_y", "symbol_x"):
                if not _SYMBOL.match(getattr(r, f_name)):
                    raise RuleError(f"{f_name}: a pair metric needs two symbols (e.g. ETHUSDT and BTCUSDT)")
            if r.symbol_y == r.symbol_x:
                raise RuleError("symbol_x: must differ from symbol_y")
            if r.method not in ("OLS", "Kalman", "Huber"):
                raise RuleError(f"method: {r.method!r} is not OLS, Kalman or Huber")
        elif not _SYMBOL.match(r.symbol):
            raise RuleError(f"symbol: the metric {r.metric} needs one symbol (e.g. BTCUSDT)")
        if r.timeframe not in TIMEFRAMES:
            raise RuleError(f"timeframe: {r.timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
        if not 3 <= int(r.window) <= 5000:
            raise RuleError("window: must be between 3 and 5000 bars")
        if r.severity not in SEVERITIES:
            raise RuleError(f"severity: {r.severity!r} is not one of {', '.join(SEVERITIES)}")
        if r.cooldown_s < 0:
            raise RuleError("cooldown_s: cannot be negative")
        if r.metric == "correlation" and r.comparison in (">", "<", "crosses_above", "crosses_below") and abs(r.threshold) > 1:
            raise RuleError("threshold: a correlation lies in [-1, 1], so this rule could never fire")
        if r.metric == "adf_pvalue" and not 0 <= r.threshold <= 1:
            raise RuleError("threshold: a p-value lies in [0, 1]")
        if r.comparison == "abs_gt" and r.threshold < 0:
            raise RuleError("threshold: |x| > a negative number is always true")
        if r.metric == "staleness_s" and r.comparison not in (">", "abs_gt"):
            raise RuleError("comparison: staleness rules use '>' (seconds without a trade)")
        if r.webhook_url:
            u = urlparse(r.webhook_url)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise RuleError("webhook_url: must be an http(s) URL")
        return replace(r, window=int(r.window), threshold=float(r.threshold), cooldown_s=float(r.cooldown_s))

    @property
    def subject(self) -> str:
        return f"{self.symbol_y}/{self.symbol_x}" if self.metric in PAIR_METRICS else self.symbol

    def describe(self) -> str:
        op = {">": ">", "<": "<", "crosses_above": "crosses above", "crosses_below": "crosses below", "abs_gt": "|x| >"}[self.comparison]
        return f"{self.subject} {self.metric} {op} {self.threshold:g} ({self.timeframe})"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> AlertRule:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise RuleError(f"unknown field(s) {sorted(unknown)}")
        try:
            return cls(**d).validate()  # type: ignore[arg-type]
        except TypeError as exc:
            raise RuleError(str(exc)) from None


@dataclass
class RuleState:
    """Per-rule evaluation state: armed flag, last fire time, last value and bar seen."""

    armed: bool = True
    last_fired: float | None = None
    prev_value: float | None = None
    last_bar_ms: int | None = None
    first_bar_ms: int | None = None  # the first bar this rule judged (history before it is not replayed)


def _condition(rule: AlertRule, value: float, prev: float | None) -> bool:
    c, t = rule.comparison, rule.threshold
    if c == ">":
        return value > t
    if c == "<":
        return value < t
    if c == "abs_gt":
        return abs(value) > t
    if prev is None or not math.isfinite(prev):
        return False
    if c == "crosses_above":
        return prev <= t < value
    return prev >= t > value


def step(rule: AlertRule, state: RuleState, value: float, now: float) -> bool:
    """Advance the rule by one observation; True when it fires (pure apart from ``state``)."""
    if not math.isfinite(value):
        return False
    cond = _condition(rule, value, state.prev_value)
    state.prev_value = value
    cooled = state.last_fired is None or now - state.last_fired >= rule.cooldown_s
    if rule.comparison in ("crosses_above", "crosses_below"):
        if cond and cooled:
            state.last_fired = now
            return True
        return False
    if not cond:
        if cooled:
            state.armed = True
        return False
    if state.armed and cooled:
        state.armed = False
        state.last_fired = now
        return True
    return False


class RuleStore:
    """CRUD for rules in the ``alert_rules`` table (rules survive restarts)."""

    def __init__(self, conn_factory) -> None:
        self._conn = conn_factory

    def list(self) -> list[AlertRule]:
        rows = self._conn().execute("SELECT id, rule_json FROM alert_rules ORDER BY id").fetchall()
        out = []
        for rid, text in rows:
            d = json.loads(text)
            d["id"] = rid
            out.append(AlertRule.from_dict(d))
        return out

    def save(self, rule: AlertRule) -> AlertRule:
        rule = rule.validate()
        body = json.dumps({k: v for k, v in rule.to_dict().items() if k != "id"})
        conn = self._conn()
        with conn:
            if rule.id is None:
                cur = conn.execute("INSERT INTO alert_rules (rule_json, created_at, updated_at) VALUES (?, ?, ?)", (body, time.time(), time.time()))
                rule = replace(rule, id=cur.lastrowid)
            else:
                conn.execute("UPDATE alert_rules SET rule_json = ?, updated_at = ? WHERE id = ?", (body, time.time(), rule.id))
        return rule

    def delete(self, rule_id: int) -> None:
        conn = self._conn()
        with conn:
            conn.execute("DELETE FROM alert_rules WHERE id = ?", (rule_id,))

    def export_json(self) -> str:
        return json.dumps([{k: v for k, v in r.to_dict().items() if k != "id"} for r in self.list()], indent=2)

    def import_json(self, text: str) -> list[AlertRule]:
        """Validate every rule first; save all or none."""
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RuleError(f"not valid JSON: {exc}") from None
        if not isinstance(items, list):
            raise RuleError("expected a JSON list of rules")
        rules = []
        for i, d in enumerate(items):
            if not isinstance(d, dict):
                raise RuleError(f"rule #{i + 1}: expected an object")
            try:
                rules.append(AlertRule.from_dict({k: v for k, v in d.items() if k != "id"}))
            except RuleError as exc:
                raise RuleError(f"rule #{i + 1}: {exc}") from None
        return [self.save(r) for r in rules]
