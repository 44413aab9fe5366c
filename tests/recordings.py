"""Helpers that turn the real recordings in ../shared/data/binance into test inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from storage.ticks import BATCH_DTYPE, TickBatch

TRADES = {
    "BTCUSDT": "usdm_BTCUSDT_trades_20240808T235416Z_20240808T235959Z",
    "ETHUSDT": "usdm_ETHUSDT_trades_20240808T235416Z_20240809T000000Z",
}


def trades_array(data_dir: Path, symbol: str) -> np.ndarray:
    """The recorded USD-M trades of ``symbol`` as a BATCH_DTYPE array (one fill per aggregate)."""
    t = pd.read_csv(data_dir / f"{TRADES[symbol]}.csv")
    arr = np.empty(len(t), dtype=BATCH_DTYPE)
    arr["agg_id"] = t["trade_id"]
    arr["trade_time"] = t["transact_time"]
    arr["event_time"] = t["event_time"]
    arr["recv_time"] = t["local_recv_ns"] / 1e6
    arr["price"] = t["price"]
    arr["qty"] = t["quantity"]
    arr["first_id"] = t["trade_id"]
    arr["last_id"] = t["trade_id"]
    arr["is_buyer_maker"] = t["is_buyer_maker"]
    return arr


def trades_batch(data_dir: Path, symbol: str) -> TickBatch:
    return TickBatch(symbol, trades_array(data_dir, symbol))


def aggtrade_frames(data_dir: Path, symbol: str) -> list[dict]:
    """The recorded ``@trade`` frames re-served as combined-stream ``@aggTrade`` frames.

    One fill per aggregate: ``a = f = l = t``; ``p``, ``q``, ``T``, ``E``, ``m``
    are the recorded values verbatim (strings stay strings); ``nq`` (normal
    quantity) equals ``q`` because the recordings carry no RPI orders.
    """
    frames = []
    path = data_dir / f"{TRADES[symbol]}.ws.jsonl"
    with path.open() as fh:
        for line in fh:
            msg = json.loads(line)
            d = msg["data"]
            frames.append(
                {
                    "stream": f"{symbol.lower()}@aggTrade",
                    "data": {
                        "e": "aggTrade", "E": d["E"], "s": d["s"], "a": d["t"], "p": d["p"], "q": d["q"],
                        "nq": d["q"], "f": d["t"], "l": d["t"], "T": d["T"], "m": d["m"],
                    },
                }
            )
    return frames


def multi_bars(data_dir: Path, column: str = "close") -> pd.DataFrame:
    """The real 1-minute bars of the 16 perpetuals in ``multi/usdm_1m`` as one frame (a column per symbol)."""
    out = {}
    for f in sorted((data_dir / "multi" / "usdm_1m").glob("*_1m_*.csv")):
        df = pd.read_csv(f, usecols=["timestamp", column])
        out[f.name.split("_")[0]] = pd.Series(df[column].to_numpy(float), index=pd.to_datetime(df["timestamp"], utc=True))
    return pd.DataFrame(out).sort_index()


def funding_history(data_dir: Path, symbol: str) -> pd.Series:
    """Real funding events of ``symbol`` (fraction per interval) from ``multi/funding``, indexed by UTC time."""
    f = next((data_dir / "multi" / "funding").glob(f"{symbol}_funding_*.csv"))
    df = pd.read_csv(f)
    return pd.Series(df["funding_rate"].to_numpy(float), index=pd.to_datetime(df["timestamp"], utc=True), name=symbol)


RECORDING_2025 = "usdm_BTCUSDT_ETHUSDT_recording_20251216.csv"


def recording_1s_closes(data_dir: Path) -> pd.DataFrame:
    """The third-party USD-M recording of 2025-12-16 as 1 s closes (a column per symbol, the last trade of each
    second carried forward, as the live view carries a quiet leg); its 63 non-market rows (price 0) left out."""
    df = pd.read_csv(data_dir / RECORDING_2025)
    df = df[df["price"] > 0]
    out = {s: g.set_index(pd.to_datetime(g["transact_time"], unit="ms", utc=True))["price"].resample("1s").last()
           for s, g in df.groupby("symbol")}
    return pd.DataFrame(out).ffill().dropna()
