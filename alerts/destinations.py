"""Webhook destinations that cannot be turned against the server's own network (SSRF).

A rule's webhook URL is typed by a user, and the *server* posts to it. Left
unchecked, that lets anyone who can save a rule make the server call
``http://127.0.0.1:…``, a cloud metadata address (169.254.169.254,
fd00:ec2::254) or a private service, and read the result back from the
delivery status (a port scanner). So:

* the host is **resolved** and every address it resolves to must be public —
  not loopback, private, link-local, shared, multicast, reserved or
  unspecified (IPv4-mapped IPv6 unwrapped; numeric tricks such as
  ``0x7f000001`` resolve to what they mean) — at save time **and** again at
  send time (DNS can change in between);
* the POST goes to the very address that was checked (no second lookup),
  with TLS verified against the host name, a short timeout and **no
  redirects**;
* failures are reported generically ("could not deliver"), never as the
  socket error, so the status tells nothing about internal hosts;
* ``ALPHASTREAM_WEBHOOK_ALLOW_HOSTS`` lists hosts a team explicitly allows to
  be internal (e.g. ``alerts.corp.internal``).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

__all__ = ["DestinationError", "check_destination", "mask_url", "post_json", "resolve_public"]

Resolver = Callable[[str, int], list[str]]


class DestinationError(ValueError):
    """The URL may not be used as a webhook (the message never includes its secret parts)."""


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(i[4][0]) for i in infos))


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/***`` — scheme and host kept, path/query/credentials hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if not parts.scheme or not parts.hostname:
        return "***" if url else ""
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, host + port, "/***" if (parts.path not in ("", "/") or parts.query) else "", "", ""))


def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise DestinationError("webhook_url: not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationError("webhook_url: must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise DestinationError("webhook_url: credentials in the URL are not accepted; use the service's token URL")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80), path


def resolve_public(host: str, port: int, allow_hosts: Iterable[str] = (), resolver: Resolver | None = None) -> list[str]:
    """Addresses of ``host`` if every one is public (or the host is allow-listed); else raise."""
    allowed = {h.lower().rstrip(".") for h in allow_hosts}
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    try:
        addrs = [str(literal)] if literal is not None else (resolver or _system_resolver)(host, port)
    except (OSError, UnicodeError):
        raise DestinationError(f"webhook_url: cannot resolve host {host!r}") from None
    if not addrs:
        raise DestinationError(f"webhook_url: host {host!r} has no address")
    if host in allowed:
        return addrs
    for a in addrs:
        try:
            ip = ipaddress.ip_address(a.split("%")[0])
        except ValueError:
            raise DestinationError(f"webhook_url: host {host!r} resolves to an unusable address") from None
        if _forbidden(ip):
            raise DestinationError(
                f"webhook_url: {host!r} points at a loopback, private, link-local or metadata address, which the server "
                "will not call (a team that posts to an internal host lists it in ALPHASTREAM_WEBHOOK_ALLOW_HOSTS)"
            )
    return addrs


def check_destination(url: str, allow_hosts: Iterable[str] = (), resolver: Resolver | None = None, strict: bool = True) -> None:
    """Raise :class:`DestinationError` unless ``url`` is a usable public webhook.

    ``strict=False`` (saving a rule while DNS is unavailable) accepts a host that
    does not resolve *now*; it is checked again before every send.
    """
    _scheme, host, port, _path = _split(url)
    try:
        resolve_public(host, port, allow_hosts, resolver)
    except DestinationError as exc:
        if not strict and "cannot resolve" in str(exc):
            return
        raise


def post_json(url: str, body: bytes, allow_hosts: Iterable[str] = (), timeout_s: float = 3.0,
              resolver: Resolver | None = None) -> int:
    """POST ``body`` to ``url`` at a checked address; returns the HTTP status (redirects are not followed).

    Raises
    ------
    DestinationError
        The destination is not allowed.
    OSError
        The delivery failed (connection, TLS, timeout).
    """
    scheme, host, port, path = _split(url)
    addrs = resolve_public(host, port, allow_hosts, resolver)
    last: OSError | None = None
    for addr in addrs:
        try:
            sock = socket.create_connection((addr, port), timeout=timeout_s)
        except OSError as exc:
            last = exc
            continue
        try:
            if scheme == "https":
                ctx = ssl.create_default_context()
                sock = ctx.wrap_socket(sock, server_hostname=host)
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=timeout_s, context=ctx)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
            conn.sock = sock  # the checked address: no second DNS lookup
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json", "User-Agent": "AlphaStream-alerts"})
            resp = conn.getresponse()
            resp.read(65536)
            conn.close()
            return int(resp.status)
        except (OSError, http.client.HTTPException) as exc:
            sock.close()
            last = exc if isinstance(exc, OSError) else OSError(str(exc))
    raise last or OSError("no address reachable")
