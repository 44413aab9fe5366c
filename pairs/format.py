"""Numbers and times in words a person reads at a glance — one rule each, for every page and the push channel."""

from __future__ import annotations

import math

__all__ = ["fmt_age", "fmt_duration", "fmt_number", "fmt_price", "fmt_signed"]


def fmt_age(seconds: float | None) -> str:
    """``850 ms``, ``12.4 s``, ``12 min``, ``3.2 h``, ``5.1 d``; ``—`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def fmt_duration(seconds: float | None) -> str:
    """A span short enough for a tile: ``45 s``, ``12 min``, ``3.4 h``, ``2.1 d``; ``∞`` and ``—`` as such."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    if seconds == math.inf:
        return "∞"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def fmt_price(p: float | None) -> str:
    """Price at a precision that suits its size, with thousands separators (never SI units)."""
    if p is None or not math.isfinite(p):
        return "—"
    a = abs(p)
    decimals = 2 if a >= 1000 else 3 if a >= 100 else 4 if a >= 1 else 6 if a >= 0.01 else 8
    return f"{p:,.{decimals}f}"


def fmt_number(v: float | None, decimals: int = 2) -> str:
    """``1,234.57``; ``—`` when missing."""
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:,.{decimals}f}"


def fmt_signed(v: float | None, decimals: int = 2) -> str:
    """``+1.23`` / ``−0.50``; ``—`` when missing."""
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:+,.{decimals}f}"
