"""The dashboard's bar timeframes as one typed value.

``tick`` is the as-of join of the legs' trades (no bars); its volume, correlation
and the other bar-based figures use 1 s bars. ``1m`` and ``5m`` show closed bars
only. Everything a timeframe implies — its bar length, the bars its bar-based
figures use, whether the forming bar is shown — is a property here, never a
string comparison at a call site.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BAR_TIMEFRAMES", "TIMEFRAMES", "Timeframe"]


class Timeframe(StrEnum):
    """``tick``, ``1s``, ``1m`` or ``5m``; equal to (and serialised as) its string."""

    TICK = "tick"
    S1 = "1s"
    M1 = "1m"
    M5 = "5m"

    @classmethod
    def parse(cls, value: object, allowed: tuple[Timeframe, ...] | None = None) -> Timeframe:
        """The timeframe named ``value``; ``ValueError`` naming the choices otherwise."""
        choices = allowed or tuple(cls)
        try:
            tf = cls(str(value).strip().lower())
        except ValueError:
            tf = None
        if tf is None or tf not in choices:
            raise ValueError(f"timeframe must be one of {', '.join(choices)}, got {str(value)[:20]!r}")
        return tf

    @property
    def bars(self) -> Timeframe:
        """The bar timeframe of the bar-based figures (volume, correlation grid, minute stats): 1s for tick."""
        return Timeframe.S1 if self is Timeframe.TICK else self

    @property
    def bar_ms(self) -> int:
        """Length of one bar in milliseconds (tick: its 1 s grid)."""
        return {"tick": 1000, "1s": 1000, "1m": 60_000, "5m": 300_000}[self.value]

    @property
    def bar_seconds(self) -> float:
        return self.bar_ms / 1000.0

    @property
    def closed_only(self) -> bool:
        """1m and 5m views show closed bars only (the forming bar would move)."""
        return self in (Timeframe.M1, Timeframe.M5)

    @property
    def is_tick(self) -> bool:
        return self is Timeframe.TICK

    @property
    def unit(self) -> str:
        """What one row is, in words: ``ticks`` or ``1m bars``."""
        return "ticks" if self is Timeframe.TICK else f"{self.value} bars"

    @classmethod
    def at_least(cls, bar_ms: int) -> Timeframe | None:
        """The finest bar timeframe whose bars are at least ``bar_ms`` long (None when none is)."""
        return next((tf for tf in BAR_TIMEFRAMES if tf.bar_ms >= bar_ms), None)


TIMEFRAMES: tuple[Timeframe, ...] = tuple(Timeframe)
BAR_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.S1, Timeframe.M1, Timeframe.M5)
