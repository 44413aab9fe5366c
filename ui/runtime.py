"""The per-process runtime: one store, one ingestion source, shared by every session.

``get_runtime`` is wrapped in ``st.cache_resource`` by ``app.py`` so the
ingestion thread starts once per server process (never per session or rerun);
``Runtime.close`` stops it cleanly (also registered with ``atexit``).
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from alerts import AlertEngine
from config import Settings
from ingest.base import Source
from ingest.binance import BinanceSource
from storage.store import TickStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    store: TickStore
    source: Source | None
    alerts: AlertEngine | None = None
    warm: threading.Event = field(default_factory=threading.Event)
    replay: Runtime | None = None  # a replay's own store + source, shown through the live views

    def close(self) -> None:
        if self.replay is not None:
            self.replay.close()
        if self.source is not None:
            self.source.stop()
        if self.alerts is not None:
            self.alerts.stop()
        self.store.close()


def build_runtime(settings: Settings) -> Runtime:
    """Start storage (warm start from SQLite) and, if enabled, the Binance source."""
    store = TickStore.from_settings(settings)
    store.start()
    source: Source | None = None
    if settings.ingest_enabled:
        source = BinanceSource(
            store, settings.symbols, settings.ws_url, settings.rest_url,
            stale_after_s=settings.stale_after_s, reconnect_before_s=settings.reconnect_before_s,
            backoff_initial_s=settings.backoff_initial_s, backoff_max_s=settings.backoff_max_s,
            rest_timeout_s=settings.rest_timeout_s,
        )
        source.start()
    alerts = AlertEngine(store, webhook_url=settings.webhook_url)
    alerts.start()
    rt = Runtime(settings, store, source, alerts)

    def _warm() -> None:
        try:
            import analytics
            from storage import bars

            analytics.warm_up()
            bars.warm_up()
        finally:
            rt.warm.set()

    threading.Thread(target=_warm, name="numba-warmup", daemon=True).start()
    atexit.register(rt.close)
    return rt


def start_replay(rt: Runtime, ticks: dict, speed: float | None) -> Runtime:  # ticks: symbol -> BATCH_DTYPE array
    """Replay ticks through a fresh store (its own SQLite file, never the live one)."""
    from ingest.replay import ReplaySource

    if rt.replay is not None:
        rt.replay.close()
    path = rt.settings.db_path.with_name(rt.settings.db_path.stem + "-replay.sqlite")
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = TickStore(path, max_ticks=rt.settings.buffer_max_ticks, max_age_s=10**9, warm_start_hours=0)
    store.start(warm_start=False)
    source = ReplaySource(store, ticks, speed=speed)
    source.start()
    rt.replay = Runtime(rt.settings, store, source)
    rt.replay.warm.set()
    return rt.replay
