"""A loopback Binance USDⓈ-M for tests: real WebSocket + HTTP servers in this process.

Serves the real recorded trades (see ``tests.recordings.aggtrade_frames``) as
combined-stream ``aggTrade`` frames on ``ws://127.0.0.1:<port>/market/stream?streams=...``
and the same trades on ``GET /fapi/v1/aggTrades``. The "exchange" keeps one
cursor across connections, so trades emitted while a client is away are lost to
the WebSocket and must be backfilled over REST — just like the real thing.

Fault knobs: ``drop_after`` (close after N frames on each of the first
connections), ``stall_after`` (first connection stops sending but keeps the socket open),
``skip_ids`` (never send these ids on the socket), ``malformed_every``,
``reject_status`` (e.g. 451 on the handshake), ``rest_retry_after`` (first REST
call answers 429 with that Retry-After), ``rest_min_id`` (REST history horizon);
``ping_interval_s`` makes the server ping that often and drop a client whose
pong is over 1 s late (Binance: every 3 min, 10 min).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import serve

LISTED = ("ADAUSDT", "AVAXUSDT", "BCHUSDT", "BNBUSDT", "BTCUSDT", "ENAUSDT", "ETCUSDT", "ETHUSDT", "LAYERUSDT", "LINKUSDT",
          "LTCUSDT", "SOLUSDT", "SUIUSDT", "XLMUSDT", "XMRUSDT", "XRPUSDT")


def contract(symbol: str, **kw: object) -> dict:
    """An ``exchangeInfo`` entry of a trading USDⓈ-M perpetual (``kw`` overrides fields)."""
    base = symbol[:-4] if symbol.endswith(("USDT", "USDC")) else symbol
    quote = symbol[-4:] if symbol.endswith(("USDT", "USDC")) else "USDT"
    return {"symbol": symbol, "pair": symbol, "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": base,
            "quoteAsset": quote, "marginAsset": quote, "underlyingType": "COIN", "underlyingSubType": [], **kw}


class FakeBinance:
    def __init__(self, frames: dict[str, list[dict]], rate: float | None = None, ping_interval_s: float | None = None,
                 rebase_time: bool = False) -> None:
        """``rate``: frames per second, ``None`` as fast as possible, or ``"real"``: each trade at
        its own recorded time (needs ``rebase_time``). ``rebase_time``: shift every trade/event time
        (WebSocket and REST alike) so the first recorded trade happens when the exchange starts —
        the recording then looks like a live market (ids, prices, sizes and the spacing between
        trades stay verbatim)."""
        self._rebase = rebase_time or rate == "real"
        self.frames = frames
        self.ping_interval_s = ping_interval_s
        self.by_id = {s: {f["data"]["a"]: f["data"] for f in fr} for s, fr in frames.items()}
        self.index_of = {s: {f["data"]["a"]: i for i, f in enumerate(fr)} for s, fr in frames.items()}
        self.klines_1m: dict[str, list[list]] = {}  # symbol -> Binance kline rows (see set_klines)
        # /fapi/v1/exchangeInfo "symbols": by default the symbols it streams and the 16 perpetuals of the shared bars
        self.exchange_symbols: list[dict] = [contract(s) for s in dict.fromkeys([*frames, *LISTED])]
        self.tickers: list[dict] = []  # /fapi/v1/ticker/24hr
        self.funding: dict[str, list[tuple[int, float]]] = {}  # symbol -> (fundingTime ms, rate), see set_funding
        self.rate = rate
        self.cursor = {s: 0 for s in frames}
        self.drop_after: list[int] = []
        self.lost_on_drop = 0
        self.stall_after: int | None = None
        self.skip_ids: set[int] = set()
        self.malformed_every: int | None = None
        self.reject_status: int | None = None
        self.rest_retry_after: float | None = None
        self.rest_min_id: dict[str, int] = {}
        self.connections = 0
        self.handshakes_rejected = 0
        self.rest_calls = 0
        self.rest_429_at: float | None = None
        self.rest_after_429_at: float | None = None
        self.subscriptions: list[dict] = []
        self.sent = 0
        self.sent_at: dict[int, float] = {}
        self._sent_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_server = None
        self._thread: threading.Thread | None = None
        self._http: ThreadingHTTPServer | None = None
        self.ws_port = 0
        self.paused = threading.Event()

    def sent_times(self) -> dict[int, float]:
        """Snapshot of aggregate id -> wall time (s) it was written, safe while the server streams."""
        with self._sent_lock:
            return dict(self.sent_at)

    # -- lifecycle --------------------------------------------------------
    def __enter__(self) -> FakeBinance:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/market"

    @property
    def rest_url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> None:
        if self._rebase:
            first = min(f["data"]["T"] for fr in self.frames.values() for f in fr[:1])
            shift = int(time.time() * 1000) + 500 - first
            self.frames = {s: [{**f, "data": {**f["data"], "T": f["data"]["T"] + shift, "E": f["data"]["E"] + shift}} for f in fr]
                           for s, fr in self.frames.items()}
            self.by_id = {s: {f["data"]["a"]: f["data"] for f in fr} for s, fr in self.frames.items()}
            self._rebase = False
        self.started_ms = int(time.time() * 1000)
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)

            async def main() -> None:
                self._ws_server = await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request,
                    ping_interval=self.ping_interval_s, ping_timeout=1.0 if self.ping_interval_s else None,
                )
                self.ws_port = self._ws_server.sockets[0].getsockname()[1]
                ready.set()
                await self._ws_server.serve_forever()

            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(main())

        self._thread = threading.Thread(target=run, name="fake-binance-ws", daemon=True)
        self._thread.start()
        ready.wait(10)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._rest_handler())
        threading.Thread(target=self._http.serve_forever, name="fake-binance-rest", daemon=True).start()

    def stop(self) -> None:
        if self._loop is not None and self._ws_server is not None:
            self._loop.call_soon_threadsafe(self._ws_server.close)
        if self._thread is not None:
            self._thread.join(5)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    # -- websocket ----------------------------------------------------------
    def _process_request(self, connection, request):
        if self.reject_status is not None:
            self.handshakes_rejected += 1
            return connection.respond(HTTPStatus(self.reject_status), "Service unavailable from a restricted location\n")
        if not request.path.startswith("/market/stream"):
            # legacy route: accept and then say nothing (Binance since 2026-04-23)
            return None
        return None

    async def _handler(self, ws) -> None:
        self.connections += 1
        conn_no = self.connections
        path = ws.request.path
        if not path.startswith("/market/stream"):
            await ws.wait_closed()
            return
        query = parse_qs(urlparse(path).query)
        streams = query.get("streams", [""])[0].split("/")
        subscribed = {s.split("@")[0].upper() for s in streams if s}
        drop_at = self.drop_after[conn_no - 1] if conn_no - 1 < len(self.drop_after) else None

        async def reader() -> None:
            async for message in ws:
                msg = json.loads(message)
                self.subscriptions.append(msg)
                names = {p.split("@")[0].upper() for p in msg.get("params", [])}
                if msg.get("method") == "SUBSCRIBE":
                    subscribed.update(names)
                elif msg.get("method") == "UNSUBSCRIBE":
                    subscribed.difference_update(names)
                await ws.send(json.dumps({"result": None, "id": msg.get("id")}))

        reader_task = asyncio.create_task(reader())
        sent_here = 0
        try:
            while True:
                if self.paused.is_set() or (self.stall_after is not None and conn_no == 1 and sent_here >= self.stall_after):
                    await asyncio.sleep(0.05)
                    continue
                frame = self._next_frame(subscribed)
                if frame is None:
                    await asyncio.sleep(0.02)
                    continue
                if frame["data"]["a"] in self.skip_ids:
                    continue
                if self.malformed_every and self.sent and self.sent % self.malformed_every == 0:
                    await ws.send('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT","p":"oops"}}')
                    await ws.send("not json at all")
                await ws.send(json.dumps(frame))
                with self._sent_lock:  # readers snapshot it from another thread while we stream
                    self.sent_at[frame["data"]["a"]] = time.time()
                self.sent += 1
                sent_here += 1
                if drop_at is not None and sent_here >= drop_at:
                    for s in self.cursor:  # the exchange moves on while the client is away
                        self.cursor[s] = min(len(self.frames[s]), self.cursor[s] + self.lost_on_drop)
                    await ws.close()
                    return
                if self.rate == "real":
                    nxt = self._peek(subscribed)
                    wait = (nxt["data"]["T"] / 1000.0 - time.time()) if nxt is not None else 0.0
                    if wait > 0:
                        await asyncio.sleep(wait)
                elif self.rate:
                    if sent_here % 20 == 0:  # pace in small bursts: asyncio sleeps are ~1 ms coarse
                        await asyncio.sleep(20.0 / self.rate)
                elif sent_here % 200 == 0:
                    await asyncio.sleep(0)
        except Exception:
            return
        finally:
            reader_task.cancel()

    def _peek(self, subscribed: set[str]) -> dict | None:
        best = None
        for s in subscribed:
            fr = self.frames.get(s)
            if fr is not None and self.cursor[s] < len(fr):
                cand = fr[self.cursor[s]]
                if best is None or cand["data"]["T"] < best["data"]["T"]:
                    best = cand
        return best

    def _next_frame(self, subscribed: set[str]) -> dict | None:
        """The earliest unsent frame (by trade time) among subscribed symbols."""
        best = None
        for s in subscribed:
            fr = self.frames.get(s)
            if fr is None or self.cursor[s] >= len(fr):
                continue
            cand = fr[self.cursor[s]]
            if best is None or cand["data"]["T"] < best[1]["data"]["T"]:
                best = (s, cand)
        if best is None:
            return None
        self.cursor[best[0]] += 1
        return best[1]

    def set_klines(self, bars: dict[str, object]) -> None:
        """Serve real 1-minute bars (``pandas`` frames with open/high/low/close/volume) as
        ``/fapi/v1/klines``, shifted so the last one closes just before the exchange started."""
        end = (self.started_ms if hasattr(self, "started_ms") else int(time.time() * 1000)) // 60_000 * 60_000
        for sym, df in bars.items():
            n = len(df)
            opens = [end - (n - i) * 60_000 for i in range(n)]
            # the bars come from another month than the trade recording: scale them so the last close
            # meets the first recorded trade (the shape stays real, the splice has no jump)
            fr = self.frames.get(sym.upper())
            k = float(fr[0]["data"]["p"]) / float(df["close"].iloc[-1]) if fr else 1.0
            rows = []
            for t, (o, h, lo, c, v) in zip(opens, df[["open", "high", "low", "close", "volume"]].itertuples(index=False), strict=True):
                o, h, lo, c = (round(p * k, 8) for p in (o, h, lo, c))
                rows.append([t, str(o), str(h), str(lo), str(c), str(v), t + 59_999, str(v * c), 100, str(v / 2), str(v * c / 2), "0"])
            self.klines_1m[sym.upper()] = rows

    def emitted(self, symbol: str, agg_id: int) -> bool:
        """Has the exchange produced this trade yet (sent it, or moved past it while a client was away)?"""
        i = self.index_of.get(symbol, {}).get(agg_id)
        return i is not None and i < self.cursor.get(symbol, 0)

    def done(self, symbols: list[str] | None = None) -> bool:
        return all(self.cursor[s] >= len(self.frames[s]) for s in (symbols or self.frames))

    # -- REST -------------------------------------------------------------------
    def set_funding(self, history: dict[str, object]) -> None:
        """Serve real funding events (``pandas`` Series of rates on a UTC index) as ``/fapi/v1/fundingRate``."""
        self.funding = {s.upper(): [(int(t.value // 1_000_000), float(v)) for t, v in series.items()] for s, series in history.items()}

    def _rest_handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, obj: object) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _funding(self, q: dict) -> None:
                events = fake.funding.get(q.get("symbol", [""])[0].upper(), [])
                t0 = int(q.get("startTime", ["0"])[0])
                t1 = int(q.get("endTime", [str(2**62)])[0])
                limit = min(int(q.get("limit", ["100"])[0]), 1000)
                sel = [e for e in events if t0 <= e[0] <= t1][:limit]
                self._json([{"symbol": q["symbol"][0].upper(), "fundingTime": t, "fundingRate": f"{r:.8f}", "markPrice": "0"} for t, r in sel])

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/fapi/v1/klines":
                    return self._klines(parse_qs(url.query))
                if url.path == "/fapi/v1/exchangeInfo":
                    return self._json({"timezone": "UTC", "serverTime": int(time.time() * 1000), "symbols": fake.exchange_symbols})
                if url.path == "/fapi/v1/ticker/24hr":
                    return self._json(fake.tickers)
                if url.path == "/fapi/v1/fundingRate":
                    return self._funding(parse_qs(url.query))
                if url.path != "/fapi/v1/aggTrades":
                    self.send_error(404)
                    return
                fake.rest_calls += 1
                if fake.rest_retry_after is not None and fake.rest_429_at is None:
                    fake.rest_429_at = time.monotonic()
                    self.send_response(429)
                    self.send_header("Retry-After", str(fake.rest_retry_after))
                    self.end_headers()
                    self.wfile.write(b'{"code":-1003,"msg":"Too many requests"}')
                    return
                if fake.rest_429_at is not None and fake.rest_after_429_at is None:
                    fake.rest_after_429_at = time.monotonic()
                q = parse_qs(url.query)
                symbol = q["symbol"][0].upper()
                limit = min(int(q.get("limit", ["500"])[0]), 1000)
                ids = fake.by_id.get(symbol, {})
                if "fromId" in q:
                    from_id = int(q["fromId"][0])
                else:  # startTime: the first trade at or after it
                    t0 = int(q.get("startTime", ["0"])[0])
                    later = [a for a, d in ids.items() if d["T"] >= t0 and fake.emitted(symbol, a)]
                    from_id = min(later) if later else 2**62
                start = max(from_id, fake.rest_min_id.get(symbol, 0))
                out = []
                a = start
                while len(out) < limit and a in ids and fake.emitted(symbol, a):  # only trades that have happened
                    d = ids[a]
                    out.append({"a": d["a"], "p": d["p"], "q": d["q"], "nq": d["q"], "f": d["f"], "l": d["l"], "T": d["T"], "m": d["m"]})
                    a += 1
                if not out and ids:  # ids past the horizon start: Binance answers from the oldest it has
                    lo = min(ids)
                    if start < lo:
                        return self._json([])
                body = json.dumps(out).encode()
                self._json_bytes(body)

            def _klines(self, q: dict) -> None:
                rows = fake.klines_1m.get(q["symbol"][0].upper(), [])
                interval = q.get("interval", ["1m"])[0]
                limit = min(int(q.get("limit", ["500"])[0]), 1500)
                step = {"1m": 1, "5m": 5}.get(interval)
                if step is None:
                    return self._json([])
                if step > 1:
                    out = []
                    for i in range(0, len(rows) - step + 1):
                        if rows[i][0] % (step * 60_000):
                            continue
                        group = rows[i : i + step]
                        if len(group) < step:
                            break
                        v = sum(float(r[5]) for r in group)
                        out.append([group[0][0], group[0][1], str(max(float(r[2]) for r in group)), str(min(float(r[3]) for r in group)),
                                    group[-1][4], str(v), group[0][0] + step * 60_000 - 1, str(sum(float(r[7]) for r in group)),
                                    sum(r[8] for r in group), str(v / 2), str(sum(float(r[10]) for r in group)), "0"])
                    rows = out
                self._json(rows[-limit:])

            def _json(self, obj: object) -> None:
                self._json_bytes(json.dumps(obj).encode())

            def _json_bytes(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
