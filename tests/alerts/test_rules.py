"""Rule validation, hysteresis/cooldown, persistence and webhook delivery."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts import AlertEngine, AlertEvent, AlertRule, RuleError, RuleState, WebhookSender, step
from storage.store import TickStore


def _z_rule(**kw) -> AlertRule:
    base = {"name": "z", "metric": "zscore", "comparison": "abs_gt", "threshold": 2.0, "symbol_y": "ETHUSDT", "symbol_x": "BTCUSDT"}
    return AlertRule(**{**base, **kw}).validate()


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"metric": "sharpe"}, "metric"),
        ({"comparison": ">="}, "comparison"),
        ({"symbol_x": "ETHUSDT"}, "symbol_x"),
        ({"symbol_y": ""}, "symbol_y"),
        ({"metric": "correlation", "comparison": ">", "threshold": 1.5}, "could never fire"),
        ({"metric": "eg_pvalue", "comparison": "<", "threshold": 5}, "p-value"),
        ({"metric": "half_life", "comparison": "<", "threshold": -1}, "half-life"),
        ({"method": "Kalman", "kalman_delta": 1e-8}, "kalman_delta"),
        ({"method": "Kalman", "kalman_delta": 2.0, "kalman_obs_var": 1e-7}, "kalman_delta"),
        ({"formation_bars": 10}, "formation_bars"),
        ({"threshold": float("nan")}, "threshold"),
        ({"timeframe": "7m"}, "timeframe"),
        ({"window": 1}, "window"),
        ({"cooldown_s": -1}, "cooldown_s"),
        ({"webhook_url": "ftp://hooks.example/x"}, "webhook_url"),
        ({"name": "  "}, "name"),
        ({"metric": "price", "symbol": ""}, "symbol"),
    ],
)
def test_impossible_rules_are_rejected_with_the_field_named(kw, field):
    with pytest.raises(RuleError, match=field):
        _z_rule(**kw)


def test_rule_json_round_trip_and_unknown_fields():
    r = _z_rule(severity="critical", cooldown_s=30)
    assert AlertRule.from_dict(r.to_dict()) == r
    k = _z_rule(method="Kalman", kalman_delta=1e-8, kalman_obs_var=1e-7)
    assert AlertRule.from_dict(json.loads(json.dumps(k.to_dict()))) == k
    assert k.pair_params().kalman_delta == 1e-8 and _z_rule(method="Kalman").pair_params().kalman_fitted
    with pytest.raises(RuleError, match="unknown"):
        AlertRule.from_dict({**r.to_dict(), "colour": "red"})


def test_legacy_adf_rules_become_engle_granger_rules():
    """Older rules watched the ADF p of a rolling-hedge spread (stationary by construction)."""
    old = {k: v for k, v in _z_rule().to_dict().items() if k not in ("kalman_delta", "kalman_obs_var", "formation_bars", "id")}
    migrated = AlertRule.from_dict({**old, "metric": "adf_pvalue", "comparison": "<", "threshold": 0.05})
    assert migrated.metric == "eg_pvalue" and migrated.describe() == "ETHUSDT/BTCUSDT EG p (formation window) < 0.05 (1m)"


def test_hysteresis_fires_once_and_rearms_after_false_and_cooldown():
    rule = _z_rule(threshold=2.0, cooldown_s=10)
    st = RuleState()
    values = [0.5, 2.5, 3.0, 2.8, 1.0, 2.6, 0.0, 0.0, 2.7, 2.9]
    times = [0, 1, 2, 3, 4, 5, 6, 12, 13, 14]
    fired = [t for v, t in zip(values, times, strict=True) if step(rule, st, v, t)]
    # fires at 1; stays quiet while above; false at 4 but cooldown (until 11) keeps it disarmed,
    # so 5 does not fire; false again at 12 (cooled) re-arms; fires at 13
    assert fired == [1, 13]


def test_crossing_rules_fire_per_crossing_with_cooldown():
    rule = _z_rule(comparison="crosses_above", threshold=1.0, cooldown_s=5)
    st = RuleState()
    values = [0.0, 1.5, 0.5, 1.2, 0.0, 0.0, 2.0]
    times = [0, 1, 2, 3, 4, 7, 8]
    assert [t for v, t in zip(values, times, strict=True) if step(rule, st, v, t)] == [1, 8]
    below = _z_rule(comparison="crosses_below", threshold=-1.0, cooldown_s=0)
    st2 = RuleState()
    assert [i for i, v in enumerate([0, -2, -0.5, -1.5, float("nan"), -3]) if step(below, st2, v, i)] == [1, 3]


def test_rules_and_events_survive_restart(tmp_path):
    store = TickStore(tmp_path / "a.sqlite")
    store.start()
    engine = AlertEngine(store)
    saved = engine.rules.save(_z_rule(name="persisted"))
    engine.reload_rules()
    ev = engine._fire(saved, 1_700_000_000_000, 2.5, None)
    assert store.writer.flush_now()
    exported = engine.rules.export_json()
    engine.stop()
    store.close()

    store2 = TickStore(tmp_path / "a.sqlite")
    store2.start()
    engine2 = AlertEngine(store2)
    engine2.start()
    assert [r.name for r in engine2.rules.list()] == ["persisted"]
    assert [e.message for e in engine2.events] == [ev.message]
    engine2.acknowledge(ev.id)
    assert engine2.events[-1].acknowledged
    assert store2.writer.flush_now()
    with sqlite3.connect(tmp_path / "a.sqlite") as db:  # stored too, not only in memory
        assert db.execute("SELECT acknowledged FROM alert_events WHERE id = ?", (ev.id,)).fetchone() == (1,)
    with pytest.raises(ValueError, match="cannot amend"):
        engine2._amend(ev.id, "message", "x")
    with pytest.raises(RuleError, match="rule #2"):
        engine2.rules.import_json(json.dumps([json.loads(exported)[0], {"name": "bad", "metric": "nope"}]))
    assert len(engine2.rules.list()) == 1  # all-or-nothing import
    with pytest.raises(RuleError, match="exists already"):  # importing a rule twice would fire it twice
        engine2.rules.import_json(exported)
    renamed = json.loads(exported)
    renamed[0].update(name="persisted too", threshold=3.0)
    engine2.rules.import_json(json.dumps(renamed))
    assert len(engine2.rules.list()) == 2
    engine2.stop()
    store2.close()


class _Hook:
    def __init__(self, script: list[int | str]) -> None:
        self.script = list(script)
        self.received: list[dict] = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                action = hook.script.pop(0) if hook.script else 200
                if action == "sleep":
                    time.sleep(1.5)
                    action = 200
                hook.received.append(body)
                self.send_response(int(action))
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


EVENT = AlertEvent(1, 1, "z", "critical", 0.0, 1_700_000_000_000, 2.5, 2.0, "z: ETHUSDT/BTCUSDT zscore |x| > 2")


@pytest.mark.parametrize(
    "script,expect",
    [([200], "delivered (HTTP 200, attempt 1)"), ([500, 200], "delivered (HTTP 200, attempt 2)"), (["sleep", "sleep", "sleep"], "failed after 3 attempts")],
)
def test_webhook_delivery(script, expect):
    hook = _Hook(script)
    sender = WebhookSender(attempts=3, timeout_s=0.5, backoff_s=0.05, allow_hosts=("127.0.0.1",))  # a loopback test endpoint
    status = sender.deliver(hook.url, EVENT)
    sender.stop()
    hook.close()
    assert status.startswith(expect)
    if "delivered" in expect:
        body = hook.received[-1]
        assert body["text"] == body["content"] == "[CRITICAL] " + EVENT.message
        assert body["alert"]["value"] == 2.5
