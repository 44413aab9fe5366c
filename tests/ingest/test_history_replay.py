"""data.binance.vision download (checksums, cache) against a local HTTP server; replay pacing."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest

from ingest.files import load_bytes
from ingest.history import HistoryError, download_days
from ingest.replay import ReplaySource, frames_to_ticks
from storage.store import TickStore
from tests.recordings import trades_array

DAY = dt.date(2026, 5, 8)


def test_download_verifies_checksum_caches_and_loads(vision, tmp_path):
    base, _files, hits, raw = vision
    paths = download_days(base, "btcusdt", DAY, DAY, tmp_path)
    assert [p.name for p in paths] == ["BTCUSDT-aggTrades-2026-05-08.zip"]
    loaded = load_bytes(paths[0].name, paths[0].read_bytes())
    assert len(loaded.frames["BTCUSDT"]) == raw.count(b"\n") - 1
    zips_before = sum(p.endswith(".zip") for p in hits)
    download_days(base, "BTCUSDT", DAY, DAY, tmp_path)  # cached and verified: only the checksum is fetched
    assert sum(p.endswith(".zip") for p in hits) == zips_before


def test_bad_checksum_is_rejected_and_nothing_is_kept(vision, tmp_path):
    base, files, _hits, _raw = vision
    key = next(k for k in files if k.endswith(".CHECKSUM"))
    files[key] = b"0" * 64 + b"  BTCUSDT-aggTrades-2026-05-08.zip\n"
    with pytest.raises(HistoryError, match="checksum mismatch"):
        download_days(base, "BTCUSDT", DAY, DAY, tmp_path)
    assert not list((tmp_path / "BTCUSDT").glob("*.zip"))


def test_missing_day_says_so(vision, tmp_path):
    base, *_ = vision
    with pytest.raises(HistoryError, match="not found"):
        download_days(base, "BTCUSDT", DAY, DAY + dt.timedelta(days=1), tmp_path)


@pytest.mark.parametrize("speed,span_s,low", [(10.0, 10.0, 0.8), (100.0, 60.0, 0.4), (None, 300.0, 0.0)])
def test_replay_speed_and_completeness(tmp_path, data_dir, speed, span_s, low):
    """Never faster than the speed asks (a loaded machine can only be slower; the pace is benchmarked:
    ``python -m benchmarks --only replay``), and every tick arrives."""
    arr = trades_array(data_dir, "ETHUSDT")
    cut = arr[arr["trade_time"] < arr["trade_time"][0] + span_s * 1000]
    import pandas as pd

    frames = {"ETHUSDT": pd.DataFrame({"trade_time": cut["trade_time"], "price": cut["price"], "qty": cut["qty"],
                                       "is_buyer_maker": cut["is_buyer_maker"], "agg_id": cut["agg_id"]})}
    store = TickStore(tmp_path / "r.sqlite")
    src = ReplaySource(store, frames_to_ticks(frames)[0], speed=speed)
    t0 = time.monotonic()
    src.start()
    while not src.done() and time.monotonic() - t0 < 120:  # liveness only
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    src.stop()
    assert elapsed >= low, elapsed
    assert np.array_equal(store.buffer.snapshot("ETHUSDT")["agg_id"], cut["agg_id"])
    store.close()


def test_replay_pause_and_resume(tmp_path, data_dir):
    arr = trades_array(data_dir, "BTCUSDT")
    import pandas as pd

    frames = {"BTCUSDT": pd.DataFrame({"trade_time": arr["trade_time"], "price": arr["price"], "qty": arr["qty"],
                                       "is_buyer_maker": arr["is_buyer_maker"], "agg_id": arr["agg_id"]})}
    store = TickStore(tmp_path / "r.sqlite")
    src = ReplaySource(store, frames_to_ticks(frames)[0], speed=20.0)
    src.start()
    time.sleep(0.5)
    src.pause()
    time.sleep(0.2)
    held = src.delivered
    time.sleep(0.6)
    assert src.delivered == held and 0 < held < src.total
    src.set_speed(None)
    src.resume()
    deadline = time.monotonic() + 20
    while not src.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    src.stop()
    assert src.done()
    store.close()
