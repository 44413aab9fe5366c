"""Volume and microstructure analytics from trades or bars.

Taker side comes from Binance's ``is_buyer_maker`` flag ``m``: ``m == True``
means the buyer was the resting maker, so the taker **sold**; ``m == False``
is a taker **buy**. Volumes are in base-asset units (e.g. BTC) unless named
``quote_`` (USDT).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics._validate import ArrayLike, as_series, check_window

__all__ = ["taker_imbalance", "volume_profile", "volume_zscore", "vwap"]


def vwap(prices: ArrayLike, quantities: ArrayLike) -> float:
    """Volume-weighted average price ``sum(p q) / sum(q)``; NaN for zero volume."""
    p = as_series(prices, "prices").to_numpy()
    q = as_series(quantities, "quantities").to_numpy()
    total = q.sum()
    return float((p * q).sum() / total) if total > 0 else float("nan")


def taker_imbalance(buy_volume: ArrayLike, sell_volume: ArrayLike) -> pd.Series:
    """``(buy - sell) / (buy + sell)`` in [-1, 1]; NaN where there was no volume."""
    b = as_series(buy_volume, "buy_volume")
    s = as_series(sell_volume, "sell_volume")
    total = b + s.to_numpy()
    return ((b - s.to_numpy()) / total.where(total > 0)).rename("imbalance")


def volume_zscore(volume: ArrayLike, window: int, lag: int = 1) -> pd.Series:
    """Volume spike score: ``(v_t - mean) / std`` of the previous ``window`` bars (causal)."""
    v = as_series(volume, "volume")
    window = check_window(window)
    roll = v.rolling(window, min_periods=window)
    std = roll.std(ddof=1).shift(lag)
    return ((v - roll.mean().shift(lag)) / std.where(std > 0)).rename("volume_z")


def volume_profile(prices: ArrayLike, quantities: ArrayLike, bins: int = 40, is_buyer_maker: ArrayLike | None = None) -> pd.DataFrame:
    """Volume traded per price bucket (equal-width buckets over the price range).

    Returns a DataFrame with ``price_low, price_high, price_mid, volume`` and,
    when ``is_buyer_maker`` is given, ``buy_volume, sell_volume`` (taker side).
    """
    p = as_series(prices, "prices").to_numpy()
    q = as_series(quantities, "quantities").to_numpy()
    if len(p) != len(q):
        raise ValueError("prices and quantities must have the same length")
    if bins < 1:
        raise ValueError("bins must be >= 1")
    ok = np.isfinite(p) & np.isfinite(q)
    cols = ["price_low", "price_high", "price_mid", "volume"]
    if not ok.any():
        return pd.DataFrame(columns=cols)
    p, q = p[ok], q[ok]
    lo, hi = float(p.min()), float(p.max())
    if hi == lo:
        hi = lo + max(abs(lo) * 1e-9, 1e-12)
    edges = np.linspace(lo, hi, bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    out = pd.DataFrame(
        {
            "price_low": edges[:-1],
            "price_high": edges[1:],
            "price_mid": 0.5 * (edges[:-1] + edges[1:]),
            "volume": np.bincount(idx, weights=q, minlength=bins),
        }
    )
    if is_buyer_maker is not None:
        m = np.asarray(is_buyer_maker, dtype=bool)[ok]
        out["buy_volume"] = np.bincount(idx[~m], weights=q[~m], minlength=bins)
        out["sell_volume"] = np.bincount(idx[m], weights=q[m], minlength=bins)
    return out
