"""Data plumbing for the views: storage frames -> analytics tables (no Streamlit here).

Cadence: tick and 1s views recompute on every live refresh; 1m/5m views use
closed bars only (the forming bar is not shown) and recompute only when a new
bar closes — the result is cached on (pair, timeframe, params, last closed bar).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

import analytics
from analytics import PairParams
from analytics.scanner import SCAN_COLUMNS
from storage.bars import timeframe_ms
from storage.store import TickStore

BAR_SECONDS = {"tick": 1.0, "1s": 1.0, "1m": 60.0, "5m": 300.0}
TICK_CORRELATION_GRID_MS = 1000  # tick returns are mostly zero: correlate 1 s returns instead


@dataclass(frozen=True)
class PairFrame:
    frame: pd.DataFrame  # close_y, close_x, volume_y, volume_x, quiet_y_s, quiet_x_s, ...
    timeframe: str
    closed_only: bool

    @property
    def rows(self) -> int:
        return len(self.frame)


def ffill_bars(timeframe: str, params: PairParams) -> int:
    """Bars a quiet leg's last price is carried: past the staleness limit (those rows are
    kept, marked stale, without z) and then 5 bars more before rows are dropped."""
    if timeframe == "tick":
        return 0
    return int(math.ceil(params.stale_after_s / BAR_SECONDS[timeframe])) + 5


def pair_frame(store: TickStore, sym_y: str, sym_x: str, timeframe: str, params: PairParams | None = None,
               now_ms: int | None = None) -> PairFrame:
    """Aligned pair prices for ``timeframe``; 1m/5m keep closed bars only (closed by ``now_ms``, default the wall clock)."""
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    params = params or PairParams()
    if timeframe == "tick":
        frame = store.pair_ticks(sym_y, sym_x)
    else:
        frame = store.pair_bars(sym_y, sym_x, timeframe, ffill_limit=ffill_bars(timeframe, params), as_of_ms=now_ms)
    closed_only = timeframe in ("1m", "5m")
    if closed_only and len(frame):
        frame = frame[frame["closed"].astype(bool)]
    return PairFrame(frame, timeframe, closed_only)


def needed_rows(params: PairParams) -> int:
    """Bars a pair needs before its z-score exists (:func:`analytics.warmup_bars`)."""
    return analytics.warmup_bars(params)


def table_of(frame: pd.DataFrame, params: PairParams, timeframe: str) -> pd.DataFrame:
    """The pair table of an aligned frame, as every view, export and alert computes it."""
    grid = TICK_CORRELATION_GRID_MS if timeframe == "tick" else None
    return analytics.pair_table(frame, params, correlation_grid_ms=grid)


def compute_table(pf: PairFrame, params: PairParams, cache: dict | None = None) -> pd.DataFrame:
    """:func:`table_of` on the frame, cached for closed-bar timeframes."""
    f = pf.frame
    key = None
    if cache is not None and pf.closed_only and len(f):
        key = (pf.timeframe, params, len(f), f.index[-1], float(f["close_y"].iloc[-1]), float(f["close_x"].iloc[-1]))
        hit = cache.get("table")
        if hit is not None and hit[0] == key:
            return hit[1]
    table = table_of(f, params, pf.timeframe)
    if key is not None:
        cache["table"] = (key, table)
    return table


def diagnostics_of(table: pd.DataFrame, params: PairParams, cache: dict | None = None) -> analytics.PairDiagnostics:
    """:func:`analytics.pair_diagnostics` of the table's prices (formation window), cached on its last bar."""
    key = (params.log_prices, params.formation_bars, len(table), table.index[-1] if len(table) else None,
           float(table["price_y"].iloc[-1]) if len(table) else None)
    if cache is not None:
        hit = cache.get("diagnostics")
        if hit is not None and hit[0] == key:
            return hit[1]
    d = analytics.pair_diagnostics(table["price_y"], table["price_x"], params)
    if cache is not None:
        cache["diagnostics"] = (key, d)
    return d


def symbol_stats(store: TickStore, symbols: tuple[str, ...], timeframe: str, window: int) -> pd.DataFrame:
    """Per-symbol last price, return over the window, annualised volatility (elapsed time), volume, trades/s."""
    tf = "1s" if timeframe == "tick" else timeframe
    rows = []
    for s in symbols:
        bars = store.bars(s, tf)
        if bars.empty:
            rows.append({"symbol": s, "last price": np.nan})
            continue
        tail = bars.iloc[-window:]
        span_s = max(1.0, (tail.index[-1] - tail.index[0]).total_seconds() + timeframe_ms(tf) / 1000)
        rows.append({
            "symbol": s,
            "last price": float(bars["close"].iloc[-1]),
            "return over the window (%)": float((tail["close"].iloc[-1] / tail["open"].iloc[0] - 1) * 100),
            "volatility (annualised, %)": float(analytics.realized_volatility(tail["close"]) * 100) if len(tail) > 2 else np.nan,
            "volume (base units)": float(tail["volume"].sum()),
            "quote volume (USDT)": float(tail["quote_volume"].sum()),
            "trades per s": float(tail["trades"].sum() / span_s),
            "bars": len(bars),
        })
    return pd.DataFrame(rows).set_index("symbol")


def closes_matrix(store: TickStore, symbols: tuple[str, ...], timeframe: str) -> pd.DataFrame:
    """Close prices of every symbol on one closed-bar grid (NaN where a symbol has no bar)."""
    tf = "1s" if timeframe == "tick" else timeframe
    closes = {}
    now_ms = int(time.time() * 1000)
    for s in symbols:
        b = store.bars(s, tf, as_of_ms=now_ms)
        b = b[b["closed"]]
        if len(b):
            closes[s] = b["close"]
    return pd.DataFrame(closes).sort_index() if closes else pd.DataFrame()


def returns_matrix(store: TickStore, symbols: tuple[str, ...], timeframe: str, window: int) -> pd.DataFrame:
    """Simple returns of every symbol on a common closed-bar grid (last ``window`` bars)."""
    df = closes_matrix(store, symbols, timeframe)
    if df.shape[1] < 2:
        return pd.DataFrame()
    df = df.loc[df.notna().all(axis=1).idxmax():] if df.notna().all(axis=1).any() else df.iloc[0:0]
    return df.ffill(limit=5).pct_change(fill_method=None).dropna().iloc[-window:]


def pair_scanner(store: TickStore, symbols: tuple[str, ...], timeframe: str, params: PairParams) -> pd.DataFrame:
    """:func:`analytics.scan_pairs` of the recorded symbols' closed bars, plus each pair's current |z|."""
    closes = closes_matrix(store, symbols, timeframe)
    if closes.shape[1] < 2:
        return pd.DataFrame(columns=SCAN_COLUMNS)
    return analytics.scan_pairs(closes, params)


def export_name(kind: str, pair: str, timeframe: str, index: pd.Index) -> str:
    """File name saying what, pair, timeframe and UTC range."""
    if len(index):
        rng = f"{index[0]:%Y%m%dT%H%M%SZ}_{index[-1]:%Y%m%dT%H%M%SZ}"
    else:
        rng = "empty"
    return f"alphastream_{kind}_{pair}_{timeframe}_{rng}.csv"


FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_text(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` …) gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def to_csv(df: pd.DataFrame, index_label: str = "timestamp") -> str:
    """CSV a spreadsheet or a script reads right: ISO-8601 UTC timestamps, durations in ISO-8601
    (``P0DT0H5M0S``), floats to 10 significant digits (no ``0.30000000000000004`` noise; prices of
    every instrument keep their digits), text cells that start like a formula neutralised
    (numbers — negative ones included — stay numbers)."""
    out = df.copy()
    if isinstance(out.index, pd.DatetimeIndex):
        out.index = out.index.map(lambda t: t.isoformat())
    elif out.index.dtype == object:
        out.index = out.index.map(csv_safe_text)
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].map(lambda t: t.isoformat() if pd.notna(t) else "")
        elif pd.api.types.is_timedelta64_dtype(out[col]):
            out[col] = out[col].map(lambda d: d.isoformat() if pd.notna(d) else "")
        elif out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(csv_safe_text)
    return out.to_csv(index_label=index_label, float_format="%.10g")


def dataset_pair_frame(datasets, name: str, sym_y: str, sym_x: str, timeframe: str, params: PairParams | None = None) -> pd.DataFrame:
    """Aligned bars of two symbols of an uploaded dataset (all bars closed)."""
    from storage.bars import align_pair

    tf = "1s" if timeframe == "tick" else timeframe
    by, bx = datasets.bars(name, sym_y, tf), datasets.bars(name, sym_x, tf)
    return align_pair(by, bx, timeframe_ms(tf), ffill_limit=ffill_bars(tf, params or PairParams()), as_of_ms=2**62)


def dataset_pair_table(datasets, name: str, sym_y: str, sym_x: str, timeframe: str, params: PairParams) -> pd.DataFrame:
    """The analytics table of a dataset pair — what the dashboard shows and exports, and what the CLI writes."""
    frame = dataset_pair_frame(datasets, name, sym_y, sym_x, timeframe, params)
    if len(frame) < 3:
        raise ValueError(f"only {len(frame)} aligned bars for {sym_y}/{sym_x}")
    return table_of(frame, params, "1s" if timeframe == "tick" else timeframe)
