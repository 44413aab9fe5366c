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

import numpy as np
import pandas as pd

from storage.bars import BAR_COLUMNS, resample_ticks, timeframe_ms
from storage.sqlite import connect, migrate

__all__ = ["DatasetStore"]


class DatasetStore:
    """Named uploaded datasets in SQLite (see the module docstring).

    Rows are written under a fresh *storage key* in transactions of at most
    ``batch_rows`` rows (the live tick writer never waits long for the lock);
    the ``datasets`` row that names them is switched in one short transaction at
    the end, so readers see the old dataset or the new one, never a mix, and a
    load that dies half-way leaves no visible dataset (its rows are removed at
    the next save or delete).
    """

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        conn = self._conn()
        migrate(conn)
        conn.close()

    def _conn(self) -> sqlite3.Connection:
        return connect(self.db_path)

    def save(self, name: str, kind: str, frames: dict[str, pd.DataFrame], source: str = "", detail: str = "",
             batch_rows: int = 50_000, progress: Callable[[float], None] | None = None) -> int:
        """Store (replacing any dataset of that name); returns rows written."""
        name = name.strip()
        if not name:
            raise ValueError("dataset name must not be empty")
        if kind not in ("ticks", "bars"):
            raise ValueError("kind must be 'ticks' or 'bars'")
        key = f"{name}#{uuid.uuid4().hex[:12]}"
        total = max(1, sum(len(df) for df in frames.values()))
        rows = 0
        conn = self._conn()
        try:
            for sym, df in frames.items():
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
            with conn:
                old = conn.execute("SELECT COALESCE(storage_key, name) FROM datasets WHERE name = ?", (name,)).fetchone()
                conn.execute("DELETE FROM datasets WHERE name = ?", (name,))
                conn.execute(
                    "INSERT INTO datasets (name, kind, source, created_at, rows, symbols, detail, storage_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, kind, source, time.time(), rows, json.dumps(sorted(frames)), detail, key),
                )
        except BaseException:
            self._purge(conn, key, batch_rows)
            conn.close()
            raise
        try:
            if old is not None:
                self._purge(conn, old[0], batch_rows)
            self._purge_orphans(conn, batch_rows)
        finally:
            conn.close()
        return rows

    @staticmethod
    def _purge(conn: sqlite3.Connection, key: str, batch_rows: int = 50_000) -> None:
        """Delete the rows stored under ``key``, a batch per transaction."""
        for table, col in (("dataset_ticks", "seq"), ("dataset_bars", "bar_time")):
            while True:
                with conn:
                    cur = conn.execute(
                        f"DELETE FROM {table} WHERE dataset = ? AND (symbol, {col}) IN "
                        f"(SELECT symbol, {col} FROM {table} WHERE dataset = ? LIMIT ?)", (key, key, batch_rows))
                if cur.rowcount <= 0:
                    break

    def _purge_orphans(self, conn: sqlite3.Connection, batch_rows: int = 50_000) -> None:
        """Rows whose key no dataset names (a load that died half-way)."""
        live = {r[0] for r in conn.execute("SELECT COALESCE(storage_key, name) FROM datasets")}
        for table in ("dataset_ticks", "dataset_bars"):
            for (key,) in conn.execute(f"SELECT DISTINCT dataset FROM {table}").fetchall():
                if key not in live:
                    self._purge(conn, key, batch_rows)

    def _key(self, conn: sqlite3.Connection, name: str) -> str | None:
        row = conn.execute("SELECT COALESCE(storage_key, name) FROM datasets WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def delete(self, name: str) -> dict[str, object] | None:
        """Delete the dataset; returns what was deleted (name, kind, rows, symbols) or None if absent."""
        info = self.info(name)
        conn = self._conn()
        try:
            key = self._key(conn, name)
            with conn:
                conn.execute("DELETE FROM datasets WHERE name = ?", (name,))
            if key is not None:
                self._purge(conn, key)
        finally:
            conn.close()
        return info

    def list(self) -> pd.DataFrame:
        conn = self._conn()
        try:
            df = pd.read_sql_query("SELECT name, kind, source, created_at, rows, symbols, detail FROM datasets ORDER BY created_at DESC", conn)
        finally:
            conn.close()
        df["symbols"] = df["symbols"].map(json.loads)
        return df

    def info(self, name: str) -> dict[str, object] | None:
        ds = self.list()
        row = ds[ds["name"] == name]
        return None if row.empty else row.iloc[0].to_dict()

    def ticks(self, name: str, symbol: str) -> pd.DataFrame:
        """Stored ticks of a tick dataset (trade_time ms, price, qty, is_buyer_maker, agg_id)."""
        conn = self._conn()
        try:
            key = self._key(conn, name) or name
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
            key = self._key(conn, name) or name
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
