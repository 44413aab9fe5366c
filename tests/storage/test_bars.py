"""Bars vs an independent pandas resample on real trades; incremental == full; pair alignment."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from storage.bars import align_pair, resample_ticks, timeframe_ms
from storage.store import TickStore
from storage.ticks import BATCH_DTYPE, TickBatch
from tests.recordings import trades_array


def _pandas_bars(arr: np.ndarray, rule: str) -> pd.DataFrame:
    df = pd.DataFrame(
        {"price": arr["price"], "qty": arr["qty"], "buy": np.where(arr["is_buyer_maker"], 0.0, arr["qty"]),
         "sell": np.where(arr["is_buyer_maker"], arr["qty"], 0.0), "pq": arr["price"] * arr["qty"]},
        index=pd.to_datetime(arr["trade_time"], unit="ms", utc=True),
    )
    r = df.resample(rule)
    out = pd.DataFrame(
        {
            "open": r["price"].first(), "high": r["price"].max(), "low": r["price"].min(), "close": r["price"].last(),
            "volume": r["qty"].sum(), "quote_volume": r["pq"].sum(), "trades": r["price"].count(),
            "taker_buy_volume": r["buy"].sum(), "taker_sell_volume": r["sell"].sum(),
        }
    )
    return out[out["trades"] > 0]


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
@pytest.mark.parametrize("rule,ours", [("1s", "1s"), ("1min", "1m"), ("5min", "5m")])
def test_bars_equal_pandas_resample_on_real_trades(data_dir, symbol, rule, ours):
    arr = trades_array(data_dir, symbol)
    bars = resample_ticks(arr["trade_time"], arr["price"], arr["qty"], arr["is_buyer_maker"], timeframe_ms(ours))
    ref = _pandas_bars(arr, rule)
    assert bars.index.equals(ref.index)
    for col in ("open", "high", "low", "close", "trades"):
        assert np.array_equal(bars[col].to_numpy(), ref[col].to_numpy()), col
    for col in ("volume", "quote_volume", "taker_buy_volume", "taker_sell_volume"):
        assert np.allclose(bars[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, atol=0), col
    assert np.allclose(bars["vwap"], ref["quote_volume"] / ref["volume"], rtol=1e-12)
    assert bars["closed"].iloc[:-1].all() and not bars["closed"].iloc[-1]


def test_fills_default_and_given_and_unsorted_input(data_dir):
    arr = trades_array(data_dir, "ETHUSDT")[:5000]
    fills = (np.arange(len(arr)) % 4 + 1).astype(np.int32)
    bars = resample_ticks(arr["trade_time"], arr["price"], arr["qty"], arr["is_buyer_maker"], 1000, fills)
    ref = pd.Series(fills, index=pd.to_datetime(arr["trade_time"], unit="ms", utc=True)).resample("1s").sum()
    assert np.array_equal(bars["fills"].to_numpy(), ref[ref > 0].to_numpy())
    no_fills = resample_ticks(arr["trade_time"], arr["price"], arr["qty"], arr["is_buyer_maker"], 1000)
    assert np.array_equal(no_fills["fills"].to_numpy(), no_fills["trades"].to_numpy())  # one fill per trade
    shuffled = arr["trade_time"].copy()
    shuffled[[10, 4000]] = shuffled[[4000, 10]]
    with pytest.raises(ValueError, match="sorted"):
        resample_ticks(shuffled, arr["price"], arr["qty"], arr["is_buyer_maker"], 1000)


def test_timeframe_parsing():
    assert timeframe_ms("1s") == 1000 and timeframe_ms("1m") == 60_000 and timeframe_ms("5min") == 300_000
    assert timeframe_ms("1h") == 3_600_000
    with pytest.raises(ValueError):
        timeframe_ms("1 fortnight")
    with pytest.raises(ValueError):
        timeframe_ms("0s")


@pytest.mark.parametrize("tf", ["1s", "1m", "5m", "15s"])
def test_incremental_bars_equal_full_recomputation(tmp_path, data_dir, tf):
    arr = trades_array(data_dir, "ETHUSDT")
    store = TickStore(tmp_path / "t.sqlite")
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, len(arr)), size=40, replace=False))
    prev = 0
    for cut in [*cuts.tolist(), len(arr)]:
        store.write(TickBatch("ETHUSDT", arr[prev:cut]))
        prev = cut
        inc = store.bars("ETHUSDT", tf)
        full = store.full_bars("ETHUSDT", tf)
        assert not inc["exchange"].any()  # every bar here was built from ticks
        pd.testing.assert_frame_equal(inc.drop(columns="exchange"), full, check_exact=True, check_freq=False)
    store.close()


def test_exchange_bars_fill_the_history_before_the_first_tick_bar(tmp_path, data_dir):
    from ingest.rest import klines_frame

    arr = trades_array(data_dir, "ETHUSDT")
    store = TickStore(tmp_path / "t.sqlite")
    store.write(TickBatch("ETHUSDT", arr))
    first_bar = (int(arr["trade_time"][0]) // 60_000) * 60_000
    rows = [[first_bar - (k + 1) * 60_000, "2600", "2610", "2590", "2605", "10", first_bar - k * 60_000 - 1, "26050", 7, "4", "10420", "0"]
            for k in range(5)][::-1]
    rows.append([first_bar, "1", "1", "1", "1", "1", first_bar + 59_999, "1", 1, "1", "1", "0"])  # overlaps the ticks: ignored
    store.seed_bars("ETHUSDT", 60_000, klines_frame(rows, now_ms=first_bar + 10**9))
    bars = store.bars("ETHUSDT", "1m")
    assert bars["exchange"].tolist()[:5] == [True] * 5 and not bars["exchange"].iloc[5:].any()
    assert bars.index[5] == pd.Timestamp(first_bar, unit="ms", tz="UTC")  # ticks win from their first bar on
    assert bars["taker_sell_volume"].iloc[0] == 6.0 and bars["trades"].iloc[0] == 7 and bars["closed"].iloc[:5].all()
    # a kline still forming when it was fetched is not shown
    assert len(klines_frame(rows[:1], now_ms=rows[0][6])) == 0
    store.close()


def test_align_pair_grid_ffill_limit_and_no_backfill():
    idx = pd.to_datetime(["2025-01-01 00:00:00", "2025-01-01 00:00:01", "2025-01-01 00:00:05"], utc=True)
    y = pd.DataFrame({"close": [1.0, 2.0, 3.0], "volume": 1.0, "trades": 1, "taker_buy_volume": 0.5, "taker_sell_volume": 0.5, "closed": True}, index=idx)
    x_idx = pd.to_datetime(["2025-01-01 00:00:01", "2025-01-01 00:00:02", "2025-01-01 00:00:03", "2025-01-01 00:00:04", "2025-01-01 00:00:05"], utc=True)
    x = pd.DataFrame({"close": [10.0, 11, 12, 13, 14], "volume": 2.0, "trades": 2, "taker_buy_volume": 1.0, "taker_sell_volume": 1.0, "closed": True}, index=x_idx)
    out = align_pair(y, x, 1000, ffill_limit=2)
    # starts where both exist (00:00:01), y carried for 2 bars then dropped at 00:00:04
    assert list(out.index.strftime("%S")) == ["01", "02", "03", "05"]
    assert list(out["close_y"]) == [2.0, 2.0, 2.0, 3.0]
    assert list(out["stale_y"]) == [False, True, True, False]
    assert list(out["volume_y"]) == [1.0, 0.0, 0.0, 1.0]
    assert list(out["closed"]) == [True, True, True, False]
    assert align_pair(y, x, 1000, as_of_ms=int(idx[-1].value // 10**6) + 1000)["closed"].all()


def test_align_pair_closes_only_what_the_data_clock_has_passed():
    """A bar one leg has ticks past is still open while the cut's clock has not passed its end."""
    idx = pd.date_range("2025-01-01", periods=6, freq="1s", tz="UTC")
    leg = pd.DataFrame({"close": 1.0, "volume": 1.0, "trades": 1, "taker_buy_volume": 0.5, "taker_sell_volume": 0.5, "closed": True}, index=idx)
    t0 = int(idx[0].value // 10**6)
    out = align_pair(leg, leg.iloc[:4], 1000, clock_ms=t0 + 3_500)
    assert list(out["closed"]) == [True, True, True, False, False, False]
    assert align_pair(leg, leg, 1000, clock_ms=t0 + 3_500, as_of_ms=t0 + 6_000)["closed"].all()


def _ticks(first_id: int, times_ms: list[int], price: float) -> np.ndarray:
    a = np.zeros(len(times_ms), dtype=BATCH_DTYPE)
    a["agg_id"] = a["first_id"] = a["last_id"] = np.arange(first_id, first_id + len(times_ms))
    a["trade_time"] = a["event_time"] = times_ms
    a["recv_time"], a["price"], a["qty"] = np.nan, price, 1.0
    return a


def test_a_pair_reader_never_sees_one_leg_of_an_atomic_delivery(tmp_path):
    """The alert engine read the legs one after the other while a delivery was half written: a bar
    closed with the late leg carried forward fired an alert the finished data does not have."""
    store = TickStore(tmp_path / "cut.sqlite", warm_start_hours=0)
    store.start(warm_start=False)
    t0 = 1_735_689_600_000
    store.write(TickBatch("YUSDT", _ticks(1, [t0 + 100, t0 + 1_100, t0 + 2_100], 10.0)))
    store.write(TickBatch("XUSDT", _ticks(1, [t0 + 200, t0 + 1_200, t0 + 2_200], 20.0)))
    seen: list[pd.DataFrame] = []
    reader = threading.Thread(target=lambda: seen.append(store.pair_bars("YUSDT", "XUSDT", "1s")))
    with store.atomic():  # one read from the feed: X traded at 4.2 s, then Y at 5.1 s
        store.write(TickBatch("YUSDT", _ticks(4, [t0 + 5_100], 11.0)))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive(), "the reader must wait for the whole delivery"
        store.write(TickBatch("XUSDT", _ticks(4, [t0 + 4_200], 22.0)))
    reader.join()
    frame = seen[0]
    bar4 = frame.loc[pd.Timestamp(t0 + 4_000, unit="ms", tz="UTC")]
    assert bar4["closed"] and bar4["close_x"] == 22.0 and not bar4["stale_x"]
    assert not frame["closed"].iloc[-1]
    store.close()
