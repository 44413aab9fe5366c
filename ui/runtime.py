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

    def close(self) -> None:
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

            analytics.warm_up()
        finally:
            rt.warm.set()

    threading.Thread(target=_warm, name="numba-warmup", daemon=True).start()
    atexit.register(rt.close)
    return rt
