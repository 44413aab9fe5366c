"""Server time of one live refresh: 24 h of 1 s bars per leg (86,400) through the fast fragment's work."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

import analytics
from benchmarks.harness import Row, median_time
from pairs import LiveBars, Timeframe, pair_view
from storage.store import TickStore
from storage.ticks import BATCH_DTYPE, TickBatch
from ui import charts


def _leg(symbol: str, seed: int, start_ms: int, n_ticks: int, base: float) -> TickBatch:
    rng = np.random.default_rng(seed)
    a = np.empty(n_ticks, dtype=BATCH_DTYPE)
    a["agg_id"] = np.arange(n_ticks) + 1
    a["trade_time"] = start_ms + np.sort(rng.integers(0, 86_400_000, n_ticks))
    a["event_time"] = a["trade_time"]
    a["recv_time"] = a["trade_time"] + 5.0
    a["price"] = base * np.exp(np.cumsum(rng.normal(0, 2e-5, n_ticks)))
    a["qty"] = rng.exponential(0.05, n_ticks)
    a["first_id"] = a["agg_id"]
    a["last_id"] = a["agg_id"]
    a["is_buyer_maker"] = rng.random(n_ticks) < 0.5
    return TickBatch(symbol, a)


def bench_live_refresh(quick: bool) -> list[Row]:
    start = 1_780_000_000_000
    n = 200_000 if quick else 600_000  # ~7 ticks/s: every 1 s bar of 24 h is filled
    with tempfile.TemporaryDirectory() as tmp:
        store = TickStore(Path(tmp) / "b.sqlite", max_age_s=10**9)
        store.write(_leg("ETHUSDT", 1, start, n, 3000.0))
        store.write(_leg("BTCUSDT", 2, start, n, 90000.0))
        params = analytics.PairParams(window=100)
        cache: dict = {}
        end_ms = start + 86_400_000
        source = LiveBars(store, lambda: ("ETHUSDT", "BTCUSDT"), clock=lambda: end_ms)

        def refresh() -> pd.DataFrame:
            view = pair_view(source, "ETHUSDT", "BTCUSDT", Timeframe.S1, params, 60.0, cache)
            table = view.table
            assert table is not None
            charts.to_json(charts.zscore_figure(charts.decimate(table, 3000), 2.0, 0.0, "bench"))
            return table

        table = refresh()
        t = median_time(refresh, repeat=7)
        store.close()
    rows = len(table)
    shown = charts.decimate(table, 3000)

    def all_specs() -> list[dict]:
        return [
            charts.zscore_figure(shown, 2.0, 0.0, "b"), charts.spread_figure(shown, 100, 2.0, "b"),
            charts.prices_figure(shown, "ETHUSDT", "BTCUSDT", "b"), charts.beta_figure({"OLS": shown["beta"]}, "b"),
            charts.correlation_figure(shown, "b"),
        ]

    ours = median_time(lambda: [charts.to_json(f) for f in all_specs()], repeat=7)
    specs = all_specs()
    alt = median_time(lambda: [go.Figure(f).to_json() for f in specs], repeat=3)
    return [
        Row(f"live refresh, {rows:,} 1s bars per leg (bars, OLS, z, corr, EG diagnostic, tiles, z chart)", t, "-", None, "budget 150 ms"),
        Row("5 live chart specs, 3,000 points: dict + orjson", ours, "plotly graph_objects Figure(spec).to_json()", alt),
    ]


SUITE = [bench_live_refresh]
