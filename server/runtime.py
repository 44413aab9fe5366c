"""The per-process runtime: one store, one ingestion source, one alert engine, one recorded universe.

Started once per server process by the ASGI lifespan (``app.py``), before any
browser connects, and stopped cleanly at shutdown (sockets closed, SQLite
flushed). Browser sessions only read from it (:func:`current`); a page run
without the lifespan (Streamlit's AppTest, a script) starts it on first use
through :func:`get_or_start`.

The recorded universe is **server state**: the configured symbols, plus symbols
any session explicitly asked to record too (checked against Binance's
``exchangeInfo`` first), plus every symbol an alert rule uses. A session chooses
which recorded symbols it *views* and never changes the feed for anyone else; an
added symbol can be stopped for everyone (the dashboard asks first).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from alerts import AlertEngine
from config import Settings
from ingest.base import Source
from ingest.binance import MAX_STREAMS, BinanceSource
from ingest.catalog import SymbolCatalog
from pairs import LiveBars
from storage.store import TickStore

__all__ = ["Runtime", "Universe", "UniverseError", "current", "get_or_start", "start", "start_replay", "stop"]

log = logging.getLogger(__name__)
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}(USDT|USDC)$")


class UniverseError(ValueError):
    """A symbol cannot be added to (or removed from) the recorded universe (the message says why)."""


@dataclass(frozen=True)
class Added:
    """What :meth:`Universe.add` did: the symbols newly recorded, and why they could not be checked (if so)."""

    symbols: list[str]
    unverified: str | None = None


class Universe:
    """The symbols this server records (see the module docstring). Thread-safe."""

    def __init__(self, configured: tuple[str, ...], store: TickStore, source: Source | None, alerts: AlertEngine | None,
                 recorder=None, follower=None, catalog: SymbolCatalog | None = None) -> None:
        self.configured = tuple(configured)
        self._store = store
        self._source = source
        self._alerts = alerts
        self._recorder = recorder  # PostgreSQL: records the symbols whose lock this process holds
        self._follower = follower  # PostgreSQL: symbols other processes record
        self._catalog = catalog  # Binance's tradable perpetuals (exchangeInfo)
        self._lock = threading.Lock()
        self._added: list[str] = [s for s in store.universe_symbols() if s not in self.configured]
        self.on_added = None  # callback(list of new symbols), e.g. seed their history

    def rule_symbols(self) -> list[str]:
        if self._alerts is None:
            return []
        return self._alerts.symbols()

    def recorded(self) -> tuple[str, ...]:
        """Configured symbols first, then those added at runtime, then alert-rule symbols."""
        with self._lock:
            added = list(self._added)
        followed = list(self._follower.followed) if self._follower is not None else []
        return tuple(dict.fromkeys([*self.configured, *added, *self.rule_symbols(), *followed]))

    @property
    def can_add(self) -> bool:
        """Whether this process can start recording a symbol (it runs ingestion)."""
        return self._source is not None

    def origin(self, symbol: str) -> str:
        """Why ``symbol`` is recorded: ``configured``, ``added``, ``alert rule`` or ``other recorder``."""
        if symbol in self.configured:
            return "configured"
        with self._lock:
            if symbol in self._added:
                return "added"
        return "alert rule" if symbol in self.rule_symbols() else "other recorder"

    def add(self, symbols: list[str] | tuple[str, ...], note: str = "added from the dashboard") -> Added:
        """Record ``symbols`` too; returns the ones that were new (and a note when Binance could not be asked).

        Raises
        ------
        UniverseError
            A symbol is not a USDⓈ-M perpetual name, Binance does not list it as a
            trading perpetual (``exchangeInfo``), or the connection would carry more
            than the 200 streams Binance allows.
        """
        wanted = [s.strip().upper() for s in symbols if s and s.strip()]
        bad = [s for s in wanted if not SYMBOL_RE.match(s)]
        if bad:
            raise UniverseError(f"not a USDⓈ-M perpetual symbol: {', '.join(bad)} (expected e.g. SOLUSDT)")
        unverified = None
        with self._lock:
            current = tuple(dict.fromkeys([*self.configured, *self._added, *self.rule_symbols()]))
        new = [s for s in dict.fromkeys(wanted) if s not in current]
        if not new:
            return Added([])
        if self._catalog is not None:  # outside the lock: a network call
            check = self._catalog.check(new)
            if check.unknown:
                raise UniverseError(f"Binance lists no trading USDⓈ-M perpetual {', '.join(check.unknown)} "
                                    "(exchangeInfo): check the spelling, e.g. SOLUSDT")
            unverified = check.unverified
        with self._lock:
            current = tuple(dict.fromkeys([*self.configured, *self._added, *self.rule_symbols()]))
            new = [s for s in new if s not in current]
            if not new:
                return Added([])
            if len(current) + len(new) > MAX_STREAMS:
                raise UniverseError(f"one connection carries at most {MAX_STREAMS} streams; {len(current)} are recorded already")
            self._added.extend(new)
            self._store.add_universe_symbols(new, note)
        self.sync()
        if self.on_added is not None:
            self.on_added(new)
        return Added(new, unverified)

    def remove(self, symbol: str) -> None:
        """Stop recording ``symbol`` for everyone (its stored ticks stay); only an added symbol can be removed.

        Raises
        ------
        UniverseError
            The symbol is configured (``ALPHASTREAM_SYMBOLS``), used by an alert rule,
            recorded through PostgreSQL shards, or not recorded at all.
        """
        symbol = symbol.strip().upper()
        if symbol in self.configured:
            raise UniverseError(f"{symbol} is configured (ALPHASTREAM_SYMBOLS): remove it there and restart")
        if symbol in self.rule_symbols():
            rules = [f"#{r.id} '{r.name}'" for r in (self._alerts.rules.list() if self._alerts is not None else ())
                     if symbol in (r.symbol, r.symbol_y, r.symbol_x)]
            raise UniverseError(f"{symbol} is used by alert rule {', '.join(rules) or '(a rule)'}: delete or edit the rule first")
        if self._recorder is not None:
            raise UniverseError("this server records through PostgreSQL shards: change the recorders' ALPHASTREAM_SYMBOLS instead")
        with self._lock:
            if symbol not in self._added:
                raise UniverseError(f"{symbol} is not recorded by this server")
            self._added.remove(symbol)
            self._store.remove_universe_symbol(symbol)
        if self._source is not None and symbol in self._source.symbols:
            self._source.set_symbols(tuple(s for s in self._source.symbols if s != symbol))

    def sync(self) -> None:
        """Subscribe the source to every recorded symbol (a superset of what it streams)."""
        if self._source is None:
            return
        if self._recorder is not None:  # sharded: ask for the locks; the recorder subscribes what it gets
            with self._lock:
                added = list(self._added)
            self._recorder.want([*self.configured, *added, *self.rule_symbols()])
            return
        wanted = self.recorded()
        have = set(self._source.symbols)
        if not set(wanted) <= have:
            self._source.set_symbols(tuple(dict.fromkeys([*self._source.symbols, *wanted])))


@dataclass
class Runtime:
    settings: Settings
    store: TickStore
    source: Source | None
    alerts: AlertEngine | None = None
    universe: Universe | None = None
    warm: threading.Event = field(default_factory=threading.Event)
    started_at: float = field(default_factory=time.time)
    replays: dict[str, Runtime] = field(default_factory=dict)  # session id -> that session's replay
    side_known: dict[str, bool] = field(default_factory=dict)  # replays: False where the data has no taker side
    seeded: dict[tuple[str, str], tuple] = field(default_factory=dict)  # (symbol, tf) -> (first, last, bars) from klines
    leases: object | None = None  # PostgreSQL: advisory locks (symbols recorded here, alert leadership)
    recorder: object | None = None  # PostgreSQL: ingest.shards.ShardedRecorder
    bar_recorder: object | None = None
    follower: object | None = None  # PostgreSQL: storage.follower.Follower

    @property
    def bars(self) -> LiveBars:
        """The feed in memory as a :class:`pairs.BarSource` (on this runtime's clock)."""
        src = self.__dict__.get("_bars")
        if src is None:
            def symbols() -> tuple[str, ...]:
                if self.universe is not None:
                    return self.universe.recorded()
                return tuple(self.source.symbols) if self.source is not None else tuple(self.store.symbols())

            src = self.__dict__["_bars"] = LiveBars(self.store, symbols, self.now_ms, self.side_known,
                                                    "replay" if self.is_replay else "live")
        return src

    @property
    def is_replay(self) -> bool:
        return getattr(getattr(self.source, "health", None), "name", "") == "replay"

    def now_ms(self) -> int:
        """This runtime's clock: the wall clock, or for a replay the time of the newest replayed tick."""
        pos = getattr(self.source, "position_ms", None)
        if self.is_replay and pos:
            return int(pos)
        return int(time.time() * 1000)

    def close(self) -> None:
        for r in list(self.replays.values()):
            r.close()
        self.replays.clear()
        if self.follower is not None:
            self.follower.stop()
        if self.source is not None:
            self.source.stop()
        if self.bar_recorder is not None:
            self.bar_recorder.stop()
        if self.alerts is not None:
            self.alerts.stop()
        self.store.close()
        if self.leases is not None:
            self.leases.stop()  # after the last write: a standby takes over only what is stored


def build_runtime(settings: Settings) -> Runtime:
    """Start storage (warm start), the Binance source (if enabled) and the alert engine.

    With PostgreSQL (``database_url``): the symbols are recorded under per-symbol advisory locks
    (a standby for what another process records), every other recorded symbol is followed from the
    database, and the alert engine records alerts only while it holds the leader lock.
    """
    store = TickStore.from_settings(settings)
    store.start()
    leases = None
    if settings.database_url:
        from storage.postgres import Leases

        leases = Leases(settings.database_url, ["alerts"])
    alerts = AlertEngine(store, webhook_url=settings.webhook_url, webhook_allow_hosts=settings.webhook_allow_hosts,
                         leader=(lambda: "alerts" in leases.held) if leases is not None else None)
    source: Source | None = None
    recorder = bar_recorder = follower = None
    symbols = tuple(dict.fromkeys([*settings.symbols, *store.universe_symbols(), *alerts.stored_rule_symbols()]))
    if settings.ingest_enabled and leases is not None:
        from ingest.shards import BarRecorder, ShardedRecorder

        source = BinanceSource.from_settings(store, settings, (), allow_empty=True)
        recorder = ShardedRecorder(store, source, symbols[:MAX_STREAMS], leases)
        source.start()
        bar_recorder = BarRecorder(store, lambda: recorder.owned)
        bar_recorder.start()
    elif settings.ingest_enabled:
        source = BinanceSource.from_settings(store, settings, symbols)
        source.start()
    if leases is not None:
        from storage.follower import Follower

        follower = Follower(store, own=(lambda: recorder.owned) if recorder is not None else tuple, warm_hours=settings.warm_start_hours)
        follower.start()
        leases.start()
    alerts.start()
    rt = Runtime(settings, store, source, alerts, leases=leases, recorder=recorder, bar_recorder=bar_recorder, follower=follower)
    catalog = None
    if isinstance(source, BinanceSource) and source.rest is not None:
        from ingest.rest import RestClient

        # its own client, one short attempt: a dashboard click never waits behind the feed's backfills
        catalog = SymbolCatalog(RestClient(source.rest.base_url, timeout_s=3.0, max_attempts=1))
    rt.universe = Universe(settings.symbols, store, source, alerts, recorder=recorder, follower=follower, catalog=catalog)
    alerts.on_rules_changed = rt.universe.sync
    if follower is not None:
        seed_stored_bars(rt)
    if settings.seed_history and isinstance(source, BinanceSource) and source.rest is not None:
        rt.universe.on_added = lambda syms: seed_klines(rt, syms)
        seed_klines(rt, rt.universe.recorded())

    def _warm() -> None:
        try:
            import analytics
            from storage import bars

            analytics.warm_up()
            bars.warm_up()
        finally:
            rt.warm.set()

    threading.Thread(target=_warm, name="numba-warmup", daemon=True).start()
    return rt


SEED_INTERVALS = {"1m": 60_000, "5m": 300_000}


def seed_klines(rt: Runtime, symbols: tuple[str, ...] | list[str]) -> threading.Thread:
    """In the background: Binance klines (1000 × 1m and 5m) for ``symbols``, shown as exchange
    bars before the first bar built from ticks — 1m and 5m views have history within seconds."""
    from ingest.rest import BackfillError, klines_frame

    def run() -> None:
        rest = rt.source.rest  # type: ignore[union-attr]
        for sym in symbols:
            for name, period in SEED_INTERVALS.items():
                try:
                    rows = rest.klines(sym, name, limit=1000)
                except BackfillError as exc:
                    log.info("%s %s klines unavailable: %s", sym, name, exc)
                    continue
                bars = klines_frame(rows, int(time.time() * 1000))
                if len(bars):
                    rt.store.seed_bars(sym, period, bars)
                    rt.seeded[(sym, name)] = (bars.index[0], bars.index[-1], len(bars))

    t = threading.Thread(target=run, name="klines-seed", daemon=True)
    t.start()
    return t


def funding_source(rt: Runtime):
    """``(symbol, start_ms, end_ms) -> funding rates`` from Binance ``/fapi/v1/fundingRate`` (the
    configured REST URL; cached per symbol and hour), or None without a REST client (replay, follower)."""
    shared = getattr(rt.source, "rest", None)
    if shared is None:
        return None
    from ingest.rest import RestClient

    # its own client, short timeout, one attempt: a dashboard click must not queue behind the feed's
    # backfills or wait out retries (an unreachable exchange is reported and the run goes on without funding)
    rest = RestClient(shared.base_url, timeout_s=3.0, max_attempts=1)
    cache: dict[tuple[str, int, int], object] = rt.__dict__.setdefault("_funding_cache", {})

    def fetch(symbol: str, start_ms: int, end_ms: int):
        key = (symbol, start_ms // 3_600_000, end_ms // 3_600_000)
        if key not in cache:
            cache[key] = rest.funding_rates(symbol, start_ms, end_ms)["funding_rate"]
        return cache[key]

    return fetch


def seed_stored_bars(rt: Runtime, days: float = 7.0) -> threading.Thread:
    """PostgreSQL: in the background, the recorders' stored 1m and 5m bars of the last ``days`` for every
    symbol in the database, shown before the ticks in memory (history beyond the warm start)."""

    def run() -> None:
        try:
            symbols = list(rt.store.reader.symbol_state())
            since = int(time.time() * 1000 - days * 86_400_000)
            for sym in symbols:
                for period in SEED_INTERVALS.values():
                    bars = rt.store.reader.load_bars(sym, period, start_ms=since)
                    if len(bars):
                        rt.store.seed_bars(sym, period, bars, exchange=False)
        except Exception as exc:  # the database is down: the views start from memory
            log.warning("cannot load stored bars: %s", exc)

    t = threading.Thread(target=run, name="stored-bars-seed", daemon=True)
    t.start()
    return t


_lock = threading.Lock()
_runtime: Runtime | None = None


def start(settings: Settings) -> Runtime:
    """Start the process runtime (idempotent): the server's lifespan calls this at start-up."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(settings)
            log.info("runtime started: recording %s", ", ".join(_runtime.universe.recorded() if _runtime.universe else ()))
        return _runtime


def current() -> Runtime | None:
    """The running process runtime, or None before :func:`start`."""
    return _runtime


def get_or_start(settings: Settings) -> Runtime:
    """The running runtime, started now when no lifespan did (AppTest, scripts)."""
    return _runtime if _runtime is not None else start(settings)


def stop() -> None:
    """Stop the runtime: ingestion, alerts, then flush and close storage (shutdown)."""
    global _runtime
    with _lock:
        rt, _runtime = _runtime, None
    if rt is not None:
        rt.close()


def start_replay(rt: Runtime, session_id: str, ticks: dict, speed: float | None) -> Runtime:  # ticks: symbol -> BATCH_DTYPE array
    """Replay ticks for one session through a fresh store (its own SQLite file, never the live one)."""
    from ingest.replay import ReplaySource

    old = rt.replays.pop(session_id, None)
    if old is not None:
        old.close()
    safe = re.sub(r"[^A-Za-z0-9_-]", "", session_id)[:32] or "session"
    path = rt.settings.db_path.with_name(f"{rt.settings.db_path.stem}-replay-{safe}.sqlite")
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = TickStore(path, max_ticks=rt.settings.buffer_max_ticks, max_age_s=10**9, warm_start_hours=0)
    store.start(warm_start=False)
    source = ReplaySource(store, ticks, speed=speed)
    source.start()
    replay = Runtime(rt.settings, store, source)
    replay.warm.set()
    rt.replays[session_id] = replay
    return replay
