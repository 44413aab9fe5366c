"""Time-aware statistics: stale legs, tick correlation on a time grid, the true warm-up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import PairParams, pair_analytics, pair_table, warmup_bars
from pairs import Timeframe
from pairs.frames import TICK_CORRELATION_GRID_MS, ffill_bars
from storage.bars import align_pair
from storage.store import TickStore
from storage.ticks import TickBatch
from tests.recordings import trades_array


def _bars_5m(close: pd.Series) -> pd.DataFrame:
    b = close.resample("5min").agg(["first", "max", "min", "last"]).dropna()
    out = pd.DataFrame({"open": b["first"], "high": b["max"], "low": b["min"], "close": b["last"], "volume": 1.0,
                        "trades": 1, "taker_buy_volume": 0.5, "taker_sell_volume": 0.5})
    out.index = out.index.tz_localize("UTC")
    return out


def test_a_quiet_leg_gets_no_z_instead_of_a_false_signal(minute_bars):
    """A leg forward-filled for 5 bars (25 minutes on 5m) made z +6.5 where it was +1.2."""
    btc, eth = minute_bars
    by, bx = _bars_5m(eth["close"].iloc[:20_000]), _bars_5m(btc["close"].iloc[:20_000])
    params = PairParams(window=60)
    full = pair_table(align_pair(by, bx, 300_000, ffill_limit=ffill_bars(Timeframe.M5, params)), params)
    # ETH stops trading for 5 bars while BTC moves: the forward-filled price is 25 minutes old
    moves = (bx["close"].pct_change().rolling(5).sum().abs()).iloc[200:]
    end = bx.index.get_loc(moves.idxmax())
    quiet = by.index[end - 4 : end + 1]
    gappy = align_pair(by.drop(quiet), bx, 300_000, ffill_limit=ffill_bars(Timeframe.M5, params))
    assert gappy.loc[quiet, "quiet_y_s"].tolist() == [300.0, 600.0, 900.0, 1200.0, 1500.0]
    unmasked = pair_analytics(gappy["close_y"], gappy["close_x"], params)  # what the old pipeline did
    masked = pair_table(gappy, params)
    assert masked.loc[quiet, "stale"].all() and masked.loc[quiet, "zscore"].isna().all()
    assert (unmasked.loc[quiet, "zscore"] - full.loc[quiet, "zscore"]).abs().max() > 1.0  # the stale price moved z
    # no signal starts on a stale bar: the position there is the one held before
    before = masked["signal"].iloc[gappy.index.get_loc(quiet[0]) - 1]
    assert (masked.loc[quiet, "signal"] == before).all()
    # elsewhere nothing changed but the hedge's own window
    pd.testing.assert_series_equal(masked["zscore"].iloc[:end - 10], full["zscore"].iloc[:end - 10])


def test_tick_correlation_is_measured_on_a_time_grid(tmp_path, data_dir):
    store = TickStore(tmp_path / "t.sqlite")
    store.start(warm_start=False)
    for s in ("ETHUSDT", "BTCUSDT"):
        store.write(TickBatch(s, trades_array(data_dir, s)))
    frame = store.pair_ticks("ETHUSDT", "BTCUSDT")
    store.close()
    params = PairParams(window=60)
    naive = pair_analytics(frame["close_y"], frame["close_x"], params)["correlation"]
    gridded = pair_table(frame, params, correlation_grid_ms=TICK_CORRELATION_GRID_MS)["correlation"]
    returns = frame["close_y"].pct_change()
    assert (returns == 0).mean() > 0.5  # most tick returns are zero ...
    assert abs(naive.dropna().median()) < 0.2  # ... so tick-return correlation says ~0
    assert gridded.dropna().median() > 0.5  # ETH and BTC 1 s returns do move together
    # the value at a tick is the correlation of the last completed 1 s bar before it: causal
    secs = frame["close_y"].resample("1s").last().ffill().pct_change().rolling(60).corr(
        frame["close_x"].resample("1s").last().ffill().pct_change())
    t = frame.index[-1]
    assert gridded.iloc[-1] == pytest.approx(secs.loc[: t.floor("1s") - pd.Timedelta("1s")].iloc[-1], rel=1e-12)


@pytest.mark.parametrize("params", [
    PairParams(window=100), PairParams(window=50, z_window=20), PairParams(window=30, z_window=80, z_method="ewma"),
    PairParams(window=40, method="Huber"), PairParams(method="Kalman"), PairParams(method="Kalman", formation_bars=120),
    PairParams(method="Kalman", kalman_delta=1e-8, kalman_obs_var=1e-7),
])
def test_warm_up_note_says_the_bars_z_really_needs(minute_bars, params):
    """The note said 102 bars for a 100-bar window while z first existed at about 2·window + 2."""
    btc, eth = minute_bars
    table = pair_analytics(eth["close"].iloc[:600], btc["close"].iloc[:600], params)
    first = int(np.argmax(table["zscore"].notna().to_numpy()))
    assert first + 1 == warmup_bars(params)
    shorter = pair_analytics(eth["close"].iloc[: first], btc["close"].iloc[: first], params)
    assert shorter["zscore"].isna().all()
