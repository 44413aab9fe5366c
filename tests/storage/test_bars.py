"""Bars vs an independent pandas resample on real trades; incremental == full; pair alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storage.bars import align_pair, resample_ticks, timeframe_ms
from storage.store import TickStore
from storage.ticks import TickBatch
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
        pd.testing.assert_frame_equal(inc, full, check_exact=True, check_freq=False)
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
