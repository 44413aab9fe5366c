"""Tick -> OHLCV bars (1s/1m/5m or any fixed pandas-style rule) and pair alignment.

Bars are labelled by their **start** time (UTC) and cover ``[start, start + period)``.
Only intervals with at least one trade produce a bar (empty intervals are
absent, never invented). A bar is ``closed`` once its end is at or before the
``as_of`` clock (the newest trade time by default, or the wall clock the caller
passes); the still-forming last bar has ``closed = False`` and is never used
where a closed bar is meant.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from numba import njit

__all__ = ["BAR_COLUMNS", "align_pair", "empty_bars", "resample_ticks", "timeframe_ms", "warm_up"]

BAR_COLUMNS = [
    "open", "high", "low", "close", "volume", "quote_volume", "vwap", "trades", "fills",
    "taker_buy_volume", "taker_sell_volume", "closed",
]
_UNITS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "t": 60_000, "h": 3_600_000, "d": 86_400_000}


def timeframe_ms(rule: str) -> int:
    """Milliseconds in a fixed bar rule such as ``"1s"``, ``"1m"``, ``"5min"``, ``"1h"``."""
    m = re.fullmatch(r"\s*(\d*)\s*([a-zA-Z]+)\s*", str(rule))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"unsupported timeframe {rule!r}; use e.g. 1s, 1m, 5m, 15min, 1h")
    n = int(m.group(1) or 1)
    if n <= 0:
        raise ValueError(f"timeframe must be positive, got {rule!r}")
    return n * _UNITS[m.group(2).lower()]


_NO_FILLS = np.empty(0, dtype=np.int64)  # "one fill per aggregate trade"


@njit(cache=True)
def _resample_kernel(tt, price, qty, maker, fills, period):
    n = tt.shape[0]
    has_fills = fills.shape[0] == n
    # pass 1: count bars (divide only when a tick leaves the current bar) and
    # check the order; unsorted input returns no bars and ``sorted_ok=False``
    nb = 0
    sorted_ok = True
    end = -(2**62)
    for i in range(n):
        if i > 0 and tt[i] < tt[i - 1]:
            sorted_ok = False
            nb = 0
            break
        if tt[i] >= end:
            nb += 1
            end = (tt[i] // period) * period + period
    start = np.empty(nb, dtype=np.int64)
    o = np.empty(nb)
    h = np.empty(nb)
    lo = np.empty(nb)
    c = np.empty(nb)
    vol = np.empty(nb)
    qv = np.empty(nb)
    cnt = np.empty(nb, dtype=np.int64)
    nf = np.empty(nb, dtype=np.int64)
    buy = np.empty(nb)
    sell = np.empty(nb)
    # pass 2: the forming bar lives in scalars (registers) and is written out
    # on its last tick: ~2x faster than updating eleven arrays per tick
    k = -1
    end = -(2**62)
    bh = bl = bvol = bqv = bbuy = bsell = 0.0
    bcnt = bnf = 0
    for i in range(n if sorted_ok else 0):
        p = price[i]
        q = qty[i]
        if tt[i] >= end:
            k += 1
            b = (tt[i] // period) * period
            end = b + period
            start[k] = b
            o[k] = p
            bh = bl = p
            bvol = bqv = bbuy = bsell = 0.0
            bcnt = bnf = 0
        else:
            bh = max(bh, p)
            bl = min(bl, p)
        bvol += q
        bqv += p * q
        bcnt += 1
        bnf += fills[i] if has_fills else 1
        if maker[i]:
            bsell += q
        else:
            bbuy += q
        if i + 1 == n or tt[i + 1] >= end:
            h[k] = bh
            lo[k] = bl
            c[k] = p
            vol[k] = bvol
            qv[k] = bqv
            cnt[k] = bcnt
            nf[k] = bnf
            buy[k] = bbuy
            sell[k] = bsell
    return start, o, h, lo, c, vol, qv, cnt, nf, buy, sell, sorted_ok


def empty_bars() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS})
    out["trades"] = out["trades"].astype("int64")
    out["fills"] = out["fills"].astype("int64")
    out["closed"] = out["closed"].astype(bool)
    out.index = pd.DatetimeIndex([], tz="UTC", name="time")
    return out


def resample_ticks(
    trade_time: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    is_buyer_maker: np.ndarray,
    period_ms: int,
    fills: np.ndarray | None = None,
    as_of_ms: int | None = None,
) -> pd.DataFrame:
    """OHLCV bars from ticks sorted by time (``trade_time`` in ms UTC).

    Columns: ``open high low close`` (price), ``volume`` (base units),
    ``quote_volume`` (sum p*q), ``vwap`` (quote/volume), ``trades`` (aggregate
    trades), ``fills`` (underlying trades, l - f + 1), ``taker_buy_volume``,
    ``taker_sell_volume`` (from ``is_buyer_maker``), ``closed``.
    """
    n = len(trade_time)
    if n == 0:
        return empty_bars()
    tt = np.ascontiguousarray(trade_time, dtype=np.int64)
    f = _NO_FILLS if fills is None else np.ascontiguousarray(fills, dtype=np.int64)
    start, o, h, lo, c, vol, qv, cnt, nf, buy, sell, sorted_ok = _resample_kernel(
        tt,
        np.ascontiguousarray(price, dtype=np.float64),
        np.ascontiguousarray(qty, dtype=np.float64),
        np.ascontiguousarray(is_buyer_maker, dtype=np.bool_),
        f,
        int(period_ms),
    )
    if not sorted_ok:
        raise ValueError("resample_ticks needs ticks sorted by trade_time")
    clock = int(tt[-1]) if as_of_ms is None else max(int(as_of_ms), int(tt[-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(vol > 0, qv / vol, np.nan)
    out = pd.DataFrame(
        {
            "open": o, "high": h, "low": lo, "close": c, "volume": vol, "quote_volume": qv, "vwap": vwap,
            "trades": cnt, "fills": nf, "taker_buy_volume": buy, "taker_sell_volume": sell,
            "closed": start + period_ms <= clock,
        },
        index=pd.DatetimeIndex(pd.to_datetime(start, unit="ms", utc=True), name="time"),
        copy=False,
    )
    return out


def align_pair(
    bars_y: pd.DataFrame, bars_x: pd.DataFrame, period_ms: int, ffill_limit: int = 5, as_of_ms: int | None = None,
    clock_ms: int | None = None,
) -> pd.DataFrame:
    """Put two symbols' bars on one regular grid of ``period_ms``.

    The grid starts at the first bar where **both** symbols have traded and
    ends at the later last bar. A leg without a trade in a bar carries its last
    close forward for at most ``ffill_limit`` bars (its volume/trades are 0 and
    ``stale_<leg>`` is True); rows where a leg is still missing after that are
    dropped. Never back-fills. ``quiet_<leg>_s``: seconds the leg has gone
    without a trade at the bar's end, counted in whole bars (0 when the bar has
    a trade) — a view compares it with its staleness limit. ``closed``: the bar's end is at or before the
    data clock — ``clock_ms``, the newest trade time of either leg when both
    were read in one consistent cut of the feed (default: the newest bar's
    start, i.e. every grid bar before the last is closed) — or ``as_of_ms``
    (e.g. the wall clock) has passed it. A bar one leg has ticks past but the
    clock has not is open: the other leg's ticks for it may still be on their way.

    Returns columns ``close_y, close_x, volume_y, volume_x, trades_y, trades_x,
    taker_buy_volume_y/x, taker_sell_volume_y/x, stale_y, stale_x, quiet_y_s,
    quiet_x_s, closed``.
    """
    cols = ["close", "volume", "trades", "taker_buy_volume", "taker_sell_volume"]
    names = [f"{c}_{s}" for c in cols for s in ("y", "x")] + ["stale_y", "stale_x", "quiet_y_s", "quiet_x_s", "closed"]
    if bars_y.empty or bars_x.empty:
        out = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="time"), columns=names)
        return out.astype({"closed": bool, "stale_y": bool, "stale_x": bool, "quiet_y_s": float, "quiet_x_s": float})
    first = max(bars_y.index[0], bars_x.index[0])
    last = max(bars_y.index[-1], bars_x.index[-1])
    grid = pd.date_range(first, last, freq=pd.Timedelta(milliseconds=period_ms), name="time")
    parts: dict[str, pd.Series] = {}
    for leg, bars in (("y", bars_y), ("x", bars_x)):
        b = bars[cols].reindex(grid)
        parts[f"close_{leg}"] = b["close"].ffill(limit=ffill_limit)
        for c in cols[1:]:
            parts[f"{c}_{leg}"] = b[c].fillna(0)
        missing = b["close"].isna().to_numpy()
        parts[f"stale_{leg}"] = pd.Series(missing, index=grid)
        parts[f"quiet_{leg}_s"] = pd.Series(_run_lengths(missing) * (period_ms / 1000.0), index=grid)
    out = pd.DataFrame(parts, index=grid)
    ends = grid.as_unit("ms").asi8 + period_ms
    clock = int(grid[-1].value // 1_000_000) if clock_ms is None else int(clock_ms)
    if as_of_ms is not None:
        clock = max(clock, int(as_of_ms))
    out["closed"] = ends <= clock
    out = out.dropna(subset=["close_y", "close_x"])
    out["trades_y"] = out["trades_y"].astype("int64")
    out["trades_x"] = out["trades_x"].astype("int64")
    return out[names]


def _run_lengths(missing: np.ndarray) -> np.ndarray:
    """For each position, how many consecutive True values end there (0 where False)."""
    n = missing.shape[0]
    idx = np.arange(1, n + 1)
    last_false = np.maximum.accumulate(np.where(~missing, idx, 0))
    return np.where(missing, idx - last_false, 0).astype(float)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) the resampler on a tiny input."""
    tt = np.arange(0, 4000, 500, dtype=np.int64)
    one = np.ones(len(tt))
    resample_ticks(tt, one, one, one > 0, 1000)
    resample_ticks(tt, one, one, one > 0, 1000, np.ones(len(tt), dtype=np.int32))
