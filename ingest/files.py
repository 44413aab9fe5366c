"""Load market data files: auto-detect the format, validate, normalise to ticks or bars — within bounds.

Formats (detection is reported to the user):

* data.binance.vision **aggTrades** CSV or ``.zip``, with or without the header
  (headers exist since 2022-08): ``agg_trade_id, price, quantity, first_trade_id,
  last_trade_id, transact_time, is_buyer_maker``;
* Binance **trades** files (``id/trade_id, price, qty/quantity, [quote_qty], time/transact_time, is_buyer_maker``);
* **tick CSV** with aliases: time ``timestamp/time/ts/transact_time/date``, price,
  size ``size/qty/quantity/volume/amount``, optional ``symbol`` and ``side``;
* **OHLCV bars** ``timestamp, open, high, low, close, volume`` (+ optional ``symbol``);
* **NDJSON** lines ``{"symbol", "ts", "price", "size"}`` (same aliases) and
  WebSocket recordings (one combined-stream frame a line).

Times may be ISO strings (naive = UTC; offsets converted to UTC) or epoch numbers
whose unit (s/ms/µs/ns) is detected by magnitude — once per file: a value that
only makes sense in another unit (a seconds time among milliseconds) is an
error at its line, as is any time before 2009 or after 2100.

Hostile or broken input is bounded (:class:`LoadLimits`): decompressed size and
ratio of a zip, members per zip, line length, columns, distinct symbols. CSVs
are parsed in chunks straight into typed arrays, so memory stays near the
file's size. Every problem raises :class:`FileFormatError` naming the real line
(counted across chunks and the header) and what was expected, with a hint for
the usual export mistakes (``;`` delimiter, decimal commas, UTF-16) — never a
traceback. Nothing is accepted silently: ids must be integers that fit 63 bits,
sizes must not be negative; rows with a zero/negative price are dropped and
counted, duplicates dropped and counted, unsorted input sorted and said.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["FileFormatError", "LoadLimits", "LoadReport", "LoadedData", "load_bytes", "merge_loaded"]

AGG_COLUMNS = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker"]
TRADE_COLUMNS = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
TIME_ALIASES = ("timestamp", "time", "ts", "transact_time", "datetime", "date", "open_time", "t")
PRICE_ALIASES = ("price", "p", "last", "close_price")
SIZE_ALIASES = ("size", "qty", "quantity", "volume", "amount", "q", "base_qty")
FILE_SYMBOL_RE = re.compile(r"([A-Z0-9]{2,20}(?:USDT|USDC|BUSD|USD_PERP|USD))", re.IGNORECASE)
SYMBOL_VALUE_RE = re.compile(r"^[A-Z0-9_]{2,30}$")
CHUNK_ROWS = 200_000
EARLIEST_MS = 1_230_768_000_000  # 2009-01-01: no crypto market traded before; earlier = a misread unit
LATEST_MS = 4_102_444_800_000  # 2100-01-01
MAX_ID = 2**63 - 1


class FileFormatError(ValueError):
    """The file cannot be loaded; the message says where and what was expected."""


@dataclass(frozen=True)
class LoadLimits:
    """Resource bounds for one upload (hostile files are refused before they cost memory or minutes)."""

    max_bytes: int = 500 * 1024 * 1024  # the file as uploaded
    max_unzipped_bytes: int = 500 * 1024 * 1024  # all members of a zip together, decompressed
    max_zip_ratio: float = 100.0  # decompressed / compressed (real aggTrades zips: ~5)
    max_zip_members: int = 64
    max_line_bytes: int = 64 * 1024
    max_columns: int = 64
    max_symbols: int = 200


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

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

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
        notes=list(dict.fromkeys(n for x in items for n in x.report.notes)),
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


# -- bytes -> text checks -------------------------------------------------------------


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def _check_text(name: str, data: bytes, limits: LoadLimits) -> None:
    """Encoding, NUL bytes and line length, before any parsing."""
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 8 and head.count(b"\x00") > len(head) // 4):
        raise FileFormatError(f"{name}: the file looks UTF-16 encoded; save it as UTF-8 CSV (Excel: 'CSV UTF-8 (comma delimited)')")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise FileFormatError(f"{name}: line {_line_of(data, nul)}: contains NUL bytes (a binary or corrupted file?)")
    arr = np.frombuffer(data, dtype=np.uint8)
    block = 16 * 1024 * 1024
    last_nl = -1
    for start in range(0, len(arr), block):
        nl = np.flatnonzero(arr[start : start + block] == 10) + start
        if len(nl):
            starts = np.concatenate([[last_nl + 1], nl[:-1] + 1])
            lengths = nl - starts
            worst = int(np.argmax(lengths))
            if lengths[worst] > limits.max_line_bytes:
                _too_long(name, data, int(starts[worst]), int(lengths[worst]), limits)
            last_nl = int(nl[-1])
        if min(start + block, len(arr)) - (last_nl + 1) > limits.max_line_bytes:
            _too_long(name, data, last_nl + 1, min(start + block, len(arr)) - (last_nl + 1), limits)


def _too_long(name: str, data: bytes, pos: int, length: int, limits: LoadLimits) -> None:
    raise FileFormatError(f"{name}: line {_line_of(data, pos)} is over {limits.max_line_bytes:,} bytes long "
                          f"({length:,} so far); is this a CSV with one row per line?")


def _delimiter_hint(first_line: str) -> str | None:
    if "," not in first_line and ";" in first_line:
        return ("the file uses ';' between columns (a European Excel export): save it with ',' as the delimiter "
                "and '.' as the decimal point (Excel: 'CSV UTF-8 (comma delimited)')")
    if "," not in first_line and "\t" in first_line:
        return "the file is tab-separated: save it with ',' as the delimiter"
    return None


def _unzip(name: str, data: bytes, limits: LoadLimits) -> list[tuple[str, bytes]]:
    """Data members of a zip, read within the decompression bounds; every member is reported."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise FileFormatError(f"{name}: not a valid zip archive") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        members = [i for i in infos if i.filename.lower().endswith((".csv", ".json", ".ndjson", ".jsonl", ".txt"))]
        if not members:
            raise FileFormatError(f"{name}: the zip holds no .csv or .json file")
        if len(members) > limits.max_zip_members:
            raise FileFormatError(f"{name}: the zip holds {len(members)} data files; at most {limits.max_zip_members} are loaded at once")
        budget = min(limits.max_unzipped_bytes, int(max(len(data), 1) * limits.max_zip_ratio))
        out = []
        total = 0
        for info in members:
            if info.file_size > budget - total:
                raise FileFormatError(f"{name}: {info.filename} expands to {info.file_size / 1e6:,.0f} MB; at most "
                                      f"{budget / 1e6:,.0f} MB (and {limits.max_zip_ratio:g}× the zip) are unpacked")
            buf = bytearray()
            try:
                with zf.open(info) as fh:
                    while chunk := fh.read(1 << 20):
                        buf += chunk
                        if total + len(buf) > budget:  # the size in the directory can lie
                            raise FileFormatError(f"{name}: {info.filename} expands beyond {budget / 1e6:,.0f} MB; refused")
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
                raise FileFormatError(f"{name}: {info.filename} is corrupt in the zip ({type(exc).__name__}); download it again") from None
            total += len(buf)
            out.append((info.filename, bytes(buf)))
        return out


# -- typed column parsers (one chunk at a time) -------------------------------------


@dataclass
class _TimeUnit:
    """The epoch unit of a file, decided once from its first chunk of numbers."""

    unit: str | None = None
    scale: float = 1.0


def _epoch_unit(values: np.ndarray) -> tuple[str, float]:
    with np.errstate(over="ignore", invalid="ignore"):
        mag = float(np.nanmedian(np.abs(values))) if len(values) else 0.0
    if mag > 1e17:
        return "ns", 1e-6
    if mag > 1e14:
        return "µs", 1e-3
    if mag > 1e11:
        return "ms", 1.0
    return "s", 1e3


def _times_ms(col: pd.Series, name: str, line0: int, report: LoadReport, unit: _TimeUnit) -> np.ndarray:
    """A time column (epoch numbers of the file's unit, or ISO strings) as int64 ms UTC."""
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().all():
        values = numeric.to_numpy(dtype="float64")
        if unit.unit is None:
            unit.unit, unit.scale = _epoch_unit(values)
            report.note(f"timestamps: epoch {unit.unit}")
        ms = values * unit.scale
        bad = ~np.isfinite(ms) | (ms < EARLIEST_MS) | (ms > LATEST_MS)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FileFormatError(f"line {line0 + i}: column '{name}': {col.iloc[i]!r} is not a plausible time in the file's "
                                  f"unit (epoch {unit.unit}: 2009..2100) — a different unit on this line?")
        return np.rint(ms).astype("int64")
    if numeric.notna().any() and unit.unit is not None:
        i = int(np.flatnonzero(numeric.isna().to_numpy())[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': cannot read {str(col.iloc[i])[:40]!r} as a time (expected epoch {unit.unit})")
    text = col.astype(str).str.strip()
    offsets = text.str.extract(r"([+-]\d{2}:?\d{2}|Z)$", expand=False).dropna().unique()
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': cannot read {text.iloc[i][:40]!r} as a time (expected ISO-8601 or epoch)")
    if len(offsets) > 1:
        report.note(f"mixed timezones {sorted(offsets)}: all converted to UTC")
    elif len(offsets) == 0:
        report.note("ISO times without timezone: taken as UTC")
    ms = parsed.dt.as_unit("ms").astype("int64").to_numpy()
    implausible = (ms < EARLIEST_MS) | (ms > LATEST_MS)
    if implausible.any():
        i = int(np.flatnonzero(implausible)[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': {text.iloc[i][:40]!r} is not a plausible time (2009..2100)")
    return ms


def _numbers(col: pd.Series, name: str, line0: int, nonnegative: bool = False) -> np.ndarray:
    out = pd.to_numeric(col, errors="coerce")
    text = col.astype(str).str.strip()
    missing = col.isna() | (text == "")
    bad = out.isna() & ~missing
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        hint = " (a decimal comma? use '.' as the decimal point)" if re.fullmatch(r"-?\d+,\d+", text.iloc[i]) else ""
        raise FileFormatError(f"line {line0 + i}: column '{name}': expected a number, got {text.iloc[i][:40]!r}{hint}")
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': value missing")
    vals = out.to_numpy(dtype="float64")
    if not np.all(np.isfinite(vals)):
        i = int(np.flatnonzero(~np.isfinite(vals))[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': {text.iloc[i][:40]!r} is not a finite number")
    if nonnegative and (vals < 0).any():
        i = int(np.flatnonzero(vals < 0)[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': {text.iloc[i][:40]!r} is negative; a size cannot be")
    return vals


def _ids(col: pd.Series, name: str, line0: int) -> np.ndarray:
    """Trade ids: integers in [0, 2^63) exactly (no float rounding, no overflow)."""
    text = col.astype(str).str.strip()
    ok = text.str.fullmatch(r"\d{1,19}")
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': {text.iloc[i][:40]!r} is not a whole, non-negative trade id")
    as_int = [int(v) for v in text.tolist()]
    too_big = [k for k, v in enumerate(as_int) if v > MAX_ID]
    if too_big:
        raise FileFormatError(f"line {line0 + too_big[0]}: column '{name}': {text.iloc[too_big[0]]} does not fit a 63-bit id")
    return np.array(as_int, dtype=np.int64)


def _bools(col: pd.Series, name: str, line0: int) -> np.ndarray:
    text = col.astype(str).str.strip().str.lower()
    mapping = {"true": True, "false": False, "1": True, "0": False, "sell": True, "buy": False, "t": True, "f": False}
    out = text.map(mapping)
    if out.isna().any():
        i = int(np.flatnonzero(out.isna().to_numpy())[0])
        raise FileFormatError(f"line {line0 + i}: column '{name}': expected true/false, got {str(col.iloc[i])[:40]!r}")
    return out.to_numpy(dtype=bool)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def _pick(cols: list[str], aliases: tuple[str, ...]) -> str | None:
    return next((a for a in aliases if a in cols), None)


def _symbol_from(name: str, given: str | None) -> str | None:
    if given:
        s = given.upper().strip()
        if not SYMBOL_VALUE_RE.match(s):
            raise FileFormatError(f"symbol {given[:30]!r}: expected letters and digits, e.g. BTCUSDT")
        return s
    m = FILE_SYMBOL_RE.search(name.upper())
    return m.group(1).upper() if m else None


# -- the file kinds ------------------------------------------------------------------------


@dataclass
class _Layout:
    """How one CSV's columns map to a tick or bar record."""

    kind: str  # "ticks" | "bars"
    fmt: str
    time: str
    price: str | None = None
    size: str | None = None
    side: str | None = None
    ident: str | None = None
    symbol_col: str | None = None
    ohlc: tuple[str, ...] = ()
    volume: str | None = None


def _layout_for(name: str, cols: list[str], has_header: bool) -> _Layout:
    sym = "symbol" if "symbol" in cols else None
    if not has_header:
        if len(cols) == 7:
            return _Layout("ticks", "data.binance.vision aggTrades (no header)", "transact_time", "price", "quantity",
                           "is_buyer_maker", "agg_trade_id")
        if len(cols) == 6:
            return _Layout("ticks", "Binance trades (no header)", "time", "price", "qty", "is_buyer_maker", "id")
        raise FileFormatError(f"{name}: no header and {len(cols)} columns; expected the 7-column aggTrades or 6-column trades layout")
    if set(AGG_COLUMNS) <= set(cols):
        return _Layout("ticks", "data.binance.vision aggTrades (with header)", "transact_time", "price", "quantity",
                       "is_buyer_maker", "agg_trade_id", sym)
    if {"open", "high", "low", "close"} <= set(cols):
        tcol = _pick(cols, TIME_ALIASES)
        if tcol is None:
            raise FileFormatError(f"{name}: OHLCV file without a time column (expected one of {', '.join(TIME_ALIASES)})")
        return _Layout("bars", "OHLCV bars", tcol, symbol_col=sym, ohlc=("open", "high", "low", "close"),
                       volume="volume" if "volume" in cols else None)
    tcol, pcol, qcol = _pick(cols, TIME_ALIASES), _pick(cols, PRICE_ALIASES), _pick(cols, SIZE_ALIASES)
    side = "is_buyer_maker" if "is_buyer_maker" in cols else "side" if "side" in cols else None
    ident = "trade_id" if "trade_id" in cols else "id" if "id" in cols else None
    if ident and pcol and qcol and tcol:
        return _Layout("ticks", "Binance trades", tcol, pcol, qcol, side, ident, sym)
    if pcol and tcol:
        if qcol is None:
            raise FileFormatError(f"{name}: missing column(s) ['size']; found {cols}")
        return _Layout("ticks", "tick CSV", tcol, pcol, qcol, side, ident, sym)
    raise FileFormatError(
        f"{name}: unrecognised columns {cols[:20]}; expected aggTrades, trades, ticks (time, price, size) or "
        "OHLCV (timestamp, open, high, low, close, volume)"
    )


class _Accumulator:
    """Typed arrays per symbol, appended chunk by chunk (memory ~ the rows, not their text)."""

    def __init__(self, layout: _Layout, fixed_symbol: str | None, limits: LoadLimits, name: str) -> None:
        self.layout = layout
        self.fixed_symbol = fixed_symbol
        self.limits = limits
        self.name = name
        self.parts: dict[str, list[dict[str, np.ndarray]]] = {}
        self.unit = _TimeUnit()
        self.rows = 0

    def add(self, df: pd.DataFrame, line0: int, report: LoadReport) -> None:
        lay = self.layout
        if lay.kind == "ticks":
            rec = {
                "trade_time": _times_ms(df[lay.time], lay.time, line0, report, self.unit),
                "price": _numbers(df[lay.price], lay.price, line0),
                "qty": _numbers(df[lay.size], lay.size, line0, nonnegative=True),
            }
            if lay.side is not None:
                rec["is_buyer_maker"] = _bools(df[lay.side], lay.side, line0)  # side: sell = taker sold
            rec["agg_id"] = _ids(df[lay.ident], lay.ident, line0) if lay.ident else np.full(len(df), -1, dtype=np.int64)
        else:
            rec = {"bar_time": _times_ms(df[lay.time], lay.time, line0, report, self.unit)}
            for c in lay.ohlc:
                rec[c] = _numbers(df[c], c, line0)
            rec["volume"] = _numbers(df[lay.volume], lay.volume, line0, nonnegative=True) if lay.volume else np.zeros(len(df))
        if lay.symbol_col is not None:
            syms = df[lay.symbol_col].astype(str).str.strip().str.upper()
            bad = ~syms.str.fullmatch(SYMBOL_VALUE_RE.pattern[1:-1])
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise FileFormatError(f"line {line0 + i}: column 'symbol': {str(df[lay.symbol_col].iloc[i])[:30]!r} is not a "
                                      "symbol (letters and digits, e.g. BTCUSDT)")
            for s in syms.unique():
                mask = (syms == s).to_numpy()
                self._put(s, {k: v[mask] for k, v in rec.items()})
        else:
            sym = self.fixed_symbol or _symbol_from(self.name, None)
            if sym is None:
                raise FileFormatError(f"{self.name}: cannot tell the symbol (no symbol column, none in the file name): choose it")
            self._put(sym, rec)
        self.rows += len(df)

    def _put(self, sym: str, rec: dict[str, np.ndarray]) -> None:
        if sym not in self.parts and len(self.parts) >= self.limits.max_symbols:
            raise FileFormatError(f"{self.name}: more than {self.limits.max_symbols} distinct symbols; split the file")
        self.parts.setdefault(sym, []).append(rec)

    def frames(self) -> dict[str, pd.DataFrame]:
        out = {}
        for sym, parts in self.parts.items():
            df = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
            if self.layout.kind == "ticks" and self.layout.side is None:
                df["is_buyer_maker"] = pd.array([pd.NA] * len(df), dtype="boolean")  # unknown, never "taker bought"
                df = df[["trade_time", "price", "qty", "is_buyer_maker", "agg_id"]]
            out[sym] = df
        return out


def _positive_sorted(df: pd.DataFrame, price: str, order: list[str], report: LoadReport) -> pd.DataFrame:
    """Drop rows whose ``price`` is <= 0 and sort by ``order`` if needed, counting both in ``report``."""
    keep = df[price] > 0
    report.dropped_nonpositive += int((~keep).sum())
    df = df[keep]
    if not df[order[0]].is_monotonic_increasing:
        report.was_unsorted = True
        df = df.sort_values(order, kind="stable")
    return df


def _finish(name: str, kind: str, frames: dict[str, pd.DataFrame], report: LoadReport, synthetic_ids: bool) -> LoadedData:
    out = {}
    for sym, df in frames.items():
        if kind == "ticks":
            if synthetic_ids:
                df = df.assign(agg_id=np.arange(len(df), dtype="int64"))
            df = _positive_sorted(df, "price", ["trade_time", "agg_id"], report)
            if synthetic_ids:
                same = int(df.duplicated(subset=["trade_time", "price", "qty"]).sum())
                if same:
                    report.note(f"{same} identical rows kept (without a trade id a duplicate cannot be told from a separate trade)")
                df.attrs["synthetic_ids"] = True
            else:
                before = len(df)
                df = df.drop_duplicates(subset=["agg_id"])
                report.dropped_duplicates += before - len(df)
        else:
            df = _positive_sorted(df, "close", ["bar_time"], report)
            before = len(df)
            df = df.drop_duplicates(subset=["bar_time"])
            report.dropped_duplicates += before - len(df)
        if len(df):
            out[sym] = df.reset_index(drop=True)
            out[sym].attrs["synthetic_ids"] = synthetic_ids
    report.rows_kept = sum(len(d) for d in out.values())
    report.symbols = sorted(out)
    if not out:
        raise FileFormatError(f"{name}: no valid rows left after dropping zero/negative prices")
    return LoadedData(kind, out, report)


def _load_csv(name: str, data: bytes, symbol: str | None, limits: LoadLimits, progress: Callable[[float], None] | None) -> LoadedData:
    text_head = data[:8192].decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text_head.splitlines()[0] if text_head.splitlines() else ""
    hint = _delimiter_hint(first)
    if hint and first.count(";") + first.count("\t") >= 2:
        raise FileFormatError(f"{name}: {hint}")
    fields = [f.strip() for f in first.split(",")]
    if len(fields) > limits.max_columns:
        raise FileFormatError(f"{name}: {len(fields):,} columns; at most {limits.max_columns} are accepted")
    has_header = not all(re.fullmatch(r"[-+0-9.eE]+|true|false|True|False", f) for f in fields if f)
    names = [_norm(f) for f in fields] if has_header else (AGG_COLUMNS if len(fields) == 7 else TRADE_COLUMNS if len(fields) == 6 else None)
    if names is None:
        raise FileFormatError(f"{name}: no header and {len(fields)} columns; expected the 7-column aggTrades or 6-column trades layout")
    if has_header and len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise FileFormatError(f"{name}: line 1: the column {dup!r} appears twice in the header")
    layout = _layout_for(name, names, has_header)
    report = LoadReport(layout.fmt)
    fixed = _symbol_from(name, symbol) if layout.symbol_col is None else None
    if layout.symbol_col is None and fixed is None:
        raise FileFormatError(f"{name}: cannot tell the symbol (no symbol column, none in the file name): choose it")
    acc = _Accumulator(layout, fixed, limits, name)
    total = max(1, data.count(b"\n"))
    line = 2 if has_header else 1
    header_text = [f.strip() for f in fields]
    try:
        reader = pd.read_csv(io.BytesIO(data), header=0 if has_header else None, names=None if has_header else names, dtype=str,
                             chunksize=CHUNK_ROWS, skipinitialspace=True, keep_default_na=False, on_bad_lines="error",
                             encoding_errors="replace", skip_blank_lines=True)
        for chunk in reader:
            if has_header:
                chunk.columns = names
                repeat = np.ones(len(chunk), dtype=bool)
                for c, h in zip(names, header_text, strict=True):
                    repeat &= chunk[c].astype(str).str.strip().to_numpy() == h
                if repeat.any():
                    i = int(np.flatnonzero(repeat)[0])
                    raise FileFormatError(f"{name}: line {line + i}: the header repeats (two files joined into one?)")
            acc.add(chunk, line, report)
            line += len(chunk)
            if progress is not None:
                progress(min(0.99, (line - 1) / total))
    except pd.errors.ParserError as exc:
        msg = str(exc).splitlines()[-1]
        raise FileFormatError(f"{name}: malformed CSV ({msg})" + (f"; {hint}" if hint else "")) from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{name}: not a UTF-8 text CSV file") from None
    except pd.errors.EmptyDataError:
        raise FileFormatError(f"{name}: no data rows") from None
    if acc.rows == 0:
        raise FileFormatError(f"{name}: no data rows")
    report.rows_read = acc.rows
    return _finish(name, layout.kind, acc.frames(), report, synthetic_ids=layout.kind == "ticks" and layout.ident is None)


def _load_ndjson(name: str, data: bytes, symbol: str | None, limits: LoadLimits) -> LoadedData:
    rows: list[dict] = []
    acc: _Accumulator | None = None
    report: LoadReport | None = None
    first_line = 1
    lines = data.decode("utf-8", errors="replace").splitlines()

    def flush(upto_line: int) -> None:
        nonlocal acc, report, rows, first_line
        if not rows:
            return
        df = pd.DataFrame(rows).astype(object)
        cols = list(df.columns)
        if acc is None:
            recording = "trade_id" in cols and "is_buyer_maker" in cols
            fmt = "WebSocket recording (JSON lines)" if recording else "NDJSON ticks"
            tcol, pcol, qcol = _pick(cols, TIME_ALIASES), _pick(cols, PRICE_ALIASES), _pick(cols, SIZE_ALIASES)
            missing = [n for n, c in (("time", tcol), ("price", pcol), ("size", qcol)) if c is None]
            if missing:
                raise FileFormatError(f"{name}: missing field(s) {missing}; found {cols[:20]}")
            side = "is_buyer_maker" if "is_buyer_maker" in cols else "side" if "side" in cols else None
            ident = "trade_id" if "trade_id" in cols else "id" if "id" in cols else None
            layout = _Layout("ticks", fmt, tcol, pcol, qcol, side, ident, "symbol" if "symbol" in cols else None)
            report = LoadReport(fmt)
            fixed = _symbol_from(name, symbol) if layout.symbol_col is None else None
            acc = _Accumulator(layout, fixed, limits, name)
        for c in (acc.layout.time, acc.layout.price, acc.layout.size):
            if c not in df.columns:
                df[c] = None
        acc.add(df, first_line, report)
        rows = []
        first_line = upto_line

    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not rows:
            first_line = i
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"line {i}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise FileFormatError(f"line {i}: expected a JSON object")
        if len(obj) > limits.max_columns:
            raise FileFormatError(f"line {i}: {len(obj)} fields; at most {limits.max_columns} are accepted")
        if isinstance(obj.get("data"), dict):  # a WebSocket recording: combined-stream frames
            d = obj["data"]
            if d.get("e") not in ("trade", "aggTrade"):
                continue  # subscription replies and other events are not trades
            obj = {"symbol": d.get("s"), "ts": d.get("T"), "price": d.get("p"), "size": d.get("q"),
                   "is_buyer_maker": d.get("m"), "trade_id": d.get("a", d.get("t"))}
        rows.append({_norm(k): v for k, v in obj.items()})
        if len(rows) >= CHUNK_ROWS:
            flush(i + 1)
    flush(len(lines) + 1)
    if acc is None or acc.rows == 0 or report is None:
        raise FileFormatError(f"{name}: no JSON lines with trades")
    report.rows_read = acc.rows
    return _finish(name, "ticks", acc.frames(), report, synthetic_ids=acc.layout.ident is None)


def load_bytes(
    name: str,
    data: bytes,
    symbol: str | None = None,
    max_bytes: int | None = None,
    progress: Callable[[float], None] | None = None,
    limits: LoadLimits | None = None,
) -> LoadedData:
    """Detect, parse and validate one uploaded file (see the module docstring).

    A zip may hold several data files: each is loaded and the results merged
    (one dataset), and the report names every member.
    """
    limits = limits or LoadLimits()
    if max_bytes is not None:
        limits = LoadLimits(**{**limits.__dict__, "max_bytes": int(max_bytes)})
    if len(data) > limits.max_bytes:
        raise FileFormatError(f"{name}: {len(data) / 1e6:.0f} MB is over the {limits.max_bytes / 1e6:.0f} MB limit")
    if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
        members = _unzip(name, data, limits)
        loaded = [_load_one(f"{name}:{inner}", body, symbol or _symbol_from(inner, None) or _symbol_from(name, None), limits, progress)
                  for inner, body in members]
        merged = merge_loaded(loaded)
        if len(members) > 1:
            merged.report.note(f"zip: {len(members)} files loaded ({', '.join(m for m, _ in members[:10])}"
                               + (", …" if len(members) > 10 else "") + ")")
        return merged
    return _load_one(name, data, symbol, limits, progress)


def _load_one(name: str, data: bytes, symbol: str | None, limits: LoadLimits, progress: Callable[[float], None] | None) -> LoadedData:
    _check_text(name, data, limits)
    text_head = data[:4096].decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    if not text_head.strip():
        raise FileFormatError(f"{name}: the file is empty")
    if text_head.startswith("{"):
        return _load_ndjson(name, data, symbol, limits)
    return _load_csv(name, data, symbol, limits, progress)
