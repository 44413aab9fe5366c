"""Every symbol of a source at once: the close matrix, returns, per-symbol statistics, the pair scan."""

from __future__ import annotations

import numpy as np
import pandas as pd

import analytics
from analytics import PairParams
from analytics.scanner import SCAN_COLUMNS
from pairs.sources import BarSource
from pairs.timeframe import Timeframe

__all__ = ["closes_matrix", "pair_scanner", "returns_matrix", "symbol_stats", "watch_rows"]


def symbol_stats(source: BarSource, symbols: tuple[str, ...], timeframe: Timeframe, window: int) -> pd.DataFrame:
    """Per-symbol last price, return over the window, annualised volatility (elapsed time), volume, trades/s."""
    tf = source.effective(timeframe)
    rows = []
    for s in symbols:
        bars = source.bars(s, tf)
        if bars.empty:
            rows.append({"symbol": s, "bars": 0})
            continue
        tail = bars.iloc[-window:]
        span_s = max(1.0, (tail.index[-1] - tail.index[0]).total_seconds() + tf.bar_seconds)
        trades = float(tail["trades"].sum())
        rows.append({
            "symbol": s,
            "last price": float(bars["close"].iloc[-1]),
            "return over the window (%)": float((tail["close"].iloc[-1] / tail["open"].iloc[0] - 1) * 100),
            "volatility (annualised, %)": float(analytics.realized_volatility(tail["close"]) * 100) if len(tail) > 2 else np.nan,
            "volume (base units)": float(tail["volume"].sum()),
            "quote volume (USDT)": float(tail["quote_volume"].sum()) if "quote_volume" in tail else np.nan,
            "trades per s": trades / span_s if trades > 0 else np.nan,  # uploaded bars carry no trade count
            "bars": len(bars),
        })
    return pd.DataFrame(rows).set_index("symbol")


def closes_matrix(source: BarSource, symbols: tuple[str, ...], timeframe: Timeframe, ffill_limit: int = 0) -> pd.DataFrame:
    """Close prices of every symbol on one closed-bar grid (NaN where a symbol has no bar).

    ``ffill_limit``: a quiet symbol's last close is carried this many bars (as a pair view
    carries a quiet leg), so a bar without a trade is not a hole in its scan window."""
    closes = {}
    tf = source.effective(timeframe)
    for s in symbols:
        b = source.bars(s, tf)
        b = b[b["closed"].astype(bool)]
        if len(b):
            closes[s] = b["close"]
    if not closes:
        return pd.DataFrame()
    df = pd.DataFrame(closes).sort_index()
    if ffill_limit > 0 and len(df) > 1:  # on the regular grid of the timeframe, so a missing bar is a row
        grid = pd.date_range(df.index[0], df.index[-1], freq=pd.Timedelta(milliseconds=tf.bar_ms), name=df.index.name)
        df = df.reindex(grid).ffill(limit=ffill_limit)
        df = df[df.notna().any(axis=1)]
    return df


def returns_matrix(source: BarSource, symbols: tuple[str, ...], timeframe: Timeframe, window: int) -> pd.DataFrame:
    """Simple returns of every symbol on a common closed-bar grid (last ``window`` bars)."""
    df = closes_matrix(source, symbols, timeframe)
    if df.shape[1] < 2:
        return pd.DataFrame()
    df = df.loc[df.notna().all(axis=1).idxmax():] if df.notna().all(axis=1).any() else df.iloc[0:0]
    return df.ffill(limit=5).pct_change(fill_method=None).dropna().iloc[-window:]


def pair_scanner(source: BarSource, symbols: tuple[str, ...], timeframe: Timeframe, params: PairParams) -> pd.DataFrame:
    """:func:`analytics.scan_pairs` of the symbols' closed bars."""
    from pairs.frames import ffill_bars

    closes = closes_matrix(source, symbols, timeframe, ffill_limit=ffill_bars(source.effective(timeframe), params))
    if closes.shape[1] < 2:
        return pd.DataFrame(columns=SCAN_COLUMNS)
    return analytics.scan_pairs(closes, params)


def watch_rows(source: BarSource, scan: pd.DataFrame, timeframe: Timeframe, params: PairParams) -> pd.DataFrame:
    """The watchlist: each scanned pair's z-score and rolling β now, beside its scan statistics.

    OLS/Huber are computed on just the trailing bars their newest value needs (equal to a
    full computation); Kalman on the last ``2 × formation_bars`` bars (its state is path
    dependent: the newest z can differ slightly from the full history's).
    """
    from pairs.frames import needed_rows, pair_frame, table_of

    tail = needed_rows(params) + 2 if params.method != "Kalman" else 2 * params.formation_bars
    rows = []
    tf = source.effective(timeframe)
    for r in scan.itertuples(index=False):
        z = beta = np.nan
        last = None
        if r.n_bars >= 3 and not (isinstance(r.pvalue, float) and np.isnan(r.pvalue)):
            try:
                pf = pair_frame(source, r.y, r.x, tf, params).tail(tail)
                if pf.rows >= 3:
                    t = table_of(pf.frame, params, pf.timeframe)
                    z, beta, last = float(t["zscore"].iloc[-1]), float(t["beta"].iloc[-1]), t.index[-1]
            except ValueError:
                pass
        hl_s = r.half_life_bars * tf.bar_seconds if np.isfinite(r.half_life_bars) else r.half_life_bars
        rows.append({"y": r.y, "x": r.x, "z": z, "beta_now": beta, "qvalue": r.qvalue, "pvalue": r.pvalue,
                     "half_life_s": hl_s, "beta_formation": r.beta, "n_bars": r.n_bars, "last_bar": last})
    return pd.DataFrame(rows, columns=["y", "x", "z", "beta_now", "qvalue", "pvalue", "half_life_s", "beta_formation", "n_bars", "last_bar"])
