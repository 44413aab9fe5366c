"""Uploaded datasets: kept in their own SQLite tables, never mixed into live ``ticks``.

A dataset is either ticks (``dataset_ticks``) or bars (``dataset_bars``) for one
or more symbols, under a user-chosen name; it can be listed, turned into bars
of any timeframe at least as coarse as its own, and deleted.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

from storage.bars import BAR_COLUMNS, resample_ticks, timeframe_ms
from storage.sqlite import connect, migrate

__all__ = ["DatasetStore"]


class DatasetStore:
    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        conn = self._conn()
        migrate(conn)
        conn.close()

    def _conn(self) -> sqlite3.Connection:
        return connect(self.db_path)

    def save(self, name: str, kind: str, frames: dict[str, pd.DataFrame], source: str = "", detail: str = "") -> int:
        """Store (replacing any dataset of that name); returns rows written."""
        name = name.strip()
        if not name:
            raise ValueError("dataset name must not be empty")
        if kind not in ("ticks", "bars"):
            raise ValueError("kind must be 'ticks' or 'bars'")
        rows = 0
        conn = self._conn()
        try:
            with conn:
                self._delete(conn, name)
                for sym, df in frames.items():
                    n = len(df)
                    if kind == "ticks":
                        conn.executemany(
                            "INSERT INTO dataset_ticks (dataset, symbol, seq, trade_time, price, qty, is_buyer_maker, agg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            zip([name] * n, [sym] * n, range(n), df["trade_time"].astype("int64").tolist(), df["price"].tolist(),
                                df["qty"].tolist(), df["is_buyer_maker"].astype(int).tolist(), df["agg_id"].astype("int64").tolist(), strict=True),
                        )
                    else:
                        conn.executemany(
                            "INSERT INTO dataset_bars (dataset, symbol, bar_time, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            zip([name] * n, [sym] * n, df["bar_time"].astype("int64").tolist(), df["open"].tolist(), df["high"].tolist(),
                                df["low"].tolist(), df["close"].tolist(), df["volume"].tolist(), strict=True),
                        )
                    rows += n
                conn.execute(
                    "INSERT INTO datasets (name, kind, source, created_at, rows, symbols, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, kind, source, time.time(), rows, json.dumps(sorted(frames)), detail),
                )
        finally:
            conn.close()
        return rows

    @staticmethod
    def _delete(conn: sqlite3.Connection, name: str) -> None:
        for table in ("dataset_ticks", "dataset_bars", "datasets"):
            col = "name" if table == "datasets" else "dataset"
            conn.execute(f"DELETE FROM {table} WHERE {col} = ?", (name,))

    def delete(self, name: str) -> None:
        conn = self._conn()
        try:
            with conn:
                self._delete(conn, name)
        finally:
            conn.close()

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
            return pd.read_sql_query(
                "SELECT trade_time, price, qty, is_buyer_maker, agg_id FROM dataset_ticks WHERE dataset = ? AND symbol = ? ORDER BY seq",
                conn, params=(name, symbol),
            ).astype({"is_buyer_maker": bool})
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
            if info["kind"] == "ticks":
                rows = conn.execute(
                    "SELECT trade_time, price, qty, is_buyer_maker FROM dataset_ticks WHERE dataset = ? AND symbol = ? ORDER BY seq",
                    (name, symbol),
                ).fetchall()
                if not rows:
                    raise ValueError(f"dataset {name!r} has no {symbol}")
                a = np.array(rows, dtype=float)
                bars = resample_ticks(a[:, 0].astype("int64"), a[:, 1], a[:, 2], a[:, 3].astype(bool), period)
                bars["closed"] = True
                return bars
            df = pd.read_sql_query(
                "SELECT bar_time, open, high, low, close, volume FROM dataset_bars WHERE dataset = ? AND symbol = ? ORDER BY bar_time",
                conn, params=(name, symbol),
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
