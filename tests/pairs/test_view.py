"""The pair-view layer on real trades and real bars: tiles and notes as data, the same table wherever it is shown."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analytics import PairParams, pair_table
from ingest.files import load_bytes
from pairs import DatasetBars, LiveBars, Timeframe, pair_frame, pair_view
from storage.datasets import DatasetStore
from storage.store import TickStore
from storage.ticks import TickBatch
from tests.recordings import trades_array


@pytest.fixture
def live(tmp_path, data_dir):
    """The real BTC/ETH trades in a store, on a clock just after the last one (a live source)."""
    store = TickStore(tmp_path / "v.sqlite", max_age_s=10**9)
    store.start(warm_start=False)
    arrays = {s: trades_array(data_dir, s) for s in ("ETHUSDT", "BTCUSDT")}
    for s, a in arrays.items():
        store.write(TickBatch(s, a))
    end = int(max(a["trade_time"][-1] for a in arrays.values()))
    clock = {"now": end + 500}
    yield LiveBars(store, lambda: ("ETHUSDT", "BTCUSDT"), clock=lambda: clock["now"]), clock
    store.close()


def test_a_view_holds_the_table_its_tiles_and_no_note_when_live(live):
    source, _ = live
    params = PairParams(window=60)
    cache: dict = {}
    view = pair_view(source, "ETHUSDT", "BTCUSDT", Timeframe.S1, params, stale_after_s=30, cache=cache)
    assert view.table is not None and view.notes == () and not view.stale
    full = pair_table(pair_frame(source, "ETHUSDT", "BTCUSDT", Timeframe.S1, params).frame, params)
    pd.testing.assert_frame_equal(view.table, full)
    z = float(full["zscore"].iloc[-1])
    tile = view.tile("z")
    assert tile.value == f"{z:+.2f}" and tile.tone == ("red" if abs(z) >= 2 else "orange" if abs(z) >= 1 else "green")
    assert view.tile("price_y").value == f"{source.last_trade('ETHUSDT').price:,.2f}"
    assert view.tile("eg").value == f"{view.diag.eg_pvalue:.3f}"
    assert view.caption.startswith("Newest tick on screen: 2024-08-0") and "ETHUSDT #" in view.caption
    # only what the caller needs: the tail of OLS equals the full computation (to rounding: running sums)
    tail = pair_view(source, "ETHUSDT", "BTCUSDT", Timeframe.S1, params, stale_after_s=30, tail=50)
    pd.testing.assert_frame_equal(tail.table, full.iloc[-50:].drop(columns=["signal"]), check_exact=False, rtol=1e-9, atol=1e-12)
    assert "signal" not in tail.table  # a position depends on the whole history: a tail has none


def test_old_data_is_flagged_in_every_tile_and_note(live):
    source, clock = live
    clock["now"] += 125_000  # the exchange went quiet two minutes ago
    view = pair_view(source, "ETHUSDT", "BTCUSDT", Timeframe.S1, PairParams(window=60), stale_after_s=30)
    assert view.stale and view.tile("z").tone == "gray" and "old)" in view.tile("z").label
    assert any(n.level == "warning" and "Not live." in n.text for n in view.notes)
    assert view.tile("age").value == "2.1 min" or view.tile("age").value.endswith("min")


def test_collecting_says_how_long_in_time(live):
    source, _ = live
    view = pair_view(source, "ETHUSDT", "BTCUSDT", Timeframe.M1, PairParams(window=100), stale_after_s=30)
    assert view.table is not None and view.table["zscore"].isna().all() and view.needed == 201
    (note,) = [n for n in view.notes if n.level == "info"]
    more = (201 - view.rows) * 60
    assert f"{view.rows:,} of 201" in note.text and "about" in note.text
    assert note.text.endswith(f"{more / 3600:.1f} h more")  # 1m bars: hours, said in time, not bars
    assert view.tile("z").value == "—" and view.tile("z").tone == "gray"


def test_a_kalman_view_without_a_fit_says_why(live, data_dir):
    """X never moves: the view says the filter has no fit yet (a 1 s Kalman view used to stay blank, silently)."""
    source, _ = live
    flat = trades_array(data_dir, "BTCUSDT")  # the real BTC trade times and sizes, at one price
    flat["price"] = flat["price"][0]
    source.store.write(TickBatch("FLATUSDT", flat))
    view = pair_view(source, "ETHUSDT", "FLATUSDT", Timeframe.S1, PairParams(method="Kalman"), stale_after_s=1e9)
    assert view.table is not None and view.table["zscore"].isna().all()
    assert any("Kalman filter has not been fitted" in n.text for n in view.notes)


def test_a_dataset_of_minute_bars_is_shown_at_1m_whatever_was_asked(tmp_path, data_dir):
    store = DatasetStore(tmp_path / "d.sqlite")
    frames = {}
    for name in ("BTCUSDT_1m_2025-01-01_2025-02-04.csv", "ETHUSDT_1m_2025-01-01_2025-02-04.csv"):
        frames.update(load_bytes(name, (data_dir / name).read_bytes()).frames)
    store.save("spot", "bars", frames)
    source = DatasetBars(store, "spot")
    assert source.effective(Timeframe.TICK) is Timeframe.M1 and source.effective(Timeframe.M5) is Timeframe.M5
    view = pair_view(source, "ETHUSDT", "BTCUSDT", Timeframe.S1, PairParams(window=120), stale_after_s=60)
    assert view.timeframe is Timeframe.M1 and view.rows == 50_000 and len(view.table) == 50_000
    assert not view.stale and view.age_s is None  # a dataset is never "old"
    assert math.isfinite(view.table["zscore"].iloc[-1])
    assert view.tile("row").value == "2025-02-04 20:19" or view.tile("row").value == "20:19:00"
