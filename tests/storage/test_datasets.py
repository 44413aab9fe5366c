"""Uploaded datasets as sets of legs: add a leg, replace one, never lose another, migrate old files."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ingest.files import load_bytes
from storage.datasets import DatasetStore

BTC, ETH = "BTCUSDT_1m_2025-01-01_2025-02-04.csv", "ETHUSDT_1m_2025-01-01_2025-02-04.csv"


def _legs(data_dir, name: str, rows: int | None = None) -> dict:
    frames = load_bytes(name, (data_dir / name).read_bytes()).frames
    return {s: (f.iloc[:rows] if rows else f) for s, f in frames.items()}


def _stored_rows(path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT symbol, count(*) FROM dataset_bars GROUP BY symbol").fetchall())


def test_a_second_file_adds_its_leg_and_a_repeated_leg_replaces_only_itself(tmp_path, data_dir):
    db = tmp_path / "d.sqlite"
    store = DatasetStore(db)
    assert store.save("spot", "bars", _legs(data_dir, BTC), source=BTC) == 50_000
    assert store.save("spot", "bars", _legs(data_dir, ETH), source=ETH, mode="add") == 50_000
    info = store.info("spot")
    assert info["symbols"] == ["BTCUSDT", "ETHUSDT"] and info["rows"] == 100_000 and info["kind"] == "bars"
    assert BTC in info["source"] and ETH in info["source"]
    assert len(store.bars("spot", "BTCUSDT", "1m")) == 50_000 and len(store.bars("spot", "ETHUSDT", "5m")) == 10_000
    assert store.native_ms("spot") == 60_000
    # the BTC leg again, shorter: it replaces the BTC leg only; its old rows are gone, ETH untouched
    store.save("spot", "bars", _legs(data_dir, BTC, rows=1000), mode="add")
    assert _stored_rows(db) == {"BTCUSDT": 1000, "ETHUSDT": 50_000}
    assert store.info("spot")["rows"] == 51_000 and len(store.bars("spot", "BTCUSDT", "1m")) == 1000
    # ticks cannot be legs of a bars dataset: refused, nothing changed, nothing left behind
    with pytest.raises(ValueError, match="holds bars"):
        store.save("spot", "ticks", load_bytes("usdm_BTCUSDT_ETHUSDT_recording_20251216.csv",
                                              (data_dir / "usdm_BTCUSDT_ETHUSDT_recording_20251216.csv").read_bytes()).frames, mode="add")
    assert _stored_rows(db) == {"BTCUSDT": 1000, "ETHUSDT": 50_000}
    # replace (the default) drops every old leg
    store.save("spot", "bars", _legs(data_dir, ETH, rows=500))
    assert store.info("spot")["symbols"] == ["ETHUSDT"] and _stored_rows(db) == {"ETHUSDT": 500}
    assert store.delete("spot")["rows"] == 500 and _stored_rows(db) == {} and store.list().empty


def test_a_version_3_file_keeps_its_datasets(tmp_path, data_dir):
    """A database written before legs existed (schema v3) opens with every dataset and row intact."""
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as conn:
        from storage.sqlite import MIGRATIONS

        for script in MIGRATIONS[:3]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 3")
        conn.execute("INSERT INTO datasets (name, kind, source, created_at, rows, symbols, detail, storage_key) "
                     "VALUES ('old', 'bars', 'f.csv', 1.0, 3, ?, '', 'old#k')", (json.dumps(["BTCUSDT", "ETHUSDT"]),))
        conn.executemany("INSERT INTO dataset_bars VALUES ('old#k', ?, ?, 1, 1, 1, 1, 1)",
                         [("BTCUSDT", 0), ("BTCUSDT", 60_000), ("ETHUSDT", 0)])
    store = DatasetStore(db)
    assert store.info("old")["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert len(store.bars("old", "BTCUSDT", "1m")) == 2 and len(store.bars("old", "ETHUSDT", "1m")) == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT symbol, rows FROM dataset_legs ORDER BY symbol").fetchall() == [("BTCUSDT", 2), ("ETHUSDT", 1)]
    store.save("other", "bars", _legs(data_dir, ETH, rows=10))  # a save purges orphans: the old dataset's rows stay
    assert _stored_rows(db) == {"BTCUSDT": 2, "ETHUSDT": 11}
