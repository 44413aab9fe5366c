"""The ASGI pieces ``app.py`` hands to ``st.App``: lifespan, routes and middleware.

* **lifespan** — loads the settings, checks the bind address is safe, and
  starts the process runtime (storage, ingestion, alerts, live hub) when the
  server starts — recording begins with no browser open — and stops it at
  shutdown (sockets closed, SQLite flushed).
* **routes** — ops (``/healthz``, ``/metrics``), the read API
  (``/api/v1/bars``, ``/api/v1/pair``) and the live push channel (``/live``).
* **middleware** — :class:`server.security.SecurityMiddleware` in front of
  everything, Streamlit's own routes included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.middleware import Middleware

from config import Settings, load_settings
from server import runtime
from server.security import SecurityMiddleware, SecurityPolicy, policy_for

__all__ = ["make_lifespan", "middleware", "routes", "security_policy"]

log = logging.getLogger(__name__)


def security_policy(bind_address: Callable[[], str], settings: Settings | None = None) -> SecurityPolicy:
    """The policy for this server's bind address and settings (raises if the bind is unsafe)."""
    s = settings or load_settings()
    return policy_for(bind_address(), s.auth_token, s.allowed_hosts)


def make_lifespan(bind_address: Callable[[], str]) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """The server's lifespan; ``bind_address`` reads the address the server listens on."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # no-op if configured
        settings = load_settings()
        security_policy(bind_address, settings)  # refuse to start on a reachable address without authentication
        rt = await asyncio.to_thread(runtime.start, settings)
        from server.live import hub

        hub.start(rt, asyncio.get_running_loop())
        try:
            yield {"runtime": rt}
        finally:
            hub.stop()
            await asyncio.to_thread(runtime.stop)
            log.info("runtime stopped: ingestion closed, storage flushed")

    return lifespan


def routes() -> list:
    from server.api import api_routes
    from server.live import live_routes

    return [*api_routes(), *live_routes()]


def middleware(bind_address: Callable[[], str]) -> list[Middleware]:
    return [Middleware(SecurityMiddleware, policy_factory=lambda: security_policy(bind_address))]
