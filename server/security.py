"""Safe-by-default serving: loopback bind, Host allow-list, authentication beyond loopback, headers.

Threat model (README "Security"): by default only processes on this machine can
reach the port (``server.address = 127.0.0.1``). A web page the analyst opens
in the same browser can still try to reach it — by DNS rebinding (a hostile
name that resolves to 127.0.0.1, so the browser sends ``Host: evil.example``)
or by framing it — so every HTTP request and WebSocket handshake must carry an
allowed ``Host`` (and, for WebSockets, an ``Origin`` on an allowed host), and
every response forbids framing by other origins. Serving beyond loopback is an
explicit choice that requires a shared secret (``ALPHASTREAM_AUTH_TOKEN``):
HTTP Basic (any user name, the token as password — browsers prompt for it) or
``Authorization: Bearer <token>`` for scripts.

Pure ASGI (no Starlette request objects), so it guards WebSockets too.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

__all__ = ["SECURITY_HEADERS", "SecurityMiddleware", "SecurityPolicy", "host_of", "is_loopback_bind", "policy_for"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Streamlit's frontend injects styles at run time (emotion) and loads its bundles, fonts and
# component iframes from this origin; nothing else is needed.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; worker-src 'self' blob:; "
    "frame-src 'self'; frame-ancestors 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class InsecureBindError(RuntimeError):
    """Listening beyond loopback without authentication (the message says what to set)."""


def is_loopback_bind(address: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    a = (address or "").strip().strip("[]").lower()
    if a in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        return False


def host_of(value: str | None) -> str | None:
    """Lower-case host name of a ``Host`` header (port and brackets dropped); None if malformed."""
    if not value:
        return None
    try:
        parsed = urlparse(f"//{value}")
        _ = parsed.port  # validates a port if given
    except ValueError:
        return None
    if parsed.hostname is None or parsed.username is not None or parsed.path or parsed.query:
        return None
    return parsed.hostname.lower().rstrip(".")


@dataclass(frozen=True)
class SecurityPolicy:
    """What :class:`SecurityMiddleware` enforces."""

    allowed_hosts: frozenset[str]
    auth_token: str = ""

    def host_allowed(self, header: str | None) -> bool:
        host = host_of(header)
        if host is None:
            return False
        for pattern in self.allowed_hosts:
            if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
                return True
        return False

    def authorised(self, header: str | None) -> bool:
        if not self.auth_token:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            given = value.strip()
        elif scheme == "basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        else:
            return False
        return hmac.compare_digest(given.encode(), self.auth_token.encode())


def policy_for(bind_address: str, auth_token: str, extra_hosts: Iterable[str] = ()) -> SecurityPolicy:
    """The policy for a server bound to ``bind_address``.

    Raises
    ------
    InsecureBindError
        The address is reachable from other machines and no token is set.
    """
    hosts = {h.strip().lower().strip("[]") for h in (*LOOPBACK_NAMES, *extra_hosts) if h and h.strip()}
    address = (bind_address or "").strip()
    if not is_loopback_bind(address or "0.0.0.0"):
        if not auth_token:
            raise InsecureBindError(
                f"refusing to serve on {address or 'every interface'} without authentication: anyone who can reach the "
                "port could use the dashboard. Set ALPHASTREAM_AUTH_TOKEN (and ALPHASTREAM_ALLOWED_HOSTS to the names "
                "people use to reach it), or bind 127.0.0.1 (the default; see README, Security)."
            )
        if address and address not in ("0.0.0.0", "::"):
            hosts.add(address.strip("[]").lower())
    return SecurityPolicy(frozenset(hosts), auth_token)


class SecurityMiddleware:
    """Reject requests with a foreign ``Host``/``Origin`` or without the token; add security headers."""

    def __init__(self, app: Callable, policy: SecurityPolicy | None = None, policy_factory: Callable[[], SecurityPolicy] | None = None) -> None:
        self.app = app
        self._policy = policy
        self._factory = policy_factory

    @property
    def policy(self) -> SecurityPolicy:
        if self._policy is None:
            assert self._factory is not None
            self._policy = self._factory()
        return self._policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        policy = self.policy
        problem = None
        status = 403
        if not policy.host_allowed(headers.get("host")):
            problem = "host not allowed"
        elif kind == "websocket" and "origin" in headers and not policy.host_allowed(urlparse(headers["origin"]).netloc):
            problem = "origin not allowed"
        elif not policy.authorised(headers.get("authorization")):
            problem, status = "authentication required", 401
        if problem is not None:
            if kind == "websocket":
                await receive()  # the websocket.connect event
                await send({"type": "websocket.close", "code": 1008, "reason": problem})
                return
            extra = [(b"www-authenticate", b'Basic realm="AlphaStream", charset="UTF-8"')] if status == 401 else []
            body = f"{problem}\n".encode()
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                *SECURITY_HEADERS, *extra]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: dict) -> None:
            if message.get("type") == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in present)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
