"""Load market data files: auto-detect the format, validate, normalise to ticks or bars.

Formats (detection is reported to the user):

* data.binance.vision **aggTrades** CSV or ``.zip``, with or without the header
  (headers exist since 2022-08): ``agg_trade_id, price, quantity, first_trade_id,
  last_trade_id, transact_time, is_buyer_maker``;
* Binance **trades** files (``id/trade_id, price, qty/quantity, [quote_qty], time/transact_time, is_buyer_maker``);
* **tick CSV** with aliases: time ``timestamp/time/ts/transact_time/date``, price,
  size ``size/qty/quantity/volume/amount``, optional ``symbol`` and ``side``;
* **OHLCV bars** ``timestamp, open, high, low, close, volume`` (+ optional ``symbol``);
* **NDJSON** lines ``{"symbol", "ts", "price", "size"}`` (same aliases).

Times may be ISO strings (naive = UTC; offsets converted to UTC) or epoch numbers
whose unit (s/ms/µs/ns) is detected by magnitude. Rows with a zero/negative
price are dropped and counted; duplicates are dropped and counted; unsorted
input is sorted (and said). Problems raise :class:`FileFormatError` with the
line, column and what was expected — never a traceback.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["FileFormatError", "LoadReport", "LoadedData", "load_bytes"]

AGG_COLUMNS = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker"]
TIME_ALIASES = ("timestamp", "time", "ts", "transact_time", "datetime", "date", "open_time", "t")
PRICE_ALIASES = ("price", "p", "last", "close_price")
SIZE_ALIASES = ("size", "qty", "quantity", "volume", "amount", "q", "base_qty")
SYMBOL_RE = re.compile(r"([A-Z0-9]{2,20}(?:USDT|USDC|BUSD|USD_PERP|USD))", re.IGNORECASE)
CHUNK_ROWS = 250_000


class FileFormatError(ValueError):
    """The file cannot be loaded; the message says where and what was expected."""


@dataclass
class LoadReport:
    format: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped_nonpositive: int = 0
    dropped_duplicates: int = 0
    was_unsorted: bool = False
    symbols: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"Detected: {self.format}", f"{self.rows_kept:,} of {self.rows_read:,} rows kept"]
        if self.dropped_nonpositive:
            parts.append(f"{self.dropped_nonpositive:,} rows with zero/negative price dropped")
        if self.dropped_duplicates:
            parts.append(f"{self.dropped_duplicates:,} duplicate rows dropped")
        if self.was_unsorted:
            parts.append("input was not in time order: sorted")
        return "; ".join(parts + self.notes)


@dataclass
class LoadedData:
    """``kind`` is ``"ticks"`` (columns trade_time ms, price, qty, is_buyer_maker, agg_id) or
    ``"bars"`` (bar_time ms, open, high, low, close, volume); one frame per symbol."""

    kind: str
    frames: dict[str, pd.DataFrame]
    report: LoadReport


def merge_loaded(items: list[LoadedData]) -> LoadedData:
    """One dataset from several loaded files (e.g. one per day or per symbol).

    Frames of the same symbol are joined in time order, not replaced; rows that
    two files both hold (same aggregate id, or same bar time) are kept once and
    counted. Ticks without exchange ids (numbered per file) are never de-duplicated.
    """
    if not items:
        raise FileFormatError("no files to load")
    if len({x.kind for x in items}) != 1:
        raise FileFormatError("cannot mix tick files and bar files in one dataset")
    if len(items) == 1:
        return items[0]
    kind = items[0].kind
    report = LoadReport(
        format="; ".join(dict.fromkeys(x.report.format for x in items)),
        rows_read=sum(x.report.rows_read for x in items),
        dropped_nonpositive=sum(x.report.dropped_nonpositive for x in items),
        dropped_duplicates=sum(x.report.dropped_duplicates for x in items),
        was_unsorted=any(x.report.was_unsorted for x in items),
        notes=[n for x in items for n in x.report.notes],
    )
    by_symbol: dict[str, list[pd.DataFrame]] = {}
    for x in items:
        for sym, df in x.frames.items():
            by_symbol.setdefault(sym, []).append(df)
    order, key = (["trade_time", "agg_id"], "agg_id") if kind == "ticks" else (["bar_time"], "bar_time")
    frames = {}
    for sym, parts in by_symbol.items():
        df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        df = df.sort_values(order, kind="stable")
        if not any(p.attrs.get("synthetic_ids") for p in parts):
            before = len(df)
            df = df.drop_duplicates(subset=[key])
            report.dropped_duplicates += before - len(df)
        frames[sym] = df.reset_index(drop=True)
    report.rows_kept = sum(len(d) for d in frames.values())
    report.symbols = sorted(frames)
    return LoadedData(kind, frames, report)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def _pick(cols: list[str], aliases: tuple[str, ...]) -> str | None:
    return next((a for a in aliases if a in cols), None)


def _epoch_to_ms(values: np.ndarray) -> tuple[np.ndarray, str]:
    with np.errstate(over="ignore", invalid="ignore"):
        mag = np.nanmedian(np.abs(values)) if len(values) else 0
    if mag > 1e17:
        return values / 1e6, "ns"
    if mag > 1e14:
        return values / 1e3, "µs"
    if mag > 1e11:
        return values, "ms"
    return values * 1e3, "s"


_LATEST_MS = 4_102_444_800_000  # 2100-01-01: later (or pre-1970) times are misread columns


def _times_ms(col: pd.Series, name: str, line0: int, report: LoadReport) -> np.ndarray:
    """Parse a time column (epoch numbers of any unit, or ISO strings) to int64 ms UTC."""
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().all():
        ms, unit = _epoch_to_ms(numeric.to_numpy(dtype="float64"))
        bad = ~np.isfinite(ms) | (ms < 0) | (ms > _LATEST_MS)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FileFormatError(f"line {line0 + i}: column '{name}': {col.iloc[i]!r} is not a plausible epoch time")
        report.notes.append(f"timestamps: epoch {unit}")
        return np.rint(ms).astype("int64")
    text = col.astype(str).str.strip()
    offsets = text.str.extract(r"([+-]\d{2}:?\d{2}|Z)$", expand=False).dropna().unique()
    try:
        parsed = pd.to_datetime(text, utc=True, format="mixed", errors="coerce")
    except (ValueError, TypeError):
        parsed = pd.Series(pd.NaT, index=text.index)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': cannot read {text.iloc[i]!r} as a time (expected ISO-8601 or epoch)")
    if len(offsets) > 1:
        report.notes.append(f"mixed timezones {sorted(offsets)}: all converted to UTC")
    elif len(offsets) == 0:
        report.notes.append("ISO times without timezone: taken as UTC")
    ms = parsed.dt.as_unit("ms").astype("int64").to_numpy()
    implausible = (ms < 0) | (ms > _LATEST_MS)
    if implausible.any():
        i = int(np.flatnonzero(implausible)[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': {text.iloc[i]!r} is not a plausible time (1970..2100)")
    return ms


def _numbers(col: pd.Series, name: str, line0: int) -> np.ndarray:
    out = pd.to_numeric(col, errors="coerce")
    bad = out.isna() & col.notna() & (col.astype(str).str.strip() != "")
    missing = col.isna() | (col.astype(str).str.strip() == "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': expected a number, got {col.iloc[i]!r}")
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': value missing")
    vals = out.to_numpy(dtype="float64")
    if not np.all(np.isfinite(vals)):
        i = int(np.flatnonzero(~np.isfinite(vals))[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': {col.iloc[i]!r} is not a finite number")
    return vals


def _bools(col: pd.Series, name: str, line0: int) -> np.ndarray:
    text = col.astype(str).str.strip().str.lower()
    mapping = {"true": True, "false": False, "1": True, "0": False, "sell": True, "buy": False, "t": True, "f": False}
    out = text.map(mapping)
    if out.isna().any():
        i = int(np.flatnonzero(out.isna().to_numpy())[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': expected true/false, got {col.iloc[i]!r}")
    return out.to_numpy(dtype=bool)


def _symbol_from(name: str, given: str | None) -> str | None:
    if given:
        return given.upper().strip()
    m = SYMBOL_RE.search(name.upper())
    return m.group(1).upper() if m else None


def _split_by_symbol(name: str, df: pd.DataFrame, frame: pd.DataFrame, symbol: str | None, line0: int) -> dict[str, pd.DataFrame]:
    """Rows of ``frame`` per symbol: from the ``symbol`` column, else the file name, else ``symbol``."""
    if "symbol" in df.columns:
        syms = df["symbol"].astype(str).str.strip().str.upper()
        if (syms == "").any():
            i = int(np.flatnonzero((syms == "").to_numpy())[0])
            raise FileFormatError(f"line {line0 + i}: column 'symbol': value missing")
        return {s: frame[(syms == s).to_numpy()] for s in syms.unique()}
    sym = _symbol_from(name, symbol)
    if sym is None:
        raise FileFormatError(f"{name}: cannot tell the symbol (no symbol column, none in the file name): choose it")
    return {sym: frame}


def _unzip(name: str, data: bytes) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [m for m in zf.namelist() if m.lower().endswith((".csv", ".json", ".ndjson", ".jsonl"))]
            if not members:
                raise FileFormatError(f"{name}: the zip holds no .csv file")
            return members[0], zf.read(members[0])
    except zipfile.BadZipFile:
        raise FileFormatError(f"{name}: not a valid zip archive") from None


def load_bytes(
    name: str,
    data: bytes,
    symbol: str | None = None,
    max_bytes: int = 500 * 1024 * 1024,
    progress: Callable[[float], None] | None = None,
) -> LoadedData:
    """Detect, parse and validate one uploaded file (see the module docstring)."""
    if len(data) > max_bytes:
        raise FileFormatError(f"{name}: {len(data) / 1e6:.0f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
        inner, data = _unzip(name, data)
        name = f"{name}:{inner}"
    text_head = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    if not text_head.strip():
        raise FileFormatError(f"{name}: the file is empty")
    if text_head.startswith("{"):
        return _load_ndjson(name, data, symbol)
    return _load_csv(name, data, symbol, progress)


def _load_ndjson(name: str, data: bytes, symbol: str | None) -> LoadedData:
    rows = []
    for i, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"line {i}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise FileFormatError(f"line {i}: expected a JSON object")
        if isinstance(obj.get("data"), dict):  # a WebSocket recording: combined-stream frames
            d = obj["data"]
            if d.get("e") not in ("trade", "aggTrade"):
                continue  # subscription replies and other events are not trades
            obj = {"symbol": d.get("s"), "ts": d.get("T"), "price": d.get("p"), "size": d.get("q"),
                   "is_buyer_maker": d.get("m"), "trade_id": d.get("a", d.get("t"))}
        rows.append({_norm(k): v for k, v in obj.items()})
    if not rows:
        raise FileFormatError(f"{name}: no JSON lines with trades")
    df = pd.DataFrame(rows).astype(object)
    kind = "WebSocket recording (JSON lines)" if "trade_id" in df.columns and "is_buyer_maker" in df.columns else "NDJSON ticks"
    return _ticks_from_frame(name, df, symbol, LoadReport(kind), line0=1)


def _load_csv(name: str, data: bytes, symbol: str | None, progress: Callable[[float], None] | None) -> LoadedData:
    first = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[0]
    fields = [f.strip() for f in first.split(",")]
    has_header = not all(re.fullmatch(r"[-+0-9.eE]+|true|false|True|False", f) for f in fields if f)
    chunks = []
    total = max(1, data.count(b"\n"))
    try:
        reader = pd.read_csv(io.BytesIO(data), header=0 if has_header else None, dtype=str, chunksize=CHUNK_ROWS,
                             skipinitialspace=True, keep_default_na=False, on_bad_lines="error", encoding_errors="replace")
        done = 0
        for chunk in reader:
            chunks.append(chunk)
            done += len(chunk)
            if progress is not None:
                progress(min(1.0, done / total))
    except pd.errors.ParserError as exc:
        raise FileFormatError(f"{name}: malformed CSV ({str(exc).splitlines()[-1]})") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{name}: not a text CSV file") from None
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise FileFormatError(f"{name}: no data rows")
    df = pd.concat(chunks, ignore_index=True)
    line0 = 2 if has_header else 1
    if not has_header:
        if df.shape[1] == 7:
            df.columns = AGG_COLUMNS
            return _agg_trades(name, df, symbol, LoadReport("data.binance.vision aggTrades (no header)"), line0)
        if df.shape[1] == 6:
            df.columns = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
            return _ticks_from_frame(name, df, symbol, LoadReport("Binance trades (no header)"), line0)
        raise FileFormatError(f"{name}: no header and {df.shape[1]} columns; expected the 7-column aggTrades or 6-column trades layout")
    df.columns = [_norm(c) for c in df.columns]
    cols = list(df.columns)
    if set(AGG_COLUMNS) <= set(cols):
        return _agg_trades(name, df, symbol, LoadReport("data.binance.vision aggTrades (with header)"), line0)
    if {"open", "high", "low", "close"} <= set(cols):
        return _bars(name, df, symbol, line0)
    if ("trade_id" in cols or "id" in cols) and "price" in cols and _pick(cols, SIZE_ALIASES):
        return _ticks_from_frame(name, df, symbol, LoadReport("Binance trades"), line0)
    if _pick(cols, PRICE_ALIASES) and _pick(cols, TIME_ALIASES):
        return _ticks_from_frame(name, df, symbol, LoadReport("tick CSV"), line0)
    raise FileFormatError(
        f"{name}: unrecognised columns {cols}; expected aggTrades, trades, ticks (time, price, size) or OHLCV (timestamp, open, high, low, close, volume)"
    )


def _positive_sorted(df: pd.DataFrame, price: str, order: list[str], report: LoadReport) -> pd.DataFrame:
    """Drop rows whose ``price`` is <= 0 and sort by ``order`` if needed, counting both in ``report``."""
    keep = df[price] > 0
    report.dropped_nonpositive += int((~keep).sum())
    df = df[keep]
    if not df[order[0]].is_monotonic_increasing:
        report.was_unsorted = True
        df = df.sort_values(order, kind="stable")
    return df


def _finish_ticks(name: str, frames: dict[str, pd.DataFrame], report: LoadReport) -> LoadedData:
    out = {}
    for sym, df in frames.items():
        df = _positive_sorted(df, "price", ["trade_time", "agg_id"], report)
        if df.attrs.get("synthetic_ids"):
            same = int(df.duplicated(subset=["trade_time", "price", "qty"]).sum())
            if same:
                report.notes.append(f"{same} identical rows kept (without a trade id a duplicate cannot be told from a separate trade)")
        else:
            before = len(df)
            df = df.drop_duplicates(subset=["agg_id"])
            report.dropped_duplicates += before - len(df)
        if len(df):
            out[sym] = df.reset_index(drop=True)
    report.rows_kept = sum(len(d) for d in out.values())
    report.symbols = sorted(out)
    if not out:
        raise FileFormatError(f"{name}: no valid rows left after dropping zero/negative prices")
    return LoadedData("ticks", out, report)


def _agg_trades(name: str, df: pd.DataFrame, symbol: str | None, report: LoadReport, line0: int) -> LoadedData:
    sym = _symbol_from(name, symbol)
    if sym is None:
        raise FileFormatError(f"{name}: cannot tell the symbol (no symbol column, none in the file name): choose it")
    report.rows_read = len(df)
    frame = pd.DataFrame({
        "trade_time": _times_ms(df["transact_time"], "transact_time", line0, report),
        "price": _numbers(df["price"], "price", line0),
        "qty": _numbers(df["quantity"], "quantity", line0),
        "is_buyer_maker": _bools(df["is_buyer_maker"], "is_buyer_maker", line0),
        "agg_id": _numbers(df["agg_trade_id"], "agg_trade_id", line0).astype("int64"),
    })
    return _finish_ticks(name, {sym: frame}, report)


def _ticks_from_frame(name: str, df: pd.DataFrame, symbol: str | None, report: LoadReport, line0: int) -> LoadedData:
    cols = list(df.columns)
    tcol, pcol, qcol = _pick(cols, TIME_ALIASES), _pick(cols, PRICE_ALIASES), _pick(cols, SIZE_ALIASES)
    missing = [n for n, c in (("time", tcol), ("price", pcol), ("size", qcol)) if c is None]
    if missing:
        raise FileFormatError(f"{name}: missing column(s) {missing}; found {cols}")
    report.rows_read = len(df)
    frame = pd.DataFrame({
        "trade_time": _times_ms(df[tcol], tcol, line0, report),
        "price": _numbers(df[pcol], pcol, line0),
        "qty": _numbers(df[qcol], qcol, line0),
    })
    if "is_buyer_maker" in cols:
        frame["is_buyer_maker"] = _bools(df["is_buyer_maker"], "is_buyer_maker", line0)
    elif "side" in cols:
        frame["is_buyer_maker"] = _bools(df["side"], "side", line0)  # sell = taker sold
    else:
        frame["is_buyer_maker"] = False
        report.notes.append("no taker side column: buy/sell volume split unavailable")
    idcol = "trade_id" if "trade_id" in cols else "id" if "id" in cols else None
    frame["agg_id"] = _numbers(df[idcol], idcol, line0).astype("int64") if idcol else -1
    frames = _split_by_symbol(name, df, frame, symbol, line0)
    if idcol is None:
        for s, f in frames.items():
            frames[s] = f.assign(agg_id=np.arange(len(f), dtype="int64"))
            frames[s].attrs["synthetic_ids"] = True
    return _finish_ticks(name, frames, report)


def _bars(name: str, df: pd.DataFrame, symbol: str | None, line0: int) -> LoadedData:
    cols = list(df.columns)
    report = LoadReport("OHLCV bars")
    tcol = _pick(cols, TIME_ALIASES)
    if tcol is None:
        raise FileFormatError(f"{name}: OHLCV file without a time column (expected one of {TIME_ALIASES})")
    report.rows_read = len(df)
    frame = pd.DataFrame({"bar_time": _times_ms(df[tcol], tcol, line0, report)})
    for c in ("open", "high", "low", "close"):
        frame[c] = _numbers(df[c], c, line0)
    frame["volume"] = _numbers(df["volume"], "volume", line0) if "volume" in cols else 0.0
    frames = _split_by_symbol(name, df, frame, symbol, line0)
    out = {}
    for s, f in frames.items():
        f = _positive_sorted(f, "close", ["bar_time"], report)
        before = len(f)
        f = f.drop_duplicates(subset=["bar_time"])
        report.dropped_duplicates += before - len(f)
        out[s] = f.reset_index(drop=True)
    report.rows_kept = sum(len(f) for f in out.values())
    report.symbols = sorted(out)
    if not report.rows_kept:
        raise FileFormatError(f"{name}: no valid bars")
    return LoadedData("bars", out, report)
