"""Which symbols Binance lists as tradable USDⓈ-M perpetuals (``/fapi/v1/exchangeInfo``), cached.

A symbol is checked before it is recorded: a typo (``NOTACOINUSDT``) would
otherwise be subscribed, wait forever and show in every session. When the
exchange cannot be asked (offline, HTTP 451), the answer says so instead of
guessing, and the caller decides.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ingest.rest import BackfillError, RestClient, perpetual_universe

__all__ = ["CatalogCheck", "SymbolCatalog"]


@dataclass(frozen=True)
class CatalogCheck:
    """``known``: listed and trading; ``unknown``: not listed (or not trading); ``unverified``: why none could be checked."""

    known: tuple[str, ...]
    unknown: tuple[str, ...]
    unverified: str | None = None


class SymbolCatalog:
    """Tradable USDⓈ-M perpetuals (status TRADING, PERPETUAL, quote USDT/USDC), refreshed every ``ttl_s``."""

    def __init__(self, rest: RestClient | None, ttl_s: float = 600.0) -> None:
        self.rest = rest
        self.ttl_s = ttl_s
        self._symbols: frozenset[str] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def tradable(self) -> frozenset[str]:
        """The listed symbols (raises :class:`BackfillError` when exchangeInfo cannot be read)."""
        with self._lock:
            if self._symbols is not None and time.monotonic() - self._at < self.ttl_s:
                return self._symbols
        if self.rest is None:
            raise BackfillError("no REST endpoint configured", retryable=False)
        info = self.rest.exchange_info()
        listed = frozenset(perpetual_universe(info, quote="USDT")["symbol"]) | frozenset(perpetual_universe(info, quote="USDC")["symbol"])
        with self._lock:
            self._symbols, self._at = listed, time.monotonic()
        return listed

    def check(self, symbols: list[str] | tuple[str, ...]) -> CatalogCheck:
        try:
            listed = self.tradable()
        except BackfillError as exc:
            return CatalogCheck(tuple(symbols), (), f"Binance's symbol list could not be read ({_short(exc)})")
        return CatalogCheck(tuple(s for s in symbols if s in listed), tuple(s for s in symbols if s not in listed))


def _short(exc: BaseException) -> str:
    text = str(exc)
    if "HTTP 451" in text:
        return "HTTP 451: restricted location"
    return "unreachable" if "attempts" in text or "refused" in text.lower() else text[:80]
