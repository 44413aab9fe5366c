"""Binance REST backfill of aggregate trades (``GET /fapi/v1/aggTrades``).

Weight 20 a call, up to 1000 trades, roughly the last 48 h only. HTTP 429/418
carry ``Retry-After`` (seconds): we sleep exactly that long (interruptibly)
and never retry sooner. HTTP 451 means the location is restricted.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from storage.ticks import TickBatch

__all__ = ["BackfillError", "RestClient", "RestResult"]

log = logging.getLogger(__name__)


class BackfillError(RuntimeError):
    """REST backfill failed; ``retryable`` tells whether a later attempt may succeed."""

    def __init__(self, message: str, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@dataclass
class RestResult:
    batch: TickBatch
    rate_limited_s: float = 0.0


class RestClient:
    """Minimal, dependency-free client for the aggTrades endpoint."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, stop: threading.Event | None = None, max_attempts: int = 4) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.stop = stop or threading.Event()
        self.max_attempts = max_attempts
        self.requests = 0
        self.rate_limit_waits = 0
        self.last_retry_after_s = 0.0

    def agg_trades(self, symbol: str, from_id: int, limit: int = 1000) -> TickBatch:
        """Up to ``limit`` aggregate trades of ``symbol`` starting at ``from_id`` (ascending)."""
        query = urllib.parse.urlencode({"symbol": symbol.upper(), "fromId": int(from_id), "limit": int(limit)})
        url = f"{self.base_url}/fapi/v1/aggTrades?{query}"
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            if self.stop.is_set():
                raise BackfillError("stopped", retryable=False)
            self.requests += 1
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                    body = resp.read()
                return _to_batch(symbol, json.loads(body))
            except urllib.error.HTTPError as exc:
                status = exc.code
                if status in (429, 418):
                    wait = _retry_after(exc.headers.get("Retry-After"))
                    self.rate_limit_waits += 1
                    self.last_retry_after_s = wait
                    log.warning("REST %s for %s: waiting Retry-After=%.1fs", status, symbol, wait)
                    if status == 418:  # IP banned for a while: do not burn attempts
                        if self.stop.wait(wait):
                            raise BackfillError("stopped", retryable=False) from None
                        continue
                    if self.stop.wait(wait):
                        raise BackfillError("stopped", retryable=False) from None
                    continue
                if status == 451:
                    raise BackfillError("HTTP 451: Binance refuses requests from this location", retryable=False, status=451) from None
                if 400 <= status < 500:
                    raise BackfillError(f"HTTP {status} from {url}: {exc.read()[:200]!r}", retryable=False, status=status) from None
                err = f"HTTP {status}"
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                err = str(getattr(exc, "reason", exc))
            if attempt < self.max_attempts and self.stop.wait(delay):
                raise BackfillError("stopped", retryable=False)
            delay = min(delay * 2, 8.0)
        raise BackfillError(f"REST backfill failed after {self.max_attempts} attempts: {err}")


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def _to_batch(symbol: str, rows: object) -> TickBatch:
    if not isinstance(rows, list):
        raise ValueError("aggTrades response is not a list")
    out = []
    for r in rows:
        # REST keys: a, p, q, f, l, T, m (no E: the trade time stands in)
        out.append((int(r["a"]), int(r["T"]), int(r["T"]), float("nan"), float(r["p"]), float(r["q"]), int(r["f"]), int(r["l"]), bool(r["m"])))
    return TickBatch.from_rows(symbol, out)
