"""Data plumbing for the views: storage frames -> analytics tables (no Streamlit here).

Cadence: tick and 1s views recompute on every live refresh; 1m/5m views use
closed bars only (the forming bar is not shown) and recompute only when a new
bar closes — the result is cached on (pair, timeframe, params, last closed bar).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

import analytics
from analytics import PairParams
from storage.bars import timeframe_ms
from storage.store import TickStore

BAR_SECONDS = {"tick": 1.0, "1s": 1.0, "1m": 60.0, "5m": 300.0}


@dataclass(frozen=True)
class PairFrame:
    frame: pd.DataFrame  # close_y, close_x, volume_y, volume_x, ...
    timeframe: str
    closed_only: bool

    @property
    def rows(self) -> int:
        return len(self.frame)


def pair_frame(store: TickStore, sym_y: str, sym_x: str, timeframe: str) -> PairFrame:
    """Aligned pair prices for ``timeframe``; 1m/5m keep closed bars only."""
    now_ms = int(time.time() * 1000)
    frame = store.pair_bars(sym_y, sym_x, timeframe, as_of_ms=now_ms if timeframe != "tick" else None)
    closed_only = timeframe in ("1m", "5m")
    if closed_only and len(frame):
        frame = frame[frame["closed"].astype(bool)]
    return PairFrame(frame, timeframe, closed_only)


def needed_rows(params: PairParams) -> int:
    """Bars a pair needs before the rolling hedge and z-score exist."""
    return params.window + 2 if params.method != "Kalman" else 3


def compute_table(pf: PairFrame, params: PairParams, cache: dict | None = None) -> pd.DataFrame:
    """``analytics.pair_analytics`` on the frame, cached for closed-bar timeframes."""
    f = pf.frame
    key = None
    if cache is not None and pf.closed_only and len(f):
        key = (pf.timeframe, params, len(f), f.index[-1], float(f["close_y"].iloc[-1]), float(f["close_x"].iloc[-1]))
        hit = cache.get("table")
        if hit is not None and hit[0] == key:
            return hit[1]
    table = analytics.pair_analytics(f["close_y"], f["close_x"], params)
    if key is not None:
        cache["table"] = (key, table)
    return table


def spread_diagnostics(table: pd.DataFrame) -> dict[str, float]:
    """ADF p-value (:func:`analytics.recent_adf_pvalue`, the alert metric too) and
    half-life of the recent out-of-sample spread (NaN when too short)."""
    s = table["spread"].dropna().iloc[-analytics.RECENT_ADF_POINTS :]
    out = {"adf_pvalue": analytics.recent_adf_pvalue(s), "half_life": math.nan}
    if len(s) >= 30 and s.max() > s.min():
        out["half_life"] = analytics.half_life(s)
    return out


def symbol_stats(store: TickStore, symbols: tuple[str, ...], timeframe: str, window: int) -> pd.DataFrame:
    """Per-symbol last price, return over the window, annualised volatility, volume, trades/s."""
    tf = "1s" if timeframe == "tick" else timeframe
    rows = []
    for s in symbols:
        bars = store.bars(s, tf)
        if bars.empty:
            rows.append({"symbol": s, "last": np.nan})
            continue
        tail = bars.iloc[-window:]
        span_s = max(1.0, (tail.index[-1] - tail.index[0]).total_seconds() + timeframe_ms(tf) / 1000)
        rows.append({
            "symbol": s,
            "last": float(bars["close"].iloc[-1]),
            "return_%": float((tail["close"].iloc[-1] / tail["open"].iloc[0] - 1) * 100),
            "volatility_ann_%": float(analytics.realized_volatility(tail["close"], BAR_SECONDS[tf]) * 100) if len(tail) > 2 else np.nan,
            "volume": float(tail["volume"].sum()),
            "quote_volume": float(tail["quote_volume"].sum()),
            "trades_per_s": float(tail["trades"].sum() / span_s),
            "bars": len(bars),
        })
    return pd.DataFrame(rows).set_index("symbol")


def returns_matrix(store: TickStore, symbols: tuple[str, ...], timeframe: str, window: int) -> pd.DataFrame:
    """Simple returns of every symbol on a common closed-bar grid (last ``window`` bars)."""
    tf = "1s" if timeframe == "tick" else timeframe
    closes = {}
    for s in symbols:
        b = store.bars(s, tf)
        if len(b):
            closes[s] = b["close"]
    if len(closes) < 2:
        return pd.DataFrame()
    df = pd.DataFrame(closes)
    df = df.loc[df.notna().all(axis=1).idxmax():] if df.notna().all(axis=1).any() else df.iloc[0:0]
    return df.ffill(limit=5).pct_change(fill_method=None).dropna().iloc[-window:]


def pair_scanner(store: TickStore, symbols: tuple[str, ...], timeframe: str, params: PairParams, max_bars: int = 3000) -> pd.DataFrame:
    """Rank every pair by Engle-Granger p-value, spread half-life and current |z|."""
    tf = "1s" if timeframe == "tick" else timeframe
    rows = []
    for y, x in itertools.permutations(symbols, 2):
        if y > x:  # each unordered pair once (Engle-Granger is run with the alphabetically first as y)
            continue
        pf = pair_frame(store, y, x, tf)
        f = pf.frame.iloc[-max_bars:]
        if len(f) < max(30, params.window + 2):
            rows.append({"pair": f"{y}/{x}", "bars": len(f)})
            continue
        ly, lx = np.log(f["close_y"]), np.log(f["close_x"])
        try:
            eg = analytics.engle_granger(ly, lx)
            pval, hl = eg.pvalue, analytics.half_life(eg.residuals)
        except ValueError:
            pval, hl = np.nan, np.nan
        table = analytics.pair_analytics(f["close_y"], f["close_x"], PairParams(window=params.window, log_prices=True))
        z = table["zscore"].dropna()
        rows.append({"pair": f"{y}/{x}", "bars": len(f), "eg_pvalue": pval, "half_life_bars": hl, "abs_z": abs(z.iloc[-1]) if len(z) else np.nan})
    out = pd.DataFrame(rows)
    if "eg_pvalue" in out:
        out = out.sort_values(["eg_pvalue", "abs_z"], ascending=[True, False], na_position="last")
    return out.reset_index(drop=True)


def export_name(kind: str, pair: str, timeframe: str, index: pd.Index) -> str:
    """File name saying what, pair, timeframe and UTC range."""
    if len(index):
        rng = f"{index[0]:%Y%m%dT%H%M%SZ}_{index[-1]:%Y%m%dT%H%M%SZ}"
    else:
        rng = "empty"
    return f"alphastream_{kind}_{pair}_{timeframe}_{rng}.csv"


def to_csv(df: pd.DataFrame, index_label: str = "timestamp") -> str:
    """CSV with ISO-8601 UTC timestamps."""
    out = df.copy()
    if isinstance(out.index, pd.DatetimeIndex):
        out.index = out.index.map(lambda t: t.isoformat())
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].map(lambda t: t.isoformat() if pd.notna(t) else "")
    return out.to_csv(index_label=index_label)


def dataset_pair_frame(datasets, name: str, sym_y: str, sym_x: str, timeframe: str) -> pd.DataFrame:
    """Aligned bars of two symbols of an uploaded dataset (all bars closed)."""
    from storage.bars import align_pair

    tf = "1s" if timeframe == "tick" else timeframe
    by, bx = datasets.bars(name, sym_y, tf), datasets.bars(name, sym_x, tf)
    return align_pair(by, bx, timeframe_ms(tf), as_of_ms=2**62)


def dataset_pair_table(datasets, name: str, sym_y: str, sym_x: str, timeframe: str, params: PairParams) -> pd.DataFrame:
    """The analytics table of a dataset pair — what the dashboard shows and exports, and what the CLI writes."""
    frame = dataset_pair_frame(datasets, name, sym_y, sym_x, timeframe)
    if len(frame) < 3:
        raise ValueError(f"only {len(frame)} aligned bars for {sym_y}/{sym_x}")
    return analytics.pair_analytics(frame["close_y"], frame["close_x"], params)
