"""File loading: every real format, validation messages, and fuzzed malformed CSVs."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.files import FileFormatError, load_bytes, merge_loaded
from storage.datasets import DatasetStore

AGG = "BTCUSD_PERP-aggTrades-2026-05-08.csv"


def _read(data_dir, name) -> bytes:
    return (data_dir / name).read_bytes()


def test_aggtrades_with_and_without_header_and_zip(data_dir):
    raw = _read(data_dir, AGG)
    ref = pd.read_csv(data_dir / AGG)
    with_header = load_bytes(AGG, raw)
    no_header = load_bytes(AGG, raw.split(b"\n", 1)[1])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(AGG, raw)
    zipped = load_bytes(AGG.replace(".csv", ".zip"), buf.getvalue())
    for loaded, fmt in ((with_header, "with header"), (no_header, "no header"), (zipped, "with header")):
        assert loaded.kind == "ticks" and fmt in loaded.report.format
        df = loaded.frames["BTCUSD_PERP"]
        assert len(df) == len(ref)
        assert np.array_equal(df["agg_id"], ref["agg_trade_id"]) and np.array_equal(df["price"], ref["price"])
        assert np.array_equal(df["trade_time"], ref["transact_time"])
        assert np.array_equal(df["is_buyer_maker"], ref["is_buyer_maker"])


def test_microsecond_timestamps_detected(data_dir):
    ref = pd.read_csv(data_dir / AGG).head(1000)
    ref["transact_time"] = ref["transact_time"] * 1000
    loaded = load_bytes(AGG, ref.to_csv(index=False).encode())
    assert "µs" in loaded.report.summary()
    assert loaded.frames["BTCUSD_PERP"]["trade_time"].iloc[0] == ref["transact_time"].iloc[0] // 1000


def test_binance_trades_file(data_dir):
    name = "usdm_ETHUSDT_trades_20240808T235416Z_20240809T000000Z.csv"
    loaded = load_bytes(name, _read(data_dir, name))
    ref = pd.read_csv(data_dir / name)
    df = loaded.frames["ETHUSDT"]
    assert loaded.report.format == "Binance trades" and len(df) == len(ref)
    assert np.array_equal(df["is_buyer_maker"], ref["is_buyer_maker"])


def test_files_of_one_symbol_merge_in_time_order_without_losing_or_repeating_rows(data_dir):
    """Two files of the same symbol (overlapping by 500 trades, given in reverse
    order) make one dataset equal to loading the whole file once."""
    header, *lines = _read(data_dir, AGG).split(b"\n")
    lines = [ln for ln in lines if ln]
    half = len(lines) // 2
    first = load_bytes(AGG, b"\n".join([header, *lines[: half + 500]]))
    second = load_bytes(AGG, b"\n".join([header, *lines[half:]]))
    whole = load_bytes(AGG, _read(data_dir, AGG))
    merged = merge_loaded([second, first])
    df, ref = merged.frames["BTCUSD_PERP"], whole.frames["BTCUSD_PERP"]
    assert len(df) == len(ref) and merged.report.rows_kept == len(ref)
    for col in ("agg_id", "trade_time", "price", "qty", "is_buyer_maker"):
        assert np.array_equal(df[col], ref[col]), col
    assert merged.report.dropped_duplicates == 500 and "500 duplicate rows dropped" in merged.report.summary()
    assert merge_loaded([first]) is first
    bars = load_bytes("ETHUSDT_1m_2025-01-01_2025-02-04.csv", _read(data_dir, "ETHUSDT_1m_2025-01-01_2025-02-04.csv"))
    with pytest.raises(FileFormatError, match="cannot mix"):
        merge_loaded([first, bars])


def test_minute_bars_file(data_dir):
    name = "ETHUSDT_1m_2025-01-01_2025-02-04.csv"
    loaded = load_bytes(name, _read(data_dir, name))
    assert loaded.kind == "bars" and len(loaded.frames["ETHUSDT"]) == 50_000
    assert "taken as UTC" in loaded.report.summary()
    assert loaded.frames["ETHUSDT"]["bar_time"].iloc[0] == pd.Timestamp("2025-01-01 03:00", tz="UTC").value // 10**6


def test_dirty_live_recording_drops_price_zero_rows_with_a_count(data_dir):
    name = "usdm_BTCUSDT_ETHUSDT_recording_20251216.csv"
    loaded = load_bytes(name, _read(data_dir, name))
    assert loaded.report.dropped_nonpositive == 63
    assert set(loaded.frames) == {"BTCUSDT", "ETHUSDT"}
    assert "63 rows with zero/negative price dropped" in loaded.report.summary()
    assert all((f["price"] > 0).all() for f in loaded.frames.values())


def test_ndjson_built_from_the_trades(data_dir):
    t = pd.read_csv(data_dir / "usdm_BTCUSDT_trades_20240808T235416Z_20240808T235959Z.csv")
    lines = "\n".join(json.dumps({"symbol": "BTCUSDT", "ts": int(r.transact_time), "price": float(r.price), "size": float(r.quantity)}) for r in t.itertuples())
    loaded = load_bytes("trades.ndjson", lines.encode())
    assert loaded.report.format == "NDJSON ticks"
    assert np.allclose(loaded.frames["BTCUSDT"]["price"], t["price"])


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty"),
        ("timestamp,price,size\n", "no data rows"),
        ("timestamp,price,size\n2025-01-01T00:00:00Z,abc,1\n", "line 2: column 'price': expected a number, got 'abc'"),
        ("timestamp,price,size\nyesterday,1,1\n", "line 2: column 'timestamp': cannot read 'yesterday'"),
        ("timestamp,price,size\n2025-01-01T00:00:00Z,1,\n", "line 2: column 'size': value missing"),
        ("foo,bar\n1,2\n", "unrecognised columns"),
        ("a,b,c\n1,2,3\n", "unrecognised columns"),
        ("1,2,3\n", "no header and 3 columns"),
    ],
)
def test_bad_files_get_specific_messages(text, message):
    with pytest.raises(FileFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_bytes("BTCUSDT-ticks.csv", text.encode())


def test_unsorted_duplicates_mixed_timezones_and_symbol_rules():
    text = (
        "timestamp,price,size\n2025-01-01T00:00:05Z,3,1\n2025-01-01T00:00:02+01:00,2,1\n2025-01-01T00:00:01Z,1,1\n"
        "2025-01-01T00:00:01Z,1,1\n2025-01-01T00:00:03Z,0,1\n"
    )
    loaded = load_bytes("SOLUSDT.csv", text.encode())
    s = loaded.report.summary()
    assert "sorted" in s and "mixed timezones" in s and "zero/negative" in s and "1 identical rows kept" in s
    # 00:00:02+01:00 is 23:00:02 UTC the day before, so it comes first
    assert list(loaded.frames["SOLUSDT"]["price"]) == [2.0, 1.0, 1.0, 3.0]
    with_ids = load_bytes("SOLUSDT.csv", b"trade_id,timestamp,price,qty\n7,1700000000000,1,1\n7,1700000000000,1,1\n8,1700000000001,2,1\n")
    assert with_ids.report.dropped_duplicates == 1 and "1 duplicate rows dropped" in with_ids.report.summary()
    with pytest.raises(FileFormatError, match="cannot tell the symbol"):
        load_bytes("ticks.csv", b"timestamp,price,size\n1700000000000,1,1\n")
    assert set(load_bytes("ticks.csv", b"timestamp,price,size\n1700000000000,1,1\n", symbol="btcusdt").frames) == {"BTCUSDT"}
    with pytest.raises(FileFormatError, match="over the"):
        load_bytes("x.csv", b"x" * 100, max_bytes=10)


cells = st.one_of(st.text(max_size=12), st.integers(-10**16, 10**16).map(str), st.floats(allow_nan=True).map(str), st.sampled_from(["", "true", "nan", "-1", "0", "1e400", "2025-13-45", ";", '"', "\x00"]))
headers = st.sampled_from([
    "timestamp,price,size", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    "timestamp,open,high,low,close,volume", "symbol,transact_time,price,size", "", "id,price,qty,quote_qty,time,is_buyer_maker",
])


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=headers, rows=st.lists(st.lists(cells, min_size=0, max_size=8), max_size=6), junk=st.binary(max_size=30))
@example(header="timestamp,price,size", rows=[['"', "1", '"']], junk=b"")  # found by this test: a time in year 1
def test_fuzzed_malformed_csv_never_raises_anything_else(header, rows, junk):
    text = header + "\n" + "\n".join(",".join(r) for r in rows)
    for data in (text.encode("utf-8", errors="replace"), text.encode("utf-8", errors="replace") + junk):
        try:
            loaded = load_bytes("BTCUSDT-fuzz.csv", data)
        except FileFormatError as exc:
            assert str(exc)
        else:
            assert loaded.report.rows_kept > 0


def test_dataset_store_round_trip_and_timeframes(tmp_path, data_dir):
    store = DatasetStore(tmp_path / "d.sqlite")
    btc = load_bytes("BTCUSDT_1m.csv", _read(data_dir, "BTCUSDT_1m_2025-01-01_2025-02-04.csv")).frames
    eth = load_bytes("ETHUSDT_1m.csv", _read(data_dir, "ETHUSDT_1m_2025-01-01_2025-02-04.csv")).frames
    assert store.save("spot-1m", "bars", {**btc, **eth}, source="two files") == 100_000
    assert store.list()["name"].tolist() == ["spot-1m"]
    five = store.bars("spot-1m", "ETHUSDT", "5m")
    assert len(five) == 10_000 and five["closed"].all()
    with pytest.raises(ValueError, match="at least"):
        store.bars("spot-1m", "ETHUSDT", "1s")
    ticks = load_bytes(AGG, _read(data_dir, AGG))
    store.save("coinm", "ticks", ticks.frames)
    assert len(store.bars("coinm", "BTCUSD_PERP", "1m")) > 1000
    store.delete("spot-1m")
    assert store.list()["name"].tolist() == ["coinm"]


def test_websocket_recording_jsonl_loads_every_trade(data_dir):
    name = "usdm_ETHUSDT_trades_20240808T235416Z_20240809T000000Z.ws.jsonl"
    loaded = load_bytes(name, _read(data_dir, name))
    ref = pd.read_csv(data_dir / "usdm_ETHUSDT_trades_20240808T235416Z_20240809T000000Z.csv")
    df = loaded.frames["ETHUSDT"]
    assert loaded.report.format == "WebSocket recording (JSON lines)"
    assert np.array_equal(df["agg_id"], ref["trade_id"]) and np.array_equal(df["price"], ref["price"])
    assert np.array_equal(df["is_buyer_maker"], ref["is_buyer_maker"])
