"""One storage contract, both backends: SQLite (embedded) and PostgreSQL (a real server on loopback).

Every test takes the ``store_factory`` fixture, parametrised over the backends: it opens a
:class:`storage.store.TickStore` on the same database each time it is called (a restart).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from alerts import AlertEngine, AlertRule, RuleError
from storage.store import DB_ERRORS, GapRecord, TickStore
from storage.ticks import TickBatch
from tests.recordings import trades_array


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(request, tmp_path):
    opened: list[TickStore] = []

    def make(**kw) -> TickStore:
        if request.param == "postgresql":
            url = request.getfixturevalue("pg_url")
            store = TickStore(tmp_path / "uploads.sqlite", database_url=url, **kw)
        else:
            store = TickStore(tmp_path / "ticks.sqlite", **kw)
        store.start()
        opened.append(store)
        return store

    make.backend = request.param
    yield make
    for s in opened:
        s.close()


def _recent(data_dir, symbol: str) -> np.ndarray:
    """The real recording, shifted so its last trade is a minute old (inside the warm start)."""
    arr = trades_array(data_dir, symbol).copy()
    shift = int(time.time() * 1000) - 60_000 - int(arr["trade_time"][-1])
    for col in ("trade_time", "event_time"):
        arr[col] += shift
    arr["recv_time"] = arr["event_time"] + 3.125
    return arr


def test_ticks_round_trip_exactly_and_replays_are_harmless(store_factory, data_dir):
    btc, eth = _recent(data_dir, "BTCUSDT"), _recent(data_dir, "ETHUSDT")
    store = store_factory()
    assert store.writer_ok(), store.writer.status.message
    for i in range(0, len(btc), 700):
        store.write(TickBatch("BTCUSDT", btc[i : i + 700]))
    store.write(TickBatch("ETHUSDT", eth))
    store.writer.submit(TickBatch("BTCUSDT", btc[100:2000]))  # a reconnect/backfill overlap, straight to the database
    assert store.writer.flush_now(30)
    store.close()

    again = store_factory()  # a restart: warm start from the database
    assert again.reader.last_agg_ids() == {"BTCUSDT": int(btc["agg_id"][-1]), "ETHUSDT": int(eth["agg_id"][-1])}
    assert again.reader.count_ticks() == len(btc) + len(eth)
    assert again.status().rows_stored == len(btc) + len(eth)
    stored = again.reader.load_batch("BTCUSDT").data
    assert len(stored) == len(btc)
    for col in ("agg_id", "trade_time", "event_time", "price", "qty", "first_id", "last_id", "is_buyer_maker"):
        assert np.array_equal(stored[col], btc[col]), col  # float64 prices/sizes bit for bit
    assert np.allclose(stored["recv_time"], btc["recv_time"], rtol=0, atol=1e-3)
    # memory was refilled from the database: the same bars as before the restart
    assert again.buffer.buffer("ETHUSDT").last_agg_id() == int(eth["agg_id"][-1])
    assert again.last_agg_id("BTCUSDT") == int(btc["agg_id"][-1])
    newest = again.reader.load_batch("BTCUSDT", limit=10).data["agg_id"]
    assert list(newest) == list(btc["agg_id"][-10:])
    window = again.reader.load_batch("ETHUSDT", int(eth["trade_time"][100]), int(eth["trade_time"][200])).data
    expected = eth[(eth["trade_time"] >= eth["trade_time"][100]) & (eth["trade_time"] < eth["trade_time"][200])]
    assert np.array_equal(window["agg_id"], expected["agg_id"])


def test_gaps_and_universe_survive_a_restart(store_factory):
    store = store_factory()
    pending = GapRecord("BTCUSDT", 100, 180, 1_700_000_000_000, 1_700_000_001_000, "pending", 0, "writer dropped it")
    store.record_gap(pending)
    store.record_gap(GapRecord("ETHUSDT", 5, 9, None, None, "unfillable", 0, "older than REST history"))
    store.add_universe_symbols(["SOLUSDT", "XRPUSDT"], "added from the dashboard")
    assert store.writer.flush_now(10)
    store.close()

    again = store_factory()
    assert [(g.from_agg_id, g.to_agg_id) for g in again.pending_gaps("BTCUSDT")] == [(100, 180)]
    assert {g.status for g in again.status().gaps} == {"pending", "unfillable"}
    assert again.universe_symbols()[:2] == ["SOLUSDT", "XRPUSDT"]
    again.resolve_gap(again.pending_gaps("BTCUSDT")[0], "filled", 81, "backfilled over REST")
    assert again.writer.flush_now(10)
    again.close()

    third = store_factory()
    assert third.pending_gaps("BTCUSDT") == []
    assert any(g.status == "filled" and g.filled == 81 for g in third.status().gaps)


def test_alert_rules_and_events_are_shared_through_the_database(store_factory, data_dir):
    store = store_factory()
    engine = AlertEngine(store)
    rule = engine.rules.save(AlertRule(name="btc trades", metric="price", comparison=">", threshold=0.0, symbol="BTCUSDT",
                                       timeframe="1s", window=3, cooldown_s=0))
    assert rule.id is not None
    with pytest.raises(RuleError, match="exists already"):
        engine.rules.save(AlertRule(name="BTC trades", metric="price", comparison="<", threshold=1.0, symbol="BTCUSDT"))
    edited = engine.rules.save(AlertRule(**{**rule.to_dict(), "threshold": 1.0, "id": rule.id}))
    assert [r.threshold for r in engine.rules.list()] == [1.0]
    version = engine.rules.version()
    engine.start()
    btc = _recent(data_dir, "BTCUSDT")
    store.write(TickBatch("BTCUSDT", btc[:3000]))
    deadline = time.monotonic() + 30
    while not engine.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.rule_id for e in engine.events] == [edited.id]  # price > 1 fires once per excursion
    engine.acknowledge(engine.events[0].id)
    engine.stop()
    assert store.writer.flush_now(10)
    store.close()

    again = store_factory()
    other = AlertEngine(again)
    assert other.rules.version() == version
    other.start()
    assert [(e.rule_name, e.acknowledged) for e in other.events] == [("btc trades", True)]
    other.rules.delete(edited.id)
    assert other.rules.list() == [] and other.rules.version() != version
    other.stop()


def test_sql_transactions_roll_back_together(store_factory):
    store = store_factory()
    conn = store.sql()
    with pytest.raises(DB_ERRORS), conn:  # either backend's integrity error
        conn.execute("INSERT INTO alert_rules (rule_json, created_at, updated_at) VALUES (?, ?, ?)", ("{}", 1.0, 1.0))
        conn.execute("INSERT INTO alert_rules (rule_json, created_at, updated_at) VALUES (?, ?, ?)", (None, 1.0, 1.0))  # NOT NULL
    assert conn.execute("SELECT COUNT(*) FROM alert_rules").fetchone()[0] == 0
