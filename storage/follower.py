"""A dashboard that follows PostgreSQL: other processes record, this one keeps its memory current.

The views read the in-memory buffer (the same code for every backend); with
PostgreSQL the ticks of symbols recorded elsewhere (recorder services, other
dashboards) are fetched into it as their commits are announced (LISTEN/NOTIFY,
:class:`storage.postgres.Listener`; every 2 s without a notification too). A
symbol seen for the first time starts with its last ``warm_hours`` of ticks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from storage.postgres import Listener

__all__ = ["Follower"]

log = logging.getLogger(__name__)


class Follower:
    """Appends ticks other processes stored to ``store``'s memory (see the module docstring)."""

    def __init__(self, store, own: Callable[[], tuple[str, ...]] = tuple, warm_hours: float = 24.0, batch_rows: int = 200_000) -> None:
        self.store = store
        self.own = own  # () -> symbols this process records itself (never followed)
        self.warm_hours = warm_hours
        self.batch_rows = batch_rows
        self.listener = Listener(store.database_url, self._on_notify)
        self.followed: tuple[str, ...] = ()
        self.fetched = 0
        self.last_poll_at: float | None = None
        self.error = ""
        self._lock = threading.Lock()

    def start(self) -> None:
        self.listener.start()

    def stop(self) -> None:
        self.listener.stop()

    @property
    def state(self) -> str:
        return self.listener.state

    @staticmethod
    def _upto(batch, last_id: int):
        """``batch`` without ticks newer than ``last_id`` (committed after the state snapshot)."""
        ids = batch.data["agg_id"]
        return batch if not len(ids) or int(ids[-1]) <= last_id else type(batch)(batch.symbol, batch.data[ids <= last_id])

    def _on_notify(self, kinds: set[str]) -> None:
        if kinds & {"ticks", "idle"}:
            with self._lock:
                try:
                    self.poll()
                    self.error = ""
                except Exception as exc:  # the database went away: the listener reconnects
                    self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log.warning("following PostgreSQL failed: %s", self.error)

    def poll(self) -> int:
        """Fetch what is new for every followed symbol; returns the ticks added.

        Each symbol is fetched up to the newest id of one ``symbol_state`` snapshot
        and every fetched batch reaches memory in one ``store.atomic`` block: a
        pair reader sees the legs as of one moment of the database, never a newer
        commit of one leg without the other's (see :meth:`TickStore.atomic`).
        """
        reader, buf = self.store.reader, self.store.buffer
        state = reader.symbol_state()
        own = set(self.own())
        self.followed = tuple(sorted(s for s in state if s not in own))
        fetched, added = [], 0
        for sym in self.followed:
            last_id, _last_tt = state[sym]
            b = buf.buffer(sym)
            mine = b.last_agg_id()
            if mine is None:
                since = int(time.time() * 1000 - self.warm_hours * 3_600_000)
                batch = reader.load_batch(sym, since_ms=since, limit=self.store.buffer.max_ticks)
                added += self.store.append_stored(self._upto(batch, last_id))  # a symbol's first hours: at once (memory)
                continue
            after_time = int(b.stats().get("last_time") or 0)
            while mine < last_id:
                batch = self._upto(reader.ticks_after(sym, mine, after_time, limit=self.batch_rows), last_id)
                if not len(batch):
                    break
                fetched.append(batch)
                mine, after_time = int(batch.data["agg_id"][-1]), int(batch.data["trade_time"][-1])
                if len(batch) < self.batch_rows:
                    break
        with self.store.atomic():
            for batch in fetched:
                added += self.store.append_stored(batch)
        self.fetched += added
        self.last_poll_at = time.time()
        return added
