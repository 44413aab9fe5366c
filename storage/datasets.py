"""Uploaded datasets: kept in their own SQLite tables, never mixed into live ``ticks``.

A dataset is either ticks (``dataset_ticks``) or bars (``dataset_bars``) for one
or more symbols, under a user-chosen name; it can be listed, turned into bars
of any timeframe at least as coarse as its own, and deleted.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from storage.bars import BAR_COLUMNS, resample_ticks, timeframe_ms
from storage.sqlite import connect, migrate

__all__ = ["DatasetStore"]


class DatasetStore:
    """Named uploaded datasets in SQLite (see the module docstring).

    A dataset is a set of *legs* (one per symbol), each stored under its own
    storage key. Rows are written under a fresh key in transactions of at most
    ``batch_rows`` rows (the live tick writer never waits long for the lock); the
    ``datasets``/``dataset_legs`` rows that name them are switched in one short
    transaction at the end, so readers see the old dataset or the new one, never
    a mix, and a load that dies half-way leaves no visible data (its rows are
    removed at the next save or delete). ``mode="add"`` adds legs to an existing
    dataset (a leg of the same symbol is replaced, the others are kept).
    """

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        conn = self._conn()
        migrate(conn)
        conn.close()

    def _conn(self) -> sqlite3.Connection:
        return connect(self.db_path)

    def save(self, name: str, kind: str, frames: dict[str, pd.DataFrame], source: str = "", detail: str = "",
             batch_rows: int = 50_000, progress: Callable[[float], None] | None = None,
             mode: Literal["replace", "add"] = "replace") -> int:
        """Store ``frames`` (symbol → rows) as dataset ``name``; returns rows written.

        ``mode="replace"`` (default) replaces any dataset of that name; ``"add"`` adds the
        symbols as legs of the existing dataset (same kind: ticks or bars), replacing
        only a leg of the same symbol. Raises ``ValueError`` for an empty name, an unknown
        kind, or adding bars to a tick dataset (or the reverse).
        """
        name = name.strip()
        if not name:
            raise ValueError("dataset name must not be empty")
        if kind not in ("ticks", "bars"):
            raise ValueError("kind must be 'ticks' or 'bars'")
        if mode not in ("replace", "add"):
            raise ValueError("mode must be 'replace' or 'add'")
        if mode == "add":
            existing = self.info(name)
            if existing is not None and existing["kind"] != kind:
                raise ValueError(f"dataset '{name}' holds {existing['kind']}; these files hold {kind}: "
                                 "load them under another name, or replace the dataset")
        key = f"{name}#{uuid.uuid4().hex[:12]}"
        total = max(1, sum(len(df) for df in frames.values()))
        rows = 0
        leg_rows: dict[str, int] = {}
        conn = self._conn()
        try:
            for sym, df in frames.items():
                leg_rows[sym] = len(df)
                for lo in range(0, len(df), batch_rows):
                    part = df.iloc[lo : lo + batch_rows]
                    n = len(part)
                    with conn:
                        if kind == "ticks":
                            conn.executemany(
                                "INSERT INTO dataset_ticks (dataset, symbol, seq, trade_time, price, qty, is_buyer_maker, agg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                zip([key] * n, [sym] * n, range(lo, lo + n), part["trade_time"].astype("int64").tolist(),
                                    part["price"].tolist(), part["qty"].tolist(), _side_values(part["is_buyer_maker"]),
                                    part["agg_id"].astype("int64").tolist(), strict=True),
                            )
                        else:
                            conn.executemany(
                                "INSERT INTO dataset_bars (dataset, symbol, bar_time, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                zip([key] * n, [sym] * n, part["bar_time"].astype("int64").tolist(), part["open"].tolist(),
                                    part["high"].tolist(), part["low"].tolist(), part["close"].tolist(), part["volume"].tolist(), strict=True),
                            )
                    rows += n
                    if progress is not None:
                        progress(rows / total)
            now = time.time()
            with conn:
                old = conn.execute("SELECT kind, detail, source FROM datasets WHERE name = ?", (name,)).fetchone()
                if mode == "add" and old is not None and old[0] != kind:  # changed while we wrote
                    raise ValueError(f"dataset '{name}' holds {old[0]}; these files hold {kind}")
                if mode == "replace" or old is None:
                    conn.execute("DELETE FROM dataset_legs WHERE name = ?", (name,))
                    new_detail, new_source = detail, source
                else:
                    conn.executemany("DELETE FROM dataset_legs WHERE name = ? AND symbol = ?", [(name, s) for s in frames])
                    new_detail = "; ".join(d for d in (old[1], f"added {', '.join(sorted(frames))}: {detail}") if d)
                    new_source = ", ".join(d for d in (old[2], source) if d)
                conn.executemany(
                    "INSERT INTO dataset_legs (name, symbol, storage_key, rows, added_at, source) VALUES (?, ?, ?, ?, ?, ?)",
                    [(name, s, key, n, now, source) for s, n in leg_rows.items()])
                legs = conn.execute("SELECT symbol, rows FROM dataset_legs WHERE name = ? ORDER BY symbol", (name,)).fetchall()
                conn.execute("DELETE FROM datasets WHERE name = ?", (name,))
                conn.execute(
                    "INSERT INTO datasets (name, kind, source, created_at, rows, symbols, detail, storage_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, kind, new_source, now, sum(r for _, r in legs), json.dumps([s for s, _ in legs]), new_detail, key),
                )
        except BaseException:
            self._purge(conn, key, batch_rows=batch_rows)
            conn.close()
            raise
        try:
            self._purge_orphans(conn, batch_rows)
        finally:
            conn.close()
        return rows

    @staticmethod
    def _purge(conn: sqlite3.Connection, key: str, symbol: str | None = None, batch_rows: int = 50_000) -> None:
        """Delete the rows stored under ``key`` (one ``symbol``'s only, if given), a batch per transaction."""
        for table, col in (("dataset_ticks", "seq"), ("dataset_bars", "bar_time")):
            where = "dataset = ?" + (" AND symbol = ?" if symbol is not None else "")
            args = (key,) if symbol is None else (key, symbol)
            while True:
                with conn:
                    cur = conn.execute(
                        f"DELETE FROM {table} WHERE {where} AND (symbol, {col}) IN "
                        f"(SELECT symbol, {col} FROM {table} WHERE {where} LIMIT ?)", (*args, *args, batch_rows))
                if cur.rowcount <= 0:
                    break

    def _purge_orphans(self, conn: sqlite3.Connection, batch_rows: int = 50_000) -> None:
        """Rows no leg names (a replaced leg, a load that died half-way)."""
        live = set(conn.execute("SELECT storage_key, symbol FROM dataset_legs").fetchall())
        for table in ("dataset_ticks", "dataset_bars"):
            for key, symbol in conn.execute(f"SELECT DISTINCT dataset, symbol FROM {table}").fetchall():
                if (key, symbol) not in live:
                    self._purge(conn, key, symbol, batch_rows)

    def _leg_key(self, conn: sqlite3.Connection, name: str, symbol: str) -> str | None:
        row = conn.execute("SELECT storage_key FROM dataset_legs WHERE name = ? AND symbol = ?", (name, symbol)).fetchone()
        return None if row is None else row[0]

    def delete(self, name: str) -> dict[str, object] | None:
        """Delete the dataset; returns what was deleted (name, kind, rows, symbols) or None if absent."""
        info = self.info(name)
        conn = self._conn()
        try:
            with conn:
                conn.execute("DELETE FROM datasets WHERE name = ?", (name,))
                conn.execute("DELETE FROM dataset_legs WHERE name = ?", (name,))
            self._purge_orphans(conn)
        finally:
            conn.close()
        return info

    def native_ms(self, name: str) -> int | None:
        """Bar length of a bars dataset (the coarsest of its legs' median bar spacing); None for ticks."""
        info = self.info(name)
        if info is None or info["kind"] != "bars":
            return None
        conn = self._conn()
        try:
            out = []
            for sym in info["symbols"]:
                key = self._leg_key(conn, name, sym)
                t = [r[0] for r in conn.execute("SELECT bar_time FROM dataset_bars WHERE dataset = ? AND symbol = ? ORDER BY bar_time LIMIT 1001",
                                                (key, sym))]
                if len(t) > 1:
                    out.append(int(np.median(np.diff(t))))
        finally:
            conn.close()
        return max(out) if out else None

    def list(self) -> pd.DataFrame:
        conn = self._conn()
        try:
            df = pd.read_sql_query("SELECT name, kind, source, created_at, rows, symbols, detail FROM datasets ORDER BY created_at DESC", conn)
        finally:
            conn.close()
        df["symbols"] = df["symbols"].map(json.loads)
        return df

    def info(self, name: str) -> dict[str, object] | None:
        """The dataset's listing row (name, kind, source, created_at, rows, symbols, detail), or None."""
        conn = self._conn()
        try:
            row = conn.execute("SELECT name, kind, source, created_at, rows, symbols, detail FROM datasets WHERE name = ?",
                               (name,)).fetchone()
        finally:
            conn.close()
        if row is None:
            return None
        return {"name": row[0], "kind": row[1], "source": row[2], "created_at": row[3], "rows": row[4],
                "symbols": json.loads(row[5]), "detail": row[6]}

    def ticks(self, name: str, symbol: str) -> pd.DataFrame:
        """Stored ticks of a tick dataset (trade_time ms, price, qty, is_buyer_maker, agg_id)."""
        conn = self._conn()
        try:
            key = self._leg_key(conn, name, symbol)
            df = pd.read_sql_query(
                "SELECT trade_time, price, qty, is_buyer_maker, agg_id FROM dataset_ticks WHERE dataset = ? AND symbol = ? ORDER BY seq",
                conn, params=(key, symbol),
            )
            df["is_buyer_maker"] = df["is_buyer_maker"].astype("Float64").astype("boolean")  # NULL = side unknown
            return df
        finally:
            conn.close()

    def bars(self, name: str, symbol: str, timeframe: str) -> pd.DataFrame:
        """Bars of ``symbol`` in ``timeframe`` (closed: the data are complete)."""
        info = self.info(name)
        if info is None:
            raise ValueError(f"no dataset named {name!r}")
        period = timeframe_ms(timeframe)
        conn = self._conn()
        try:
            key = self._leg_key(conn, name, symbol)
            if info["kind"] == "ticks":
                rows = conn.execute(
                    "SELECT trade_time, price, qty, is_buyer_maker FROM dataset_ticks WHERE dataset = ? AND symbol = ? ORDER BY seq",
                    (key, symbol),
                ).fetchall()
                if not rows:
                    raise ValueError(f"dataset {name!r} has no {symbol}")
                a = np.array([(r[0], r[1], r[2], np.nan if r[3] is None else r[3]) for r in rows], dtype=float)
                side = a[:, 3]
                bars = resample_ticks(a[:, 0].astype("int64"), a[:, 1], a[:, 2], np.nan_to_num(side) > 0, period)
                if np.isnan(side).any():  # no taker side in this data: no buy/sell split, never "all buys"
                    bars["taker_buy_volume"] = np.nan
                    bars["taker_sell_volume"] = np.nan
                bars["closed"] = True
                return bars
            df = pd.read_sql_query(
                "SELECT bar_time, open, high, low, close, volume FROM dataset_bars WHERE dataset = ? AND symbol = ? ORDER BY bar_time",
                conn, params=(key, symbol),
            )
        finally:
            conn.close()
        if df.empty:
            raise ValueError(f"dataset {name!r} has no {symbol}")
        native = int(np.median(np.diff(df["bar_time"]))) if len(df) > 1 else period
        if period < native:
            raise ValueError(f"dataset {name!r} has {native // 1000}s bars; choose a timeframe of at least that")
        idx = pd.DatetimeIndex(pd.to_datetime(df["bar_time"], unit="ms", utc=True), name="time")
        df = df.set_index(idx).drop(columns="bar_time")
        if period > native:
            df = df.resample(pd.Timedelta(milliseconds=period)).agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}).dropna(subset=["close"])
        out = pd.DataFrame(index=df.index)
        for c in BAR_COLUMNS:
            out[c] = df.get(c, np.nan)
        out["trades"] = 0
        out["fills"] = 0
        out["closed"] = True
        return out


def _side_values(side: pd.Series) -> list[int | None]:
    """0/1 per trade, None where the taker side is unknown (stored as NULL)."""
    s = side.astype("boolean")
    return [None if v is pd.NA else int(v) for v in s.tolist()]
