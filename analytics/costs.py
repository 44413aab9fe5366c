"""Trading costs for backtests: exchange fees per leg, slippage, and perpetual funding.

* **Fees**: a rate per leg per fill, in basis points of traded value. Binance
  USDⓈ-M charges by VIP tier, maker and taker; :data:`FEE_TIERS` holds the
  published schedule (check your account: BNB discounts and promotions change
  it). A backtest that crosses the spread pays the taker rate.
* **Slippage**: ``"half_spread"`` — a fixed ``half_spread_bps`` of traded value per
  fill (crossing half the bid-ask spread); ``"participation"`` — the square-root
  impact model, ``impact_bps · sqrt(traded value / bar quote volume)`` per leg
  and fill (a fill that is 1 % of the bar's volume costs ``0.1 · impact_bps``);
  a bar without volume is charged ``impact_bps``.
* **Funding**: a perpetual position pays ``position value × rate`` at every
  funding event it is open through (long pays when the rate is positive, short
  receives), at the mark of the last bar closed by then. Events come from
  Binance's ``/fapi/v1/fundingRate`` history or a file; intervals differ by
  symbol and change over time, so only the real event times are used — never
  an assumed 8 h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FEE_TIERS", "SLIPPAGE_MODELS", "CostModel", "funding_by_bar"]

# Binance USDⓈ-M futures fee schedule, basis points (maker, taker), per VIP tier (published 2025; no BNB discount)
FEE_TIERS: dict[str, tuple[float, float]] = {
    "VIP0": (2.0, 5.0), "VIP1": (1.6, 4.0), "VIP2": (1.4, 3.5), "VIP3": (1.2, 3.2), "VIP4": (1.0, 3.0),
    "VIP5": (0.8, 2.7), "VIP6": (0.6, 2.5), "VIP7": (0.4, 2.2), "VIP8": (0.2, 2.0), "VIP9": (0.0, 1.7),
}
SLIPPAGE_MODELS = ("none", "half_spread", "participation")


@dataclass(frozen=True)
class CostModel:
    """How a backtest charges a fill (see the module docstring). Units: basis points of traded value."""

    fee_bps: float = 5.0
    slippage: str = "none"
    half_spread_bps: float = 0.0
    impact_bps: float = 10.0

    @classmethod
    def tier(cls, name: str = "VIP0", taker: bool = True, **kw) -> CostModel:
        """Fees of a Binance VIP tier (taker by default: a backtest fill crosses the spread)."""
        if name not in FEE_TIERS:
            raise ValueError(f"unknown fee tier {name!r}; one of {', '.join(FEE_TIERS)}")
        maker, tk = FEE_TIERS[name]
        return cls(fee_bps=tk if taker else maker, **kw)

    def validate(self) -> CostModel:
        if not (self.fee_bps >= 0 and self.half_spread_bps >= 0 and self.impact_bps >= 0):
            raise ValueError("fees and slippage must be >= 0 basis points")
        if self.slippage not in SLIPPAGE_MODELS:
            raise ValueError(f"slippage must be one of {', '.join(SLIPPAGE_MODELS)}")
        return self

    def slippage_cost(self, value: float, bar_quote_volume: float) -> float:
        """Slippage (quote currency) of one leg's fill of ``value`` quote currency."""
        if self.slippage == "half_spread":
            return value * self.half_spread_bps / 1e4
        if self.slippage == "participation":
            if not (math.isfinite(bar_quote_volume) and bar_quote_volume > 0):
                return value * self.impact_bps / 1e4
            return value * self.impact_bps / 1e4 * math.sqrt(value / bar_quote_volume)
        return 0.0


def funding_by_bar(index: pd.DatetimeIndex, bar_ms: int, events: pd.Series | None) -> np.ndarray:
    """Funding rate charged after each bar: event at time τ goes to the last bar that closed by τ
    (start + ``bar_ms`` <= τ); events before the first bar closed or after the last are dropped; two
    events in one bar add up. Returns an array of ``len(index)`` (0 where none)."""
    out = np.zeros(len(index))
    if events is None or len(events) == 0 or len(index) == 0:
        return out
    ev = events.dropna()
    times = pd.DatetimeIndex(ev.index)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    closes = index.as_unit("ms").asi8 + int(bar_ms)
    pos = np.searchsorted(closes, times.as_unit("ms").asi8, side="right") - 1
    ok = (pos >= 0) & (times.as_unit("ms").asi8 <= closes[-1])
    np.add.at(out, pos[ok], ev.to_numpy(dtype=float)[ok])
    return out
