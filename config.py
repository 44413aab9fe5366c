"""Typed application settings, read once from ``ALPHASTREAM_*`` environment variables.

Every knob of the app lives in :class:`Settings`. Defaults suit a local analyst
workstation; each field can be overridden by the environment variable named in
:data:`ENV_VARS`. Invalid values raise :class:`ConfigError` at start-up with the
variable's name, so a typo never silently falls back to a default.

This module imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["ENV_PREFIX", "ConfigError", "Settings", "load_settings"]

ENV_PREFIX = "ALPHASTREAM_"
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")


class ConfigError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """All runtime settings. Units are in the field names (``_s`` seconds, ``_ms`` ms).

    Attributes
    ----------
    symbols
        USDⓈ-M futures symbols to stream, upper case (``BTCUSDT``).
    ws_url
        WebSocket base URL; streams are appended as ``/stream?streams=...``.
        Binance needs the ``/market`` route since 2026-04-23.
    rest_url
        REST base URL for ``/fapi/v1/aggTrades`` backfill.
    history_url
        Base URL of the data.binance.vision history files.
    db_path
        SQLite database file (created if missing).
    """

    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    ws_url: str = "wss://fstream.binance.com/market"
    rest_url: str = "https://fapi.binance.com"
    history_url: str = "https://data.binance.vision"
    db_path: Path = Path("data/alphastream.sqlite")
    # scale-out: ticks, bars, gaps, universe and alerts in PostgreSQL (empty: SQLite at db_path)
    database_url: str = field(default="", repr=False)
    history_cache_dir: Path = Path("data/history")
    # in-memory tick buffer bounds (per symbol)
    buffer_max_ticks: int = 2_000_000
    buffer_max_age_s: float = 26 * 3600.0
    warm_start_hours: float = 24.0
    # SQLite writer
    flush_interval_ms: int = 250
    flush_max_rows: int = 20_000
    retention_days: float = 0.0  # 0 keeps every tick forever
    writer_process: bool = True  # persist from a child process: browser sessions cannot starve it
    # ingestion
    stale_after_s: float = 30.0
    reconnect_before_s: float = 23.5 * 3600.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    rest_timeout_s: float = 10.0
    seed_history: bool = True  # at start / on add: 1m & 5m klines and the current 5m bar's trades over REST
    # dashboard
    refresh_ms: int = 300
    push_enabled: bool = True  # the live panel is pushed over /live; false (or a blocked socket): fragments refresh it
    default_window: int = 100
    max_chart_points: int = 3_000
    upload_max_mb: int = 500
    ingest_enabled: bool = True
    webhook_url: str = ""
    # serving: beyond loopback a token is required (see README, Security)
    auth_token: str = field(default="", repr=False)
    allowed_hosts: tuple[str, ...] = ()
    webhook_allow_hosts: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


ENV_VARS: dict[str, str] = {f.name: ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings) if f.name != "extra"}


def _parse_symbols(name: str, raw: str) -> tuple[str, ...]:
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in raw.split(",") if s.strip()))
    if not symbols:
        raise ConfigError(f"{name} must list at least one symbol, e.g. 'btcusdt,ethusdt'")
    bad = [s for s in symbols if not _SYMBOL_RE.match(s)]
    if bad:
        raise ConfigError(f"{name}: invalid symbol(s) {bad}; expected letters/digits like BTCUSDT")
    return symbols


def _parse_url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(raw.strip())
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ConfigError(f"{name}={raw!r} is not a valid URL (expected scheme {'/'.join(schemes)})")
    return raw.strip().rstrip("/")


def _parse_secret_url(name: str, raw: str) -> str:
    """A URL that may embed a secret (a webhook): validated like any URL, never echoed in the error."""
    parsed = urlparse(raw.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name} is not a valid http(s) URL (the value is not shown: webhook URLs carry secrets)")
    return raw.strip()


_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9.-]+$|^\*$|^[0-9a-f:]+$")


def _parse_hosts(name: str, raw: str) -> tuple[str, ...]:
    hosts = tuple(dict.fromkeys(h.strip().lower().strip("[]") for h in raw.split(",") if h.strip()))
    bad = [h for h in hosts if not _HOST_RE.match(h)]
    if bad:
        raise ConfigError(f"{name}: invalid host name(s) {bad}; expected e.g. 'dash.example.com,*.corp.example'")
    return hosts


def _parse_number(name: str, raw: str, kind: type, minimum: float) -> float | int:
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be >= {minimum}")
    return value


def _parse_bool(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def _parse_database_url(name: str, raw: str) -> str:
    """``postgresql://[user[:password]@]host[:port]/database[?options]``; empty keeps SQLite. Never echoed (a password)."""
    text = raw.strip()
    if not text:
        return ""
    parsed = urlparse(text)
    if parsed.scheme not in ("postgresql", "postgres") or not (parsed.netloc or parsed.query):
        raise ConfigError(f"{name} must look like postgresql://user@host:5432/database (the value is not shown: it may hold a password)")
    return text


_URL_SCHEMES = {
    "ws_url": ("ws", "wss"),
    "rest_url": ("http", "https"),
    "history_url": ("http", "https"),
}
_MINIMUMS = {"refresh_ms": 50, "default_window": 2, "buffer_max_ticks": 1000, "flush_max_rows": 1}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from defaults overridden by ``ALPHASTREAM_*`` variables.

    Raises
    ------
    ConfigError
        If a variable cannot be parsed; the message names the variable.
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in dataclasses.fields(Settings):
        name = ENV_VARS.get(f.name)
        if name is None or name not in env:
            continue
        raw = env[name]
        if f.name == "symbols":
            values[f.name] = _parse_symbols(name, raw)
        elif f.name in ("allowed_hosts", "webhook_allow_hosts"):
            values[f.name] = _parse_hosts(name, raw)
        elif f.name == "auth_token":
            token = raw.strip()
            if token and len(token) < 16:
                raise ConfigError(f"{name} must be at least 16 characters (a long random secret); the value is not shown")
            values[f.name] = token
        elif f.name in _URL_SCHEMES:
            values[f.name] = _parse_url(name, raw, _URL_SCHEMES[f.name])
        elif f.name == "database_url":
            values[f.name] = _parse_database_url(name, raw)
        elif f.name == "webhook_url":
            values[f.name] = _parse_secret_url(name, raw) if raw.strip() else ""
        elif f.type in ("Path",):
            if not raw.strip():
                raise ConfigError(f"{name} must not be empty")
            values[f.name] = Path(raw.strip()).expanduser()
        elif f.type == "bool":
            values[f.name] = _parse_bool(name, raw)
        elif f.type == "int":
            values[f.name] = int(_parse_number(name, raw, int, _MINIMUMS.get(f.name, 0)))
        elif f.type == "float":
            values[f.name] = float(_parse_number(name, raw, float, 0.0))
    extra = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and k not in ENV_VARS.values()}
    return Settings(**values, extra=extra)  # type: ignore[arg-type]
