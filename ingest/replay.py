"""Replay recorded ticks through the live pipeline (same sink, storage, views).

Ticks of several symbols are merged by trade time and delivered to the sink
in small batches, paced by their own timestamps at ``speed`` × real time
(``speed=None`` = as fast as possible). ``pause()``/``resume()`` and
``set_speed()`` work while it runs.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext

import numpy as np
import pandas as pd

from ingest.base import Source, SourceHealth
from storage.ticks import BATCH_DTYPE, TickBatch

__all__ = ["ReplaySource", "frames_to_ticks"]


def frames_to_ticks(frames: dict[str, pd.DataFrame]) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Loader tick frames (trade_time, price, qty, is_buyer_maker, agg_id) -> batch arrays,
    and per symbol whether the taker side is known (a missing side is stored as a sell=False
    placeholder, so views must not draw a buy/sell split for it)."""
    out = {}
    side_known: dict[str, bool] = {}
    for sym, df in frames.items():
        a = np.empty(len(df), dtype=BATCH_DTYPE)
        a["agg_id"] = df["agg_id"].to_numpy()
        if (a["agg_id"] < 0).any() or not np.all(np.diff(a["agg_id"]) > 0):
            a["agg_id"] = np.arange(len(df))
        a["trade_time"] = df["trade_time"].to_numpy()
        a["event_time"] = a["trade_time"]
        a["recv_time"] = np.nan
        a["price"] = df["price"].to_numpy()
        a["qty"] = df["qty"].to_numpy()
        a["first_id"] = a["agg_id"]
        a["last_id"] = a["agg_id"]
        side = df["is_buyer_maker"].astype("boolean")
        side_known[sym.upper()] = not bool(side.isna().any())
        a["is_buyer_maker"] = side.fillna(False).to_numpy(dtype=bool)
        out[sym.upper()] = a
    return out, side_known


class ReplaySource(Source):
    def __init__(self, sink, ticks: dict[str, np.ndarray], speed: float | None = 1.0, batch_ms: int = 100) -> None:
        self.sink = sink
        self._ticks = ticks
        self.speed = speed
        self.batch_ms = batch_ms
        self.health = SourceHealth("replay", state="stopped", message="ready")
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.position_ms: int | None = None
        self.total = sum(len(a) for a in ticks.values())

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._ticks)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._paused.clear()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.health.state != "finished":
            self.health.state, self.health.message = "stopped", "stopped"

    def pause(self) -> None:
        self._paused.set()
        self.health.state, self.health.message = "paused", "paused"

    def resume(self) -> None:
        self._paused.clear()
        if self._thread is not None:
            self.health.state, self.health.message = "replaying", "replaying"

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set_speed(self, speed: float | None) -> None:
        self.speed = speed

    def done(self) -> bool:
        return self.delivered >= self.total

    def _run(self) -> None:
        h = self.health
        h.state, h.message = "replaying", "replaying"
        merged = np.concatenate([a["trade_time"] for a in self._ticks.values()]) if self._ticks else np.empty(0, "i8")
        if merged.size == 0:
            h.state, h.message = "stopped", "nothing to replay"
            return
        t_data = int(merged.min())
        t_end = int(merged.max())
        cursors = dict.fromkeys(self._ticks, 0)
        wall0, data0 = time.monotonic(), t_data
        while t_data <= t_end and not self._stop.is_set():
            if self._paused.is_set():
                time.sleep(0.05)
                wall0, data0 = time.monotonic(), t_data  # resume without a catch-up burst
                continue
            upto = t_data + self.batch_ms
            now_ms = time.time() * 1000
            with getattr(self.sink, "atomic", nullcontext)():  # one step of data time, every symbol at once
                for sym, arr in self._ticks.items():
                    i = cursors[sym]
                    j = i + int(np.searchsorted(arr["trade_time"][i:], upto, side="left"))
                    if j > i:
                        chunk = arr[i:j].copy()
                        chunk["recv_time"] = now_ms
                        self.sink.write(TickBatch(sym, chunk))
                        h.symbol(sym).observe(j - i, time.time(), [])
                        self.delivered += j - i
                        cursors[sym] = j
            t_data = upto
            self.position_ms = t_data
            if self.speed:
                ahead = wall0 + (t_data - data0) / 1000 / self.speed - time.monotonic()
                if ahead > 0:
                    self._stop.wait(min(ahead, 1.0))
        h.state, h.message = ("finished", "replay finished") if not self._stop.is_set() else ("stopped", "stopped")
