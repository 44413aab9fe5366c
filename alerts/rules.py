"""Alert rules as validated data, their SQLite persistence, and the pure evaluation step.

A rule watches one metric of a pair (z-score, spread, correlation, the
formation-window Engle-Granger p-value or half-life — see
:func:`analytics.pair_diagnostics`) or of a symbol (price, volume spike, data
staleness) on closed bars of one timeframe. Hysteresis: a level rule (``>``, ``<``, ``|x| >``) fires once when
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

from alerts.destinations import DestinationError, check_destination, mask_url
from pairs.timeframe import BAR_TIMEFRAMES

__all__ = ["COMPARISONS", "COMPARISON_LABELS", "METRICS", "METRIC_LABELS", "AlertRule", "RuleError", "RuleState", "RuleStore", "step"]

PAIR_METRICS = ("zscore", "spread", "correlation", "eg_pvalue", "half_life", "hedge_break")
# computed on the formation window ending at each bar; hedge_break = the CUSUM statistic of the OLS
# hedge there (peak |W_t| / its 5 % bound, analytics.stability): above 1, the hedge broke
DIAGNOSTIC_METRICS = ("eg_pvalue", "half_life", "hedge_break")
# rules saved by older versions: their "adf_pvalue" tested a rolling-hedge spread (stationary by
# construction); they now watch the formation-window Engle-Granger p-value instead
LEGACY_METRICS = {"adf_pvalue": "eg_pvalue"}
METRIC_LABELS = {
    "zscore": "z-score", "spread": "spread", "correlation": "correlation of returns", "eg_pvalue": "EG p (formation window)",
    "half_life": "half-life (bars)", "hedge_break": "hedge break (CUSUM / 5 % bound)", "price": "price", "volume_z": "volume z-score", "volume_ratio": "volume / average",
    "staleness_s": "seconds without a trade",
}
COMPARISON_LABELS = {">": ">", "<": "<", "crosses_above": "crosses above", "crosses_below": "crosses below", "abs_gt": "|value| >"}
SYMBOL_METRICS = ("price", "volume_z", "volume_ratio", "staleness_s")
METRICS = PAIR_METRICS + SYMBOL_METRICS
COMPARISONS = (">", "<", "crosses_above", "crosses_below", "abs_gt")
SEVERITIES = ("info", "warning", "critical")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


MASK = "***"


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
    kalman_delta: float | None = None  # None (and kalman_obs_var None): maximum likelihood, as the dashboard
    kalman_obs_var: float | None = None
    formation_bars: int = 2000
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
        if r.timeframe not in BAR_TIMEFRAMES:
            raise RuleError(f"timeframe: {r.timeframe!r} is not one of {', '.join(BAR_TIMEFRAMES)}")
        if not 3 <= int(r.window) <= 5000:
            raise RuleError("window: must be between 3 and 5000 bars")
        if r.severity not in SEVERITIES:
            raise RuleError(f"severity: {r.severity!r} is not one of {', '.join(SEVERITIES)}")
        if r.cooldown_s < 0:
            raise RuleError("cooldown_s: cannot be negative")
        if r.metric == "correlation" and r.comparison in (">", "<", "crosses_above", "crosses_below") and abs(r.threshold) > 1:
            raise RuleError("threshold: a correlation lies in [-1, 1], so this rule could never fire")
        if r.metric == "eg_pvalue" and not 0 <= r.threshold <= 1:
            raise RuleError("threshold: a p-value lies in [0, 1]")
        if r.metric == "half_life" and r.threshold < 0:
            raise RuleError("threshold: a half-life is never negative")
        if r.metric == "hedge_break" and r.threshold < 0:
            raise RuleError("threshold: the CUSUM ratio is never negative (above 1: the hedge broke)")
        if (r.kalman_delta is None) != (r.kalman_obs_var is None):
            raise RuleError("kalman_delta: give both Kalman δ and Ve, or neither (maximum likelihood)")
        if r.kalman_delta is not None and not 0 < float(r.kalman_delta) < 1:
            raise RuleError("kalman_delta: must lie in (0, 1)")
        if r.kalman_obs_var is not None and not float(r.kalman_obs_var) > 0:
            raise RuleError("kalman_obs_var: must be > 0")
        if not 100 <= int(r.formation_bars) <= 50_000:
            raise RuleError("formation_bars: must be between 100 and 50000 bars")
        if r.comparison == "abs_gt" and r.threshold < 0:
            raise RuleError("threshold: |x| > a negative number is always true")
        if r.metric == "staleness_s" and r.comparison not in (">", "abs_gt"):
            raise RuleError("comparison: staleness rules use '>' (seconds without a trade)")
        if r.webhook_url:
            u = urlparse(r.webhook_url)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise RuleError("webhook_url: must be an http(s) URL")
            if MASK in r.webhook_url:
                raise RuleError("webhook_url: this URL was masked on export; paste the real webhook URL")
        return replace(r, window=int(r.window), threshold=float(r.threshold), cooldown_s=float(r.cooldown_s),
                       formation_bars=int(r.formation_bars),
                       kalman_delta=None if r.kalman_delta is None else float(r.kalman_delta),
                       kalman_obs_var=None if r.kalman_obs_var is None else float(r.kalman_obs_var))

    @property
    def subject(self) -> str:
        return f"{self.symbol_y}/{self.symbol_x}" if self.metric in PAIR_METRICS else self.symbol

    def describe(self) -> str:
        op = COMPARISON_LABELS[self.comparison]
        return f"{self.subject} {METRIC_LABELS.get(self.metric, self.metric)} {op} {self.threshold:g} ({self.timeframe})"

    def pair_params(self):
        """The :class:`analytics.PairParams` this rule's pair metric is computed with (as on the dashboard)."""
        import analytics

        return analytics.PairParams(window=self.window, method=self.method, log_prices=self.log_prices,
                                    kalman_delta=self.kalman_delta, kalman_obs_var=self.kalman_obs_var,
                                    formation_bars=self.formation_bars)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> AlertRule:
        known = {f.name for f in fields(cls)}
        d = dict(d)
        if d.get("metric") in LEGACY_METRICS:
            d["metric"] = LEGACY_METRICS[d["metric"]]
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
    """CRUD for rules in the ``alert_rules`` table (rules survive restarts).

    Saving checks a webhook destination (:mod:`alerts.destinations`): a URL that
    resolves to a loopback, private, link-local or metadata address is refused
    unless its host is in ``webhook_allow_hosts``. Exports mask webhook URLs.
    """

    def __init__(self, conn_factory, webhook_allow_hosts: tuple[str, ...] = ()) -> None:
        self._conn = conn_factory
        self.webhook_allow_hosts = tuple(webhook_allow_hosts)

    def check(self, rule: AlertRule) -> AlertRule:
        """Validate the rule and its webhook destination (raises :class:`RuleError`)."""
        rule = rule.validate()
        if rule.webhook_url:
            try:
                check_destination(rule.webhook_url, self.webhook_allow_hosts, strict=False)
            except DestinationError as exc:
                raise RuleError(str(exc)) from None
        return rule

    def version(self) -> tuple:
        """Changes whenever a rule is added, edited or deleted (by any process sharing the database)."""
        return tuple(self._conn().execute("SELECT COUNT(*), COALESCE(MAX(updated_at), 0), COALESCE(SUM(id), 0) FROM alert_rules").fetchone())

    def list(self) -> list[AlertRule]:
        rows = self._conn().execute("SELECT id, rule_json FROM alert_rules ORDER BY id").fetchall()
        out = []
        for rid, text in rows:
            d = json.loads(text)
            d["id"] = rid
            out.append(AlertRule.from_dict(d))
        return out

    @staticmethod
    def _condition_key(r: AlertRule) -> tuple:
        return (r.metric, r.comparison, r.threshold, r.symbol_y, r.symbol_x, r.symbol, r.timeframe, r.window,
                r.method, r.log_prices, r.kalman_delta, r.kalman_obs_var, r.formation_bars)

    def duplicate_of(self, rule: AlertRule) -> str | None:
        """Why ``rule`` would duplicate a stored one (same name, or the same condition), else None."""
        for other in self.list():
            if other.id == rule.id:
                continue
            if other.name.strip().lower() == rule.name.strip().lower():
                return f"name: a rule named {other.name!r} exists already (#{other.id}); edit it or choose another name"
            if self._condition_key(other) == self._condition_key(rule):
                return f"an identical rule exists already: #{other.id} {other.name!r} ({other.describe()})"
        return None

    def save(self, rule: AlertRule) -> AlertRule:
        """Insert (``rule.id`` None) or update; refuses a rule that duplicates another (:meth:`duplicate_of`)."""
        rule = self.check(rule)
        dup = self.duplicate_of(rule)
        if dup is not None:
            raise RuleError(dup)
        body = json.dumps({k: v for k, v in rule.to_dict().items() if k != "id"})
        conn = self._conn()
        with conn:
            if rule.id is None:
                cur = conn.execute("INSERT INTO alert_rules (rule_json, created_at, updated_at) VALUES (?, ?, ?) RETURNING id",
                                   (body, time.time(), time.time()))
                rule = replace(rule, id=int(cur.fetchone()[0]))
            else:
                conn.execute("UPDATE alert_rules SET rule_json = ?, updated_at = ? WHERE id = ?", (body, time.time(), rule.id))
        return rule

    def delete(self, rule_id: int) -> None:
        conn = self._conn()
        with conn:
            conn.execute("DELETE FROM alert_rules WHERE id = ?", (rule_id,))

    def export_json(self) -> str:
        """Every rule as JSON, webhook URLs masked (they carry secrets; anyone with the page can export)."""
        out = []
        for r in self.list():
            d = {k: v for k, v in r.to_dict().items() if k != "id"}
            if d.get("webhook_url"):
                d["webhook_url"] = mask_url(str(d["webhook_url"]))
            out.append(d)
        return json.dumps(out, indent=2)

    def import_json(self, text: str) -> list[AlertRule]:
        """Validate every rule (and webhook destination) first; save all or none.

        A webhook URL masked by :meth:`export_json` is dropped (the rule imports
        without a webhook; ``self.last_import_notes`` says which)."""
        self.last_import_notes: list[str] = []
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
            d = {k: v for k, v in d.items() if k != "id"}
            if isinstance(d.get("webhook_url"), str) and MASK in d["webhook_url"]:
                d["webhook_url"] = ""
                self.last_import_notes.append(f"rule #{i + 1} ({str(d.get('name', ''))[:40]}): masked webhook URL dropped; set it again")
            try:
                rules.append(self.check(AlertRule.from_dict(d)))
            except RuleError as exc:
                raise RuleError(f"rule #{i + 1}: {exc}") from None
        names = [r.name.strip().lower() for r in rules]
        for i, r in enumerate(rules):
            if names.index(r.name.strip().lower()) != i:
                raise RuleError(f"rule #{i + 1}: the name {r.name!r} appears twice in this file")
            dup = self.duplicate_of(r)
            if dup is not None:
                raise RuleError(f"rule #{i + 1}: {dup}")
        return [self.save(r) for r in rules]
