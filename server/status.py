"""What the feed's state means right now, in words a person reads at a glance.

The source reports its connection state (connecting, connected, live,
backoff, stale, blocked); the store knows the newest trade per symbol. Neither
alone says whether what is on screen is current: a connection can be "up" and
silent, a symbol can be subscribed and never trade, a replay runs on its own
clock. :func:`feed_status` combines them, so the dashboard, ``/healthz`` and
tests agree on one answer — and old data is never shown as live.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

__all__ = ["FeedStatus", "SymbolStatus", "fmt_age", "feed_status"]


def fmt_age(seconds: float | None) -> str:
    """``850 ms``, ``12.4 s``, ``12 min``, ``3.2 h``, ``5.1 d``; ``—`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@dataclass(frozen=True)
class SymbolStatus:
    symbol: str
    state: str  # "LIVE", "waiting", "STALE", "REPLAY", "stored data", "BLOCKED"
    last_time_ms: int | None
    age_s: float | None  # newest trade's age on the view's clock
    frames_per_s: float
    last_agg_id: int | None

    @property
    def fresh(self) -> bool:
        return self.state in ("LIVE", "REPLAY")


@dataclass(frozen=True)
class FeedStatus:
    """The feed as a person should read it.

    ``state`` is the badge (LIVE, STALE, connecting, reconnecting, BLOCKED,
    REPLAY, paused, finished, stored data); ``severity`` one of ok / info /
    warning / error; ``message`` one sentence saying what is happening and,
    when nothing arrives, what to do instead. ``newest_age_s`` is the age of
    the newest trade of the viewed symbols on the view's clock.
    """

    state: str
    severity: str
    message: str
    attempts: int
    reconnects: int
    newest_age_s: float | None
    symbols: dict[str, SymbolStatus] = field(default_factory=dict)

    @property
    def fresh(self) -> bool:
        return self.severity == "ok"


ALTERNATIVES = "Meanwhile you can use Replay or Uploaded history (sidebar → Data source)."


def feed_status(rt, symbols: tuple[str, ...], now: float | None = None) -> FeedStatus:
    """Combine source health and stored data for ``symbols`` (see the module docstring)."""
    now = time.time() if now is None else now
    src = rt.source
    stale_after = float(rt.settings.stale_after_s)
    stats = {s: rt.store.buffer.buffer(s).stats() for s in symbols}
    replay = src is not None and getattr(src.health, "name", "") == "replay"
    clock = now
    if replay:  # a replay runs on its own clock: the newest replayed trade
        pos = getattr(src, "position_ms", None)
        clock = (pos / 1000.0) if pos else now
    rows: dict[str, SymbolStatus] = {}
    newest: float | None = None
    follower = getattr(rt, "follower", None)
    own = set(src.symbols) if src is not None and not replay else set()
    followed = {s for s in symbols if s not in own} if follower is not None else set()
    for s in symbols:
        st = stats[s]
        last = st.get("last_time")
        age = None if last is None else max(0.0, clock - last / 1000.0)
        h = src.health.symbols.get(s) if src is not None and s not in followed else None
        fps = h.frames_per_s(now) if h is not None else 0.0
        if s in followed:  # recorded by another process, read from PostgreSQL: judged by the data's age
            state = "waiting" if last is None else ("LIVE" if age is not None and age <= stale_after and follower.state == "ok" else "STALE")
        elif src is None:
            state = "stored data"
        elif src.health.state == "blocked":
            state = "BLOCKED"
        elif last is None:
            state = "waiting"
        elif replay:
            state = "REPLAY"
        else:
            frame_age = None if h is None or h.last_frame_at is None else now - h.last_frame_at
            state = "LIVE" if frame_age is not None and frame_age <= stale_after and age is not None and age <= stale_after else "STALE"
        rows[s] = SymbolStatus(s, state, last, age, fps, st.get("last_agg_id"))
        if age is not None:
            newest = age if newest is None else min(newest, age)
    if followed and followed == set(symbols):
        return _followed_status(follower, rows, newest, stale_after)
    if src is None:
        return FeedStatus("stored data", "info", "Live ingestion is disabled (ALPHASTREAM_INGEST_ENABLED=false): "
                          "showing stored data only.", 0, 0, newest, rows)
    h = src.health
    attempts = int(getattr(h, "attempts", 0))
    if replay:
        state = {"live": "REPLAY", "replaying": "REPLAY"}.get(h.state, h.state)
        return FeedStatus(state if state != "stopped" else h.message or "stopped", "ok" if state == "REPLAY" else "info",
                          f"Replay: {h.message}.", attempts, h.reconnects, newest, rows)
    if h.state == "blocked":
        return FeedStatus("BLOCKED (HTTP 451)", "error", "Binance refuses connections from this location (HTTP 451); "
                          f"retrying every 15 minutes. {ALTERNATIVES} Or run the server from a permitted region "
                          "(ALPHASTREAM_WS_URL can point at another endpoint).", attempts, h.reconnects, newest, rows)
    live_syms = [r for r in rows.values() if r.state == "LIVE"]
    if h.state == "live" and rows and all(r.state in ("LIVE", "waiting") for r in rows.values()) and live_syms:
        waiting = [r.symbol for r in rows.values() if r.state == "waiting"]
        msg = "Streaming." + (f" No trade yet for {', '.join(waiting)} (waiting)." if waiting else "")
        return FeedStatus("LIVE", "ok" if not waiting else "info", msg, attempts, h.reconnects, newest, rows)
    if newest is None:  # nothing stored for these symbols at all
        if h.state in ("backoff", "connecting", "stale") and attempts > 0:
            return FeedStatus("offline", "warning", f"Cannot reach Binance: {h.message}. {ALTERNATIVES}",
                              attempts, h.reconnects, newest, rows)
        if h.state == "connecting":
            return FeedStatus("connecting", "info", f"Connecting to Binance ({h.message}).", attempts, h.reconnects, newest, rows)
        return FeedStatus("waiting", "info", f"Connected, waiting for the first trade ({h.message}).", attempts,
                          h.reconnects, newest, rows)
    if newest > stale_after or h.state not in ("live",):
        label = "STALE" if newest > stale_after else {"backoff": "reconnecting", "connecting": "connecting"}.get(h.state, h.state)
        what = {"backoff": "reconnecting", "connecting": "connecting", "stale": "no frames: reconnecting",
                "connected": "connected but silent", "live": "streaming other symbols"}.get(h.state, h.state)
        return FeedStatus(label, "warning" if newest <= stale_after else "error",
                          f"No new trade for {fmt_age(newest)} ({what}: {h.message}). Figures below are as of then."
                          + (f" {ALTERNATIVES}" if attempts > 1 else ""), attempts, h.reconnects, newest, rows)
    stale_syms = [r.symbol for r in rows.values() if r.state == "STALE"]
    return FeedStatus("LIVE", "warning", f"Streaming, but {', '.join(stale_syms)} has not traded for over "
                      f"{fmt_age(stale_after)}.", attempts, h.reconnects, newest, rows)


def _followed_status(follower, rows: dict[str, SymbolStatus], newest: float | None, stale_after: float) -> FeedStatus:
    """Every viewed symbol is recorded by another process and read from PostgreSQL."""
    if follower.state != "ok":
        return FeedStatus("offline", "error", f"Cannot read PostgreSQL: {follower.listener.message or 'connecting'}. "
                          "Figures below are as of the last read.", 0, 0, newest, rows)
    if all(r.state == "LIVE" for r in rows.values()):
        return FeedStatus("LIVE", "ok", "Streaming through PostgreSQL (recorded by another process).", 0, 0, newest, rows)
    waiting = [r.symbol for r in rows.values() if r.state == "waiting"]
    if newest is None or len(waiting) == len(rows):
        return FeedStatus("waiting", "info", f"No recorder has stored {', '.join(waiting)} yet: start `python -m ingest` with "
                          "them in ALPHASTREAM_SYMBOLS.", 0, 0, newest, rows)
    old = [r.symbol for r in rows.values() if r.state != "LIVE"]
    return FeedStatus("STALE", "warning" if newest <= stale_after else "error",
                      f"No new trade of {', '.join(old)} in PostgreSQL for over {fmt_age(stale_after)}: is its recorder running? "
                      "Figures below are as of then.", 0, 0, newest, rows)
