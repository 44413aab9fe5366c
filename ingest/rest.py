"""Binance REST: aggregate-trade backfill (``GET /fapi/v1/aggTrades``) and klines (``/fapi/v1/klines``).

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

import pandas as pd

from storage.ticks import TickBatch

__all__ = ["BackfillError", "RestClient", "RestResult", "klines_frame"]

log = logging.getLogger(__name__)


class BackfillError(RuntimeError):
    """REST backfill failed; ``retryable`` tells whether a later attempt may succeed."""

    def __init__(self, message: str, retryable: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status

    def plain(self) -> str:
        """What failed, in words a user reads (never a URL or an exception name)."""
        if self.status == 404:
            return "Binance has no such data (HTTP 404)"
        if self.status == 451:
            return "Binance refuses requests from this location (HTTP 451)"
        if self.status in (429, 418):
            return f"Binance is rate-limiting this server (HTTP {self.status})"
        if self.status is not None and 400 <= self.status < 500:
            return f"Binance refused the request (HTTP {self.status})"
        if str(self) == "stopped":
            return "the server is shutting down"
        return "Binance could not be reached"


@dataclass
class RestResult:
    batch: TickBatch
    rate_limited_s: float = 0.0


class RestClient:
    """Minimal, dependency-free client for the public USDⓈ-M endpoints AlphaStream uses (aggTrades, klines,
    exchangeInfo, ticker/24hr, fundingRate); every call obeys ``Retry-After`` on 429/418."""

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
        return _to_batch(symbol, self._get("/fapi/v1/aggTrades", {"symbol": symbol.upper(), "fromId": int(from_id), "limit": int(limit)}))

    def first_trade_at(self, symbol: str, start_ms: int) -> TickBatch:
        """The first aggregate trade of ``symbol`` at or after ``start_ms`` (empty if none yet)."""
        return _to_batch(symbol, self._get("/fapi/v1/aggTrades", {"symbol": symbol.upper(), "startTime": int(start_ms), "limit": 1}))

    def klines(self, symbol: str, interval: str, limit: int = 1000) -> list[list]:
        """The latest ``limit`` klines (``GET /fapi/v1/klines``; weight 5 at 1000) as Binance's rows:
        ``[open_time, open, high, low, close, volume, close_time, quote_volume, trades, taker_buy_base, taker_buy_quote, _]``."""
        rows = self._get("/fapi/v1/klines", {"symbol": symbol.upper(), "interval": interval, "limit": int(limit)})
        if not isinstance(rows, list):
            raise BackfillError("klines response is not a list", retryable=False)
        return rows

    def exchange_info(self) -> dict:
        """``GET /fapi/v1/exchangeInfo`` (weight 1): every contract's status, type, assets and filters."""
        info = self._get("/fapi/v1/exchangeInfo", {})
        if not isinstance(info, dict) or not isinstance(info.get("symbols"), list):
            raise BackfillError("exchangeInfo response has no symbols list", retryable=False)
        return info

    def tickers_24h(self) -> list[dict]:
        """``GET /fapi/v1/ticker/24hr`` without a symbol (weight 40): 24 h statistics of every contract."""
        rows = self._get("/fapi/v1/ticker/24hr", {})
        if not isinstance(rows, list):
            raise BackfillError("ticker/24hr response is not a list", retryable=False)
        return rows

    def funding_rates(self, symbol: str, start_ms: int, end_ms: int | None = None) -> pd.DataFrame:
        """Funding events of ``symbol`` from ``start_ms`` (``GET /fapi/v1/fundingRate``, 1000 per page, paged
        forward): ``funding_rate`` (fraction per interval) on a UTC ``fundingTime`` index."""
        frames, cursor = [], int(start_ms)
        while True:
            params: dict[str, object] = {"symbol": symbol.upper(), "startTime": cursor, "limit": 1000}
            if end_ms is not None:
                params["endTime"] = int(end_ms)
            rows = self._get("/fapi/v1/fundingRate", params)
            if not isinstance(rows, list):
                raise BackfillError("fundingRate response is not a list", retryable=False)
            page = funding_frame(rows)
            frames.append(page)
            if len(rows) < 1000 or not len(page):
                break
            cursor = int(page.index[-1].value // 1_000_000) + 1
        out = pd.concat(frames) if frames else funding_frame([])
        return out[~out.index.duplicated()].sort_index()

    def _get(self, path: str, params: dict[str, object]) -> object:
        """GET a Binance REST path and decode its JSON, obeying Retry-After on 429/418."""
        query = urllib.parse.urlencode(params)
        url = f"{self.base_url}{path}?{query}"
        symbol = str(params.get("symbol", ""))
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            if self.stop.is_set():
                raise BackfillError("stopped", retryable=True)
            self.requests += 1
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                    body = resp.read()
                return json.loads(body)
            except urllib.error.HTTPError as exc:
                status = exc.code
                if status in (429, 418):
                    wait = _retry_after(exc.headers.get("Retry-After"))
                    self.rate_limit_waits += 1
                    self.last_retry_after_s = wait
                    log.warning("REST %s for %s: waiting Retry-After=%.1fs", status, symbol, wait)
                    if status == 418:  # IP banned for a while: do not burn attempts
                        if self.stop.wait(wait):
                            raise BackfillError("stopped", retryable=True) from None
                        continue
                    if self.stop.wait(wait):
                        raise BackfillError("stopped", retryable=True) from None
                    continue
                if status == 451:
                    raise BackfillError("HTTP 451: Binance refuses requests from this location", retryable=False, status=451) from None
                if 400 <= status < 500:
                    raise BackfillError(f"HTTP {status} from {url}: {exc.read()[:200]!r}", retryable=False, status=status) from None
                err = f"HTTP {status}"
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                err = str(getattr(exc, "reason", exc))
            if attempt < self.max_attempts and self.stop.wait(delay):
                raise BackfillError("stopped", retryable=True)
            delay = min(delay * 2, 8.0)
        raise BackfillError(f"REST request failed after {self.max_attempts} attempts: {err}")


def funding_frame(rows: list[dict]) -> pd.DataFrame:
    """``fundingRate`` rows (``{"symbol", "fundingTime", "fundingRate", "markPrice"}``) → a frame with
    ``funding_rate`` (float fraction) on a UTC index; malformed rows are dropped."""
    times, rates = [], []
    for r in rows:
        try:
            t, f = int(r["fundingTime"]), float(r["fundingRate"])
        except (KeyError, TypeError, ValueError):
            continue
        times.append(t)
        rates.append(f)
    return pd.DataFrame({"funding_rate": rates}, index=pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="time"))


def perpetual_universe(info: dict, tickers: list[dict] | None = None, quote: str = "USDT", top: int | None = None) -> pd.DataFrame:
    """Tradable USDⓈ-M perpetuals from ``exchangeInfo`` (status TRADING, contractType PERPETUAL, the quote
    asset), with their 24 h quote volume from ``ticker/24hr``, largest first (``top``: the first N).

    ``sessions`` flags contracts on stocks/commodities that trade in sessions (Binance's ``underlyingType``
    other than COIN, or an ``underlyingSubType`` naming a TradFi market): they stop trading outside hours.
    """
    vol = {}
    for t in tickers or []:
        try:
            vol[str(t["symbol"])] = float(t.get("quoteVolume", "nan"))
        except (KeyError, TypeError, ValueError):
            continue
    rows = []
    for s in info.get("symbols", []):
        if not isinstance(s, dict):
            continue
        if s.get("status") != "TRADING" or s.get("contractType") != "PERPETUAL" or s.get("quoteAsset") != quote:
            continue
        sub = [str(x).upper() for x in (s.get("underlyingSubType") or [])]
        utype = str(s.get("underlyingType", "COIN")).upper()
        sessions = utype not in ("COIN", "INDEX") or any(k in sub for k in ("TRADFI", "STOCK", "COMMODITY", "METAL", "FOREX"))
        rows.append({"symbol": str(s.get("symbol")), "base": s.get("baseAsset"), "quote_volume_24h": vol.get(str(s.get("symbol")), float("nan")),
                     "sessions": bool(sessions), "underlying": utype})
    out = pd.DataFrame(rows, columns=["symbol", "base", "quote_volume_24h", "sessions", "underlying"])
    out = out.sort_values("quote_volume_24h", ascending=False, na_position="last", kind="mergesort").reset_index(drop=True)
    return out.head(top) if top else out


def klines_frame(rows: list[list], now_ms: int) -> pd.DataFrame:
    """Binance kline rows -> bars (:data:`storage.bars.BAR_COLUMNS`, start-time UTC index); only
    klines that closed before ``now_ms`` (the forming one is left to the ticks)."""
    recs = []
    for r in rows:
        try:
            start, close_time = int(r[0]), int(r[6])
            vol, quote, buy = float(r[5]), float(r[7]), float(r[9])
            o, h, lo, c, n = float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[8])
        except (IndexError, TypeError, ValueError):
            continue
        if close_time >= now_ms or not (o > 0 and h > 0 and lo > 0 and c > 0) or vol < 0:
            continue
        recs.append((start, o, h, lo, c, vol, quote, quote / vol if vol > 0 else float("nan"), n, n, buy, max(0.0, vol - buy)))
    cols = ["open", "high", "low", "close", "volume", "quote_volume", "vwap", "trades", "fills", "taker_buy_volume", "taker_sell_volume"]
    df = pd.DataFrame([r[1:] for r in recs], columns=cols, index=pd.DatetimeIndex(
        pd.to_datetime([r[0] for r in recs], unit="ms", utc=True), name="time"))
    df["trades"] = df["trades"].astype("int64")
    df["fills"] = df["fills"].astype("int64")
    df["closed"] = True
    return df[~df.index.duplicated()].sort_index()


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
