"""Binance USDⓈ-M Futures ``aggTrade`` source over ``websocket-client``.

Threads: ``binance-ws`` reads frames (slice, parse, enqueue one list per
socket read — nothing else) and ``binance-seq`` orders/backfills/delivers
batches to the sink (see :mod:`ingest.sequencer`). Reconnects with exponential backoff and jitter
(reset after a healthy minute), reconnects proactively before Binance's 24 h
cut, and a watchdog reconnects when an open connection goes silent. HTTP 451
on the handshake (restricted location) is a *blocked* state retried only
every ``blocked_retry_s`` — never a retry storm. Outgoing control messages
(SUBSCRIBE/UNSUBSCRIBE) are rate-limited to 4/s (Binance drops > 10/s).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import socket
import threading
import time
from collections import deque

import websocket

from ingest.base import Source, SourceHealth
from ingest.binance_parse import ControlReply, MalformedFrame, ParsedTrade, parse_frame
from ingest.rest import RestClient
from ingest.sequencer import Sequencer

__all__ = ["MAX_STREAMS", "BinanceSource", "BufferedWebSocket", "stream_url"]

log = logging.getLogger(__name__)
MAX_STREAMS = 200
_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
BLOCKED_MESSAGE = "blocked (HTTP 451: Binance refuses connections from this location)"


class _CatchUp:
    """Queue marker: fetch each symbol's missed trades over REST now (after a connect)."""

    __slots__ = ("reset", "symbols")

    def __init__(self, symbols: tuple[str, ...], reset: bool = False) -> None:
        self.symbols = tuple(symbols)
        self.reset = reset  # forget the sequencer's last ids first (another recorder wrote since)


class BufferedWebSocket(websocket.WebSocket):
    """``websocket.WebSocket`` that reads the socket in 64 KiB chunks and decodes
    the common frames itself.

    The stock client issues one ``recv`` syscall per frame header, length and
    payload (three per small frame) and spends ~15 µs per frame in Python
    framing. :meth:`recv_messages` serves reads from one large buffer and slices
    every complete, unmasked, unfragmented text/binary frame (``0x81``/``0x82``,
    no RSV bits) at its head in one loop. Everything else — ping (answered with
    pong), close, fragmented messages, a frame the stock reader has half-read —
    goes through websocket-client's own :meth:`recv_data`, which reads from the
    same buffer, so protocol handling stays the library's.
    """

    _CHUNK = 65536

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()

    def _fill(self) -> None:
        """One socket read into the buffer (blocks up to the socket timeout).

        Then re-arm ``TCP_QUICKACK`` (Linux): if the server runs Nagle's
        algorithm, our delayed ACK (40 ms) would hold back its next small write;
        measured on a Nagle-ing local server: frames bunched into 40 ms clumps
        without it, none with it.
        """
        self._rbuf += super()._recv(self._CHUNK)
        if _TCP_QUICKACK is not None and self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    def _recv(self, bufsize: int) -> bytes:
        if not self._rbuf:
            self._fill()
        out = bytes(self._rbuf[:bufsize])
        del self._rbuf[:bufsize]
        return out

    def _library_idle(self) -> bool:
        """True when websocket-client holds no partial frame or message state."""
        fb = self.frame_buffer
        return fb.header is None and not fb.recv_buffer and not self.cont_frame.recving_frames

    def _slice_data_frames(self) -> tuple[list[bytes], bool]:
        """Cut complete simple data frames off the buffer's head.

        Returns ``(payloads, need_more)``: ``need_more`` is True when the head is
        an incomplete simple frame (or the buffer is empty), False when it is a
        frame for the library's reader (control, fragment, masked, RSV).
        """
        buf = self._rbuf
        n = len(buf)
        pos = 0
        out: list[bytes] = []
        need_more = True
        while pos + 2 <= n:
            b0 = buf[pos]
            length = buf[pos + 1]
            if (b0 != 0x81 and b0 != 0x82) or length & 0x80:
                need_more = False
                break
            head = pos + 2
            if length == 126:
                if head + 2 > n:
                    break
                length = (buf[head] << 8) | buf[head + 1]
                head += 2
            elif length == 127:
                if head + 8 > n:
                    break
                length = int.from_bytes(buf[head : head + 8], "big")
                head += 8
            end = head + length
            if end > n:
                break
            out.append(bytes(buf[head:end]))
            pos = end
        if pos:
            del buf[:pos]
        return out, need_more

    def recv_messages(self) -> list[bytes | str]:
        """Block (up to the socket timeout) until at least one data message is in;
        return every complete one already received. A close frame returns ``[]``
        (the close is answered); timeouts and a dead socket raise as ``recv``."""
        while self._library_idle():
            out, need_more = self._slice_data_frames()
            if out:
                return out
            if not need_more:
                break
            self._fill()
        with self.readlock:
            opcode, data = self.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT or opcode == websocket.ABNF.OPCODE_BINARY:
            return [data]
        return []


def stream_url(ws_url: str, symbols: tuple[str, ...]) -> str:
    """Combined-stream URL, e.g. ``wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade``."""
    streams = "/".join(f"{s.lower()}@aggTrade" for s in symbols)
    return f"{ws_url.rstrip('/')}/stream?streams={streams}"


class BinanceSource(Source):
    """Live aggTrade source; see the module docstring for its threads and policies."""

    def __init__(
        self,
        sink,
        symbols: tuple[str, ...] | list[str],
        ws_url: str = "wss://fstream.binance.com/market",
        rest_url: str | None = "https://fapi.binance.com",
        stale_after_s: float = 30.0,
        reconnect_before_s: float = 23.5 * 3600,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        healthy_reset_s: float = 60.0,
        blocked_retry_s: float = 900.0,
        connect_timeout_s: float = 10.0,
        rest_timeout_s: float = 10.0,
        seed_current_bar_ms: int | None = None,
        allow_empty: bool = False,
    ) -> None:
        """``seed_current_bar_ms``: when a symbol has no stored trade yet, start it from the first
        trade of the *previous* bar of this length (e.g. 300,000: 5 to 10 minutes of trades), fetched
        over REST, so the first bars are complete instead of starting mid-bar and a 1 s view has its
        first z-score at once (the default needs 201 one-second bars; Binance has no 1 s klines). ``allow_empty``: the source may
        have no symbol (a standby recorder); it then holds no connection until it gets one."""
        syms = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.allow_empty = allow_empty
        if not syms and not allow_empty:
            raise ValueError("at least one symbol is required")
        if len(syms) > MAX_STREAMS:
            raise ValueError(f"at most {MAX_STREAMS} streams per connection, got {len(syms)}")
        self._symbols = syms
        self.ws_url = ws_url
        self.stale_after_s = stale_after_s
        self.reconnect_before_s = reconnect_before_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.healthy_reset_s = healthy_reset_s
        self.blocked_retry_s = blocked_retry_s
        self.connect_timeout_s = connect_timeout_s
        self.seed_current_bar_ms = seed_current_bar_ms
        self.pending_retry_s = 30.0
        self._stop = threading.Event()
        self.health = SourceHealth("binance-usdm", url=stream_url(ws_url, syms))
        for s in syms:
            self.health.symbol(s)
        self.rest = RestClient(rest_url, timeout_s=rest_timeout_s, stop=self._stop) if rest_url else None
        self.sequencer = Sequencer(sink, self.rest, self.health)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._control: deque[dict] = deque()
        self._control_sent: deque[float] = deque(maxlen=16)
        self._next_id = 1
        self._ws: websocket.WebSocket | None = None
        self._threads: list[threading.Thread] = []
        self._symbols_lock = threading.Lock()
        self._jitter = random.Random()  # own generator: never touches the global random state

    @classmethod
    def from_settings(cls, sink, settings, symbols: tuple[str, ...] | list[str], allow_empty: bool = False) -> BinanceSource:
        """A source configured by :class:`config.Settings` (at most :data:`MAX_STREAMS` symbols)."""
        return cls(
            sink, tuple(symbols)[:MAX_STREAMS], settings.ws_url, settings.rest_url,
            stale_after_s=settings.stale_after_s, reconnect_before_s=settings.reconnect_before_s,
            backoff_initial_s=settings.backoff_initial_s, backoff_max_s=settings.backoff_max_s,
            rest_timeout_s=settings.rest_timeout_s, seed_current_bar_ms=300_000 if settings.seed_history else None,
            allow_empty=allow_empty,
        )

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run_connection, name="binance-ws", daemon=True),
            threading.Thread(target=self._run_sequencer, name="binance-seq", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=0.5)
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        self.health.state, self.health.message = "stopped", "stopped"

    def set_symbols(self, symbols: list[str] | tuple[str, ...], adopted: tuple[str, ...] = ()) -> None:
        """SUBSCRIBE/UNSUBSCRIBE on the live connection (queued, rate-limited).

        ``adopted``: symbols another recorder wrote until now — each restarts from the newest
        stored id (the sink's ``last_agg_id``), caught up over REST before its first frame."""
        new = tuple(dict.fromkeys(s.upper() for s in symbols))
        if not new and not self.allow_empty:
            raise ValueError("at least one symbol is required")
        if len(new) > MAX_STREAMS:
            raise ValueError(f"at most {MAX_STREAMS} streams per connection")
        with self._symbols_lock:
            old = self._symbols
            add = [s for s in new if s not in old]
            remove = [s for s in old if s not in new]
            self._symbols = new
            self.health.url = stream_url(self.ws_url, new)
            for s in add:
                self.health.symbol(s)
            if not old or not new:  # from or to no symbol at all: (re)connect with the new set (or idle)
                self._control.clear()
                ws = self._ws
                if ws is not None:
                    with contextlib.suppress(Exception):
                        ws.close(timeout=0.5)
            else:
                if add:
                    self._control.append({"method": "SUBSCRIBE", "params": [f"{s.lower()}@aggTrade" for s in add]})
                if remove:
                    self._control.append({"method": "UNSUBSCRIBE", "params": [f"{s.lower()}@aggTrade" for s in remove]})
            reset = tuple(s.upper() for s in adopted if s.upper() in new)
            if reset and old:  # a fresh connection catches up anyway; on a live one, do it now
                self._queue.put(_CatchUp(reset, reset=True))

    # -- threads --------------------------------------------------------------
    def _run_sequencer(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        next_retry = time.monotonic() + self.pending_retry_s
        while not (self._stop.is_set() and self._queue.empty()):
            if time.monotonic() >= next_retry:  # gaps left pending (interrupted backfill, writer overflow)
                next_retry = time.monotonic() + self.pending_retry_s
                for s in self._symbols:
                    try:
                        self.sequencer.retry_pending(s)
                    except Exception:
                        log.exception("retrying pending gaps of %s failed", s)
            try:
                first = get(timeout=0.1)
            except queue.Empty:
                continue
            items: list = []
            command = None
            nxt = first
            try:
                while True:
                    if isinstance(nxt, _CatchUp):
                        command = nxt
                        break
                    items.extend(nxt)
                    if len(items) >= 20_000:
                        break
                    nxt = get_nowait()
            except queue.Empty:
                pass
            try:
                if items:
                    self.sequencer.process(items)
                if command is not None:
                    self._catch_up(command.symbols, command.reset)
            except Exception:  # the thread must survive anything a sink does
                log.exception("sequencer failed on a batch of %d trades", len(items))

    def _catch_up(self, symbols: tuple[str, ...], reset: bool = False) -> None:
        """After every (re)connect: fetch what was missed over REST at once (sequencer thread)."""
        if reset:
            for s in symbols:
                self.sequencer.forget(s)
        seed = None
        if self.seed_current_bar_ms:
            now = int(time.time() * 1000)
            seed = (now // self.seed_current_bar_ms - 1) * self.seed_current_bar_ms
        for s in symbols:
            if self._stop.is_set():
                return
            self.sequencer.catch_up(s, seed_from_ms=seed)

    def _run_connection(self) -> None:
        attempt = 0
        h = self.health
        while not self._stop.is_set():
            if not self._symbols:  # a standby recorder: nothing to stream until a symbol is handed over
                h.state, h.message = "idle", "no symbol to record (standby: another recorder holds them)"
                self._stop.wait(0.2)
                continue
            url = stream_url(self.ws_url, self._symbols)
            h.url = url
            h.state, h.message = "connecting", f"connecting to {url}"
            try:
                ws = websocket.create_connection(
                    url, timeout=self.connect_timeout_s, skip_utf8_validation=True, enable_multithread=True,
                    class_=BufferedWebSocket,
                )
            except websocket.WebSocketBadStatusException as exc:
                if getattr(exc, "status_code", None) == 451:
                    h.state, h.message = "blocked", BLOCKED_MESSAGE
                    log.error("%s; next attempt in %.0fs", BLOCKED_MESSAGE, self.blocked_retry_s)
                    self._stop.wait(self.blocked_retry_s)
                    continue
                attempt = self._backoff(attempt, f"handshake refused: HTTP {getattr(exc, 'status_code', '?')}")
                continue
            except (OSError, websocket.WebSocketException) as exc:
                attempt = self._backoff(attempt, f"cannot reach {self.ws_url}: {exc}")
                continue
            self._ws = ws
            h.attempts = 0
            self._queue.put(_CatchUp(self._symbols, reset=True))  # before any frame of this connection
            connected = time.monotonic()
            h.connected_since = time.time()
            h.state, h.message = "connected", "connected, waiting for the first trade"
            reason = self._read_loop(ws, connected)
            self._ws = None
            with contextlib.suppress(Exception):
                ws.close(timeout=0.5)
            if self._stop.is_set():
                break
            h.reconnects += 1
            if time.monotonic() - connected >= self.healthy_reset_s or reason == "proactive":
                attempt = 0
            attempt = self._backoff(attempt, reason, immediate=reason == "proactive")
        h.state, h.message = "stopped", "stopped"

    def _read_loop(self, ws: websocket.WebSocket, connected: float) -> str:
        h = self.health
        ws.settimeout(0.5)
        last_frame = time.monotonic()
        q_put = self._queue.put
        while not self._stop.is_set():
            self._send_control(ws)
            try:
                messages = ws.recv_messages()
            except websocket.WebSocketTimeoutException:
                now = time.monotonic()
                if now - last_frame > self.stale_after_s:
                    hint = ""
                    if "/market" not in self.ws_url:
                        hint = " — since 2026-04-23 Binance needs the /market route (check ALPHASTREAM_WS_URL)"
                    h.state, h.message = "stale", f"no frame for {now - last_frame:.0f}s: reconnecting{hint}"
                    return f"watchdog: no frame for {now - last_frame:.0f}s{hint}"
                if now - connected > self.reconnect_before_s:
                    return "proactive"
                continue
            except (websocket.WebSocketException, OSError) as exc:
                return f"connection lost: {exc or type(exc).__name__}"
            if not messages:
                continue
            last_frame = time.monotonic()
            recv_ms = time.time() * 1000.0
            symbols = self._symbols
            trades: list[ParsedTrade] = []
            for raw in messages:
                try:
                    parsed = parse_frame(raw, recv_ms)
                except MalformedFrame as exc:
                    h.malformed += 1
                    h.last_malformed = str(exc)
                    log.warning("malformed frame (%s): %.200r", exc, raw)
                    continue
                if isinstance(parsed, ControlReply):
                    if parsed.error:
                        h.message = f"subscription error: {parsed.error}"
                    continue
                if parsed[0] not in symbols:
                    h.malformed += 1
                    h.last_malformed = f"trade for unsubscribed symbol {parsed[0]}"
                    continue
                trades.append(parsed)
            if trades:
                if h.state != "live":
                    h.state, h.message = "live", "streaming"
                q_put(trades)
        return "stopped"

    def _send_control(self, ws: websocket.WebSocket) -> None:
        now = time.monotonic()
        while self._control and (len(self._control_sent) < 4 or now - self._control_sent[-4] >= 1.0):
            msg = dict(self._control.popleft(), id=self._next_id)
            self._next_id += 1
            ws.send(json.dumps(msg))
            self._control_sent.append(now)

    def _backoff(self, attempt: int, reason: str, immediate: bool = False) -> int:
        h = self.health
        if immediate:
            return 0
        delay = min(self.backoff_max_s, self.backoff_initial_s * (2**attempt)) * self._jitter.uniform(0.5, 1.0)
        h.attempts = attempt + 1
        h.state, h.message = "backoff", f"{reason}; next attempt in {delay:.1f}s (attempt {attempt + 1})"
        log.warning("%s", h.message)
        self._stop.wait(delay)
        return attempt + 1
