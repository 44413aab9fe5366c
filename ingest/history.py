"""Download official daily aggTrades files for USDⓈ-M futures from data.binance.vision.

``{base}/data/futures/um/daily/aggTrades/{SYM}/{SYM}-aggTrades-{YYYY-MM-DD}.zip`` with a
``.CHECKSUM`` file beside it (``<sha256>  <file name>``). Each zip is verified
before it is kept in the cache folder; a mismatch deletes the download and
raises :class:`HistoryError`. Cached, verified files are not downloaded again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ingest.files import load_bytes, merge_loaded

__all__ = ["HistoryError", "daily_urls", "download_days", "download_trades"]


class HistoryError(RuntimeError):
    """A history file could not be fetched or failed verification."""


def daily_urls(base_url: str, symbol: str, day: dt.date) -> tuple[str, str, str]:
    """(zip URL, checksum URL, file name) for one symbol and UTC day."""
    sym = symbol.upper()
    name = f"{sym}-aggTrades-{day:%Y-%m-%d}.zip"
    url = f"{base_url.rstrip('/')}/data/futures/um/daily/aggTrades/{sym}/{name}"
    return url, url + ".CHECKSUM", name


def _get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise HistoryError(f"{url}: not found (not published yet, or the symbol is not listed that day)") from None
        raise HistoryError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise HistoryError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def download_days(
    base_url: str,
    symbol: str,
    start: dt.date,
    end: dt.date,
    cache_dir: Path,
    timeout: float = 60.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Path]:
    """Fetch and verify every day in ``[start, end]``; return the cached zip paths."""
    if end < start:
        raise HistoryError("end date is before start date")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    if len(days) > 366:
        raise HistoryError("at most 366 days per request")
    cache_dir = Path(cache_dir) / symbol.upper()
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, day in enumerate(days):
        url, sum_url, name = daily_urls(base_url, symbol, day)
        if progress is not None:
            progress(i, len(days), name)
        target = cache_dir / name
        expected = _get(sum_url, timeout).decode("ascii", errors="replace").split()
        if not expected or len(expected[0]) != 64:
            raise HistoryError(f"{sum_url}: not a sha256 checksum file")
        digest = expected[0].lower()
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
            out.append(target)
            continue
        data = _get(url, timeout)
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            raise HistoryError(f"{name}: checksum mismatch (expected {digest[:12]}…, got {got[:12]}…); the download was discarded")
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        out.append(target)
    if progress is not None:
        progress(len(days), len(days), "done")
    return out


def download_trades(
    base_url: str,
    symbols: list[str],
    start: dt.date,
    end: dt.date,
    cache_dir: Path,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Download, verify and parse every day for every symbol: one tick frame per symbol.

    ``progress(fraction, file_name)`` is called as files arrive. This is what the
    dashboard and the CLI both save as a dataset.
    """
    days = []
    for k, sym in enumerate(symbols):
        def tick(i: int, n: int, name: str, k: int = k) -> None:
            if progress is not None:
                progress(min(1.0, (k + i / max(n, 1)) / len(symbols)), name)

        days += [load_bytes(path.name, path.read_bytes(), sym) for path in download_days(base_url, sym, start, end, cache_dir, progress=tick)]
    return merge_loaded(days).frames if days else {}
