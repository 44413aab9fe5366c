"""Chart specs are plain dicts: Plotly's own validator is the oracle that they are
valid figures, and the JSON carries exactly the table's values and UTC times."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ui import charts


@pytest.fixture
def table() -> pd.DataFrame:
    idx = pd.date_range("2025-01-01 00:00", periods=50, freq="1s", tz="UTC")
    rng = np.random.default_rng(0)
    z = np.concatenate([[np.nan] * 5, rng.normal(0, 1.5, 45)])
    return pd.DataFrame({
        "price_y": 3000 + rng.normal(0, 1, 50).cumsum(), "price_x": 90000 + rng.normal(0, 5, 50).cumsum(),
        "spread": rng.normal(0, 1, 50), "zscore": z, "beta": rng.normal(0.03, 0.001, 50),
        "correlation": rng.uniform(-1, 1, 50), "signal": np.sign(np.round(z / 2)),
    }, index=idx)


def _all_specs(table: pd.DataFrame) -> list[dict]:
    bars = pd.DataFrame({"taker_buy_volume": np.arange(50.0), "taker_sell_volume": np.arange(50.0) / 2, "trades": np.arange(50)}, index=table.index)
    profile = pd.DataFrame({"price_mid": [1.0, 2.0], "buy_volume": [3.0, 4.0], "sell_volume": [1.0, 0.5]})
    equity = pd.DataFrame({"equity": np.arange(50.0), "drawdown": -np.arange(50.0) % 3}, index=table.index)
    return [
        charts.zscore_figure(table, 2.0, 0.0, "r"), charts.spread_figure(table, 10, 2.0, "r"),
        charts.prices_figure(table, "ETHUSDT", "BTCUSDT", "r"), charts.beta_figure({"OLS": table["beta"]}, "r"),
        charts.correlation_figure(table, "r"), charts.volume_figure(bars, "ETHUSDT", "r"),
        charts.volume_profile_figure(profile, "ETHUSDT", "r"), charts.volume_profile_figure(profile.rename(columns={"buy_volume": "volume"}).drop(columns="sell_volume"), "X", "r"),
        charts.heatmap_figure(table[["price_y", "price_x"]].corr(), "r"), charts.equity_figure(equity, "r"),
    ]


def test_every_spec_is_a_valid_plotly_figure(table):
    for spec in _all_specs(table):
        fig = go.Figure(spec)  # raises on any unknown property or bad value
        assert len(fig.data) >= 1
        assert json.loads(charts.to_json(spec))["layout"]["uirevision"] == "r"


def test_json_carries_the_values_utc_times_and_gaps(table):
    spec = json.loads(charts.to_json(charts.zscore_figure(table, 2.0, 0.5, "r")))
    z = spec["data"][0]
    assert spec["layout"]["xaxis"]["type"] == "date"
    assert z["x"][0] == int(pd.Timestamp("2025-01-01", tz="UTC").timestamp() * 1000)
    assert z["y"][:5] == [None] * 5  # NaN -> null: a gap, not a zero
    assert z["y"][5:] == pytest.approx(table["zscore"].iloc[5:].tolist(), rel=0, abs=0)
    assert sorted(s["y0"] for s in spec["layout"]["shapes"]) == [-2.0, -0.5, 0.5, 2.0]
    markers = [t for t in spec["data"][1:] if t["mode"] == "markers"]
    changes = table["signal"].ne(table["signal"].shift(1)) & table["signal"].shift(1).notna()
    assert sum(len(t["x"]) for t in markers) == int(changes.sum())


def test_secondary_axes_and_tz_naive_index(table):
    spec = charts.prices_figure(table.tz_localize(None), "ETHUSDT", "BTCUSDT", "r")
    assert spec["data"][1]["yaxis"] == "y2" and spec["layout"]["yaxis2"]["overlaying"] == "y"
    assert spec["layout"]["margin"]["r"] >= 60  # the right axis' labels ("61.8k") were cut at 20 px
    assert charts.zscore_figure(table, 2.0, 0.5, "r")["layout"]["margin"]["r"] == 20
    assert spec["data"][0]["x"][0] == int(pd.Timestamp("2025-01-01", tz="UTC").timestamp() * 1000)


def test_volume_chart_sums_into_buckets_without_losing_volume():
    idx = pd.date_range("2025-01-01", periods=1000, freq="1s", tz="UTC")
    rng = np.random.default_rng(1)
    bars = pd.DataFrame({"taker_buy_volume": rng.random(1000), "taker_sell_volume": rng.random(1000), "trades": rng.integers(0, 9, 1000)}, index=idx)
    spec = charts.volume_figure(bars, "ETHUSDT", "r", max_bars=300)
    buy, sell, trades = spec["data"]
    assert len(buy["x"]) == 250 and "each bar sums 4 bars" in spec["layout"]["title"]["text"]
    assert buy["y"].sum() == pytest.approx(bars["taker_buy_volume"].sum())
    assert -sell["y"].sum() == pytest.approx(bars["taker_sell_volume"].sum())
    assert trades["y"].sum() == bars["trades"].sum()
    assert buy["x"][1] == idx[4].value // 1_000_000  # a bucket is stamped with its first bar's time
    assert len(charts.volume_figure(bars.iloc[:300], "ETHUSDT", "r")["data"][0]["x"]) == 300
    assert spec["layout"]["yaxis2"]["rangemode"] == "nonnegative"  # a trade count is never negative
    # data without a taker side (an upload): total volume, never "all taker buys"
    unknown = charts.volume_figure(bars.assign(volume=bars.taker_buy_volume + bars.taker_sell_volume), "X", "r", side_known=False)
    assert [t["name"] for t in unknown["data"]] == ["volume", "trades"] and "no taker side" in unknown["layout"]["title"]["text"]


def test_readable_axes_no_si_units_and_no_lines_across_gaps(table):
    spec = charts.prices_figure(table, "ETHUSDT", "BTCUSDT", "r")
    for axis in ("yaxis", "yaxis2"):  # BTC shows 61,834 — not 61.834k; a spread 0.0003 — not 300µ
        assert spec["layout"][axis]["exponentformat"] == "none" and spec["layout"][axis]["separatethousands"]
    assert spec["layout"]["xaxis"]["title"]["text"] == "time (UTC)"
    z = charts.zscore_figure(table, 2.0, 0.0, "r")
    assert [b["label"] for b in z["layout"]["xaxis"]["rangeselector"]["buttons"]] == ["1h", "6h", "1d", "all"]
    gappy = pd.concat([table.iloc[:20], table.iloc[30:]])  # ten missing seconds
    line = charts.zscore_figure(gappy, 2.0, 0.0, "r")["data"][0]
    assert len(line["x"]) == len(gappy) + 1 and np.isnan(line["y"][20])  # a break, not a bridge
    stale = table.assign(stale=[False] * 10 + [True] * 5 + [False] * 35)
    bands = [s for s in charts.zscore_figure(stale, 2.0, 0.0, "r")["layout"]["shapes"] if s["type"] == "rect"]
    assert len(bands) == 1 and bands[0]["x0"] == table.index[10].value // 10**6 and bands[0]["x1"] == table.index[15].value // 10**6


def test_minmax_thinning_survives_a_warm_up_and_keeps_every_bucket_extreme():
    """A month of 1m bars: the z warm-up fills whole buckets with NaN (pandas 3's ``idxmin`` raised on them,
    which blanked every uploaded-history view over 3,000 bars). Oracle: a plain loop over the buckets."""
    n, cap = 44_640, 3000
    rng = np.random.default_rng(7)
    z = rng.normal(0, 1, n)
    z[:1500] = np.nan  # the warm-up: several whole buckets without a finite value
    z[20_000:20_400] = np.nan  # a stale stretch in the middle
    df = pd.DataFrame({"zscore": z, "price_y": 3000 + rng.normal(0, 1, n).cumsum(), "price_x": 90_000 + rng.normal(0, 5, n).cumsum(),
                       "spread": rng.normal(0, 1, n)}, index=pd.date_range("2025-03-01", periods=n, freq="1min", tz="UTC"))
    shown, note = charts.decimate_minmax(df, cap)
    assert len(shown) <= cap and "thinned" in note
    assert shown.index.is_monotonic_increasing and shown.index.is_unique
    kept = set(df.index.get_indexer(shown.index))
    buckets = max(1, cap // 10)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        assert a in kept and b - 1 in kept
        for col in ("zscore", "price_y", "price_x", "spread"):
            v = df[col].to_numpy()[a:b]
            if np.isfinite(v).any():
                assert a + int(np.nanargmin(v)) in kept and a + int(np.nanargmax(v)) in kept, (col, a)
    assert shown["zscore"].max() == df["zscore"].max() and shown["zscore"].min() == df["zscore"].min()
    # an all-NaN column (z before its window filled) thins too, instead of raising
    empty, _ = charts.decimate_minmax(df.assign(zscore=np.nan), cap)
    assert 0 < len(empty) <= cap
