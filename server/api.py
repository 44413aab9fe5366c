"""Ops endpoints and the read API, served by the same process as the dashboard.

* ``GET /healthz`` — feed state per symbol, storage writer state and lag, last
  tick age. 200 when the feed is live and the writer keeps up; 503 otherwise
  (the body says why).
* ``GET /metrics`` — Prometheus text format.
* ``GET /api/v1/bars?symbol=&timeframe=&start=&end=`` — OHLCV bars, the same
  rows as the dashboard's OHLCV export (``format=csv`` gives that very file).
* ``GET /api/v1/pair?y=&x=&timeframe=&window=&method=&…`` — the processed pair
  table, the same numbers as the dashboard's analytics export, plus the
  formation-window diagnostic and ``research``: the OU fit, Bertram's bands and
  the CUSUM hedge-stability test of the formation window (JSON).
* ``GET /api/v1/scan?timeframe=&formation_bars=&q=`` — the universe scan of the
  recorded symbols (q-values, stability in both halves; ``format=csv``).

Heavy work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import orjson
import pandas as pd
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import analytics
from analytics.ou import round_trip_cost
from pairs import BAR_TIMEFRAMES, TIMEFRAMES, Timeframe, closes_matrix, compute_table, export_name, pair_frame, to_csv
from server import runtime

__all__ = ["api_routes", "health", "metrics_text"]

MAX_ROWS = 500_000


class ApiError(ValueError):
    """A bad request; the message is shown to the caller (it never echoes secrets)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _json(obj: object, status: int = 200) -> Response:
    body = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=_default)
    return Response(body, status_code=status, media_type="application/json")


def _default(o: object) -> object:
    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(type(o).__name__)


def _rt() -> runtime.Runtime:
    rt = runtime.current()
    if rt is None:
        raise ApiError("the server is starting", 503)
    return rt


# -- health and metrics -----------------------------------------------------------


def health(rt: runtime.Runtime, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, body)`` of ``/healthz``."""
    now = time.time() if now is None else now
    st = rt.store.status()
    w = st.writer
    recorded = rt.universe.recorded() if rt.universe else tuple(rt.settings.symbols)
    src = rt.source
    stale_after = rt.settings.stale_after_s
    symbols: dict[str, Any] = {}
    newest = None
    own = set(src.symbols) if src is not None else set()
    followed = set(rt.follower.followed) - own if rt.follower is not None else set()
    for sym in recorded:
        b = st.symbols.get(sym, {})
        last = b.get("last_time")
        h = src.health.symbols.get(sym) if src is not None and sym not in followed else None
        age = None if last is None else max(0.0, now - float(last) / 1000)
        frame_age = None if h is None or h.last_frame_at is None else now - h.last_frame_at
        if sym in followed:  # recorded by another process: judged by the age of what PostgreSQL holds
            frame_age = age
        state = "waiting" if last is None else ("live" if frame_age is not None and frame_age <= stale_after else "stale")
        symbols[sym] = {"state": state, "last_tick_age_s": age, "last_agg_id": b.get("last_agg_id"),
                        "frames_per_s": h.frames_per_s(now) if h is not None else 0.0,
                        "gaps_filled": h.gaps_filled if h else 0, "gaps_unfillable": h.gaps_unfillable if h else 0}
        if frame_age is not None:
            newest = frame_age if newest is None else min(newest, frame_age)
    problems = []
    if src is None:
        feed = {"state": "disabled", "message": "ingestion disabled (ALPHASTREAM_INGEST_ENABLED=false)", "reconnects": 0}
    else:
        feed = {"state": src.health.state, "message": src.health.message, "reconnects": src.health.reconnects,
                "last_frame_age_s": newest}
        standby = src.health.state == "idle"  # a hot standby recorder: nothing of its own to stream
        if not standby and (src.health.state != "live" or newest is None or newest > stale_after):
            problems.append(f"feed {src.health.state}: {src.health.message}")
    lag = rt.store.writer.lag_s()
    writer = {"state": w.state, "message": w.message, "pending_rows": w.pending_rows, "lag_s": lag,
              "committed_rows": w.committed_rows, "dropped_rows": w.dropped_rows, "errors": w.errors}
    if w.state not in ("ok", "starting"):
        problems.append(f"writer {w.state}: {w.message}")
    elif lag > max(10.0, 40 * rt.settings.flush_interval_ms / 1000):
        problems.append(f"writer lagging {lag:.1f} s behind")
    body = {"status": "ok" if not problems else "degraded", "problems": problems, "feed": feed, "symbols": symbols,
            "writer": writer, "rows_in_store": st.rows_stored, "backend": rt.store.backend, "uptime_s": now - rt.started_at}
    if rt.leases is not None:  # PostgreSQL: what this process does among several
        rec, fol = rt.recorder, rt.follower
        body["role"] = {"records": list(rec.owned) if rec else [], "standby_for": list(rec.standby()) if rec else [],
                        "follows": sorted(followed), "alert_leader": "alerts" in rt.leases.held,
                        "locks": {"state": rt.leases.state, "message": rt.leases.message},
                        "follower": {"state": fol.state, "error": fol.error} if fol else None}
        if rt.leases.state != "ok":
            problems.append(f"advisory locks: {rt.leases.message}")
        if fol is not None and fol.state != "ok":
            problems.append(f"following PostgreSQL: {fol.listener.message}")
        body["status"] = "ok" if not problems else "degraded"
    return (200 if not problems else 503), body


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(rt: runtime.Runtime, now: float | None = None) -> str:
    """Prometheus exposition (text format 0.0.4) of the runtime's counters and gauges."""
    now = time.time() if now is None else now
    st = rt.store.status()
    w = st.writer
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            val = "NaN" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))
            lines.append(f"{name}{{{lab}}} {val}" if lab else f"{name} {val}")

    src = rt.source
    recorded = rt.universe.recorded() if rt.universe else tuple(rt.settings.symbols)
    hs = {s: (src.health.symbols.get(s) if src is not None else None) for s in recorded}
    metric("alphastream_frames_total", "counter", "Trade frames received per symbol.", [({"symbol": s}, h.frames if h else 0) for s, h in hs.items()])
    metric("alphastream_frames_per_second", "gauge", "Trade frames per second over the last 5 s.", [({"symbol": s}, h.frames_per_s(now) if h else 0.0) for s, h in hs.items()])
    metric("alphastream_gaps_filled_total", "counter", "Id gaps backfilled over REST.", [({"symbol": s}, h.gaps_filled if h else 0) for s, h in hs.items()])
    metric("alphastream_gaps_unfillable_total", "counter", "Id gaps REST could not fill.", [({"symbol": s}, h.gaps_unfillable if h else 0) for s, h in hs.items()])
    ages = []
    for s in recorded:
        last = st.symbols.get(s, {}).get("last_time")
        ages.append(({"symbol": s}, math.nan if last is None else max(0.0, now - last / 1000)))
    metric("alphastream_last_tick_age_seconds", "gauge", "Seconds since the newest stored trade (exchange time).", ages)
    metric("alphastream_reconnects_total", "counter", "WebSocket reconnects.", [({}, src.health.reconnects if src else 0)])
    metric("alphastream_malformed_frames_total", "counter", "Frames rejected by the parser.", [({}, src.health.malformed if src else 0)])
    metric("alphastream_feed_live", "gauge", "1 when the feed state is live.", [({}, 1.0 if src is not None and src.health.state == "live" else 0.0)])
    metric("alphastream_writer_up", "gauge", "1 when the storage writer is persisting.", [({}, 1.0 if w.state == "ok" else 0.0)])
    metric("alphastream_writer_lag_seconds", "gauge", "Age of the oldest uncommitted batch.", [({}, rt.store.writer.lag_s())])
    metric("alphastream_writer_pending_rows", "gauge", "Ticks waiting for the writer.", [({}, w.pending_rows)])
    metric("alphastream_writer_committed_rows_total", "counter", "Ticks committed since start.", [({}, w.committed_rows)])
    metric("alphastream_writer_errors_total", "counter", "Writer errors since start.", [({}, w.errors)])
    metric("alphastream_rows_in_store", "gauge", "Tick rows in the database.", [({}, st.rows_stored)])
    if rt.leases is not None:
        metric("alphastream_alert_leader", "gauge", "1 while this process records alerts (PostgreSQL leader lock).",
               [({}, 1.0 if "alerts" in rt.leases.held else 0.0)])
        owned = set(rt.recorder.owned) if rt.recorder is not None else set()
        metric("alphastream_recording", "gauge", "1 for each symbol this process records (holds its lock), 0 on standby.",
               [({"symbol": s}, 1.0 if s in owned else 0.0) for s in (rt.recorder.symbols if rt.recorder is not None else ())])
    eng = rt.alerts
    delivered = failed = 0
    if eng is not None:
        for e in list(eng.events):
            if e.webhook_status.startswith("delivered"):
                delivered += 1
            elif e.webhook_status.startswith("failed"):
                failed += 1
    metric("alphastream_alert_events_total", "counter", "Alerts fired (in memory).", [({}, len(eng.events) if eng else 0)])
    metric("alphastream_alert_deliveries_total", "counter", "Webhook deliveries by result.",
           [({"result": "delivered"}, delivered), ({"result": "failed"}, failed)])
    from server.live import hub

    metric("alphastream_live_subscribers", "gauge", "Open push-channel connections.", [({}, hub.subscriber_count())])
    return "\n".join(lines) + "\n"


async def healthz(_request: Request) -> Response:
    try:
        rt = _rt()
    except ApiError as exc:
        return JSONResponse({"status": "starting", "problems": [str(exc)]}, status_code=503)
    status, body = await run_in_threadpool(health, rt)
    return _json(body, status)


async def metrics(_request: Request) -> Response:
    try:
        rt = _rt()
    except ApiError as exc:
        return PlainTextResponse(f"# {exc}\n", status_code=503)
    text = await run_in_threadpool(metrics_text, rt)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


# -- read API -----------------------------------------------------------------------


def _time_param(q: dict[str, str], name: str) -> pd.Timestamp | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            return pd.Timestamp(int(raw), unit="ms", tz="UTC")
        t = pd.Timestamp(raw)
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    except (ValueError, OverflowError):
        raise ApiError(f"{name}: expected ISO-8601 or epoch milliseconds") from None


def _choice(q: dict[str, str], name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    v = q.get(name, default)
    if v is None:
        raise ApiError(f"{name}: required, one of {', '.join(choices)}")
    if v not in choices:
        raise ApiError(f"{name}: must be one of {', '.join(choices)}")
    return v


def _timeframe(q: dict[str, str], allowed: tuple[Timeframe, ...], default: Timeframe | None = None) -> Timeframe:
    raw = q.get("timeframe")
    if raw is None:
        if default is None:
            raise ApiError(f"timeframe: required, one of {', '.join(allowed)}")
        return default
    try:
        return Timeframe.parse(raw, allowed)
    except ValueError as exc:
        raise ApiError(str(exc)) from None


def _int(q: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError(f"{name}: expected an integer") from None
    if not lo <= v <= hi:
        raise ApiError(f"{name}: must be between {lo} and {hi}")
    return v


def _float(q: dict[str, str], name: str, default: float | None) -> float | None:
    raw = q.get(name)
    if raw is None:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise ApiError(f"{name}: expected a number") from None
    if not math.isfinite(v):
        raise ApiError(f"{name}: expected a finite number")
    return v


def _symbol(rt: runtime.Runtime, q: dict[str, str], name: str) -> str:
    sym = (q.get(name) or "").strip().upper()
    if not sym:
        raise ApiError(f"{name}: required (a recorded symbol, e.g. BTCUSDT)")
    recorded = rt.universe.recorded() if rt.universe else tuple(rt.settings.symbols)
    if sym not in recorded:
        raise ApiError(f"{name}: {sym[:30]!r} is not recorded by this server (recorded: {', '.join(recorded)})", 404)
    return sym


def _window(df: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    if start is not None:
        df = df[df.index >= start]
    if end is not None:
        df = df[df.index < end]
    if len(df) > MAX_ROWS:
        raise ApiError(f"{len(df):,} rows: narrow start/end to at most {MAX_ROWS:,} rows")
    return df


def _frame_json(df: pd.DataFrame, index_label: str, meta: dict[str, Any]) -> dict[str, Any]:
    idx = [t.isoformat() for t in df.index] if isinstance(df.index, pd.DatetimeIndex) else list(df.index)
    cols = {c: (df[c].astype(object).where(df[c].notna(), None).tolist()) for c in df.columns}
    return {**meta, "rows": len(df), index_label: idx, "columns": cols}


def bars_response(rt: runtime.Runtime, q: dict[str, str]) -> Response:
    sym = _symbol(rt, q, "symbol")
    tf = _timeframe(q, BAR_TIMEFRAMES)
    fmt = _choice(q, "format", ("json", "csv"), "json")
    bars = rt.bars.bars(sym, tf)
    bars = _window(bars, _time_param(q, "start"), _time_param(q, "end"))
    if fmt == "csv":
        return Response(to_csv(bars), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{export_name("ohlcv", sym, tf, bars.index)}"'})
    return _json(_frame_json(bars, "time", {"symbol": sym, "timeframe": tf}))


def pair_params(q: dict[str, str]) -> analytics.PairParams:
    """:meth:`analytics.PairParams.from_query` of the request (the one codec), a 400 naming the parameter otherwise."""
    try:
        return analytics.PairParams.from_query(q)
    except ValueError as exc:
        raise ApiError(str(exc)) from None


def pair_response(rt: runtime.Runtime, q: dict[str, str]) -> Response:
    y, x = _symbol(rt, q, "y"), _symbol(rt, q, "x")
    if y == x:
        raise ApiError("x: must differ from y")
    tf = _timeframe(q, TIMEFRAMES, Timeframe.M1)
    fmt = _choice(q, "format", ("json", "csv"), "json")
    params = pair_params(q)
    pf = pair_frame(rt.bars, y, x, tf, params)
    if pf.rows < 3:
        raise ApiError(f"only {pf.rows} aligned {tf} bars for {y}/{x} so far", 409)
    table = compute_table(pf, params)
    shown = _window(table, _time_param(q, "start"), _time_param(q, "end"))
    label = f"{y}-{x}"
    if fmt == "csv":
        return Response(to_csv(shown), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{export_name("analytics", label, tf, shown.index)}"'})
    d = analytics.pair_diagnostics(table["price_y"], table["price_x"], params)
    meta = {"y": y, "x": x, "timeframe": tf, "params": {k: v for k, v in params.__dict__.items()},
            "diagnostics": {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in d.as_dict().items()},
            "kalman": table.attrs.get("kalman"), "research": pair_research(table, params, _float(q, "fee_bps", 4.0) or 0.0)}
    return _json(_frame_json(shown, "time", meta))


def pair_research(table: pd.DataFrame, params: analytics.PairParams, fee_bps: float) -> dict[str, Any]:
    """OU fit, Bertram bands and the CUSUM hedge-stability test of the formation window (fixed OLS hedge)."""
    w = table.iloc[-params.formation_bars:]
    y, x = w["price_y"].astype(float), w["price_x"].astype(float)
    if params.log_prices:
        y, x = np.log(y), np.log(x)
    if len(w) < 50:
        return {"note": f"needs at least 50 bars, has {len(w)}"}
    fit = analytics.ols(y, x)
    ou = analytics.fit_ou(y - (fit.beta * x + fit.alpha))
    cost = round_trip_cost(fee_bps, fit.beta, params.log_prices, float(w["price_y"].iloc[-1]), float(w["price_x"].iloc[-1]))
    out: dict[str, Any] = {"bars": len(w), "hedge_beta": fit.beta, "ou": {"theta_per_s": ou.theta, "mu": ou.mu, "sigma": ou.sigma,
                           "half_life_s": ou.half_life_s, "sigma_stationary": ou.sigma_stationary}, "round_trip_cost": cost}
    if ou.mean_reverting and cost > 0:
        b = analytics.bertram_bands(ou, cost)
        out["bertram"] = {"distance": b.distance, "entry_z": b.entry_z, "expected_cycle_s": b.expected_cycle_s,
                          "return_per_s": b.return_per_s}
    c = analytics.cusum_test(y, x)
    out["cusum"] = {"statistic": c.statistic, "broke": c.broke, "first_break": c.first_break, "alpha": c.alpha, "verdict": c.describe()}
    return out


def scan_response(rt: runtime.Runtime, q: dict[str, str]) -> Response:
    tf = _timeframe(q, BAR_TIMEFRAMES, Timeframe.M1)
    formation = _int(q, "formation_bars", 2000, 100, 50_000)
    closes = closes_matrix(rt.bars, rt.bars.symbols(), tf)
    if closes.shape[1] < 2:
        raise ApiError("the scan needs bars of at least two recorded symbols", 409)
    try:
        scan = analytics.scan_universe(closes, formation, q_level=_float(q, "q", 0.05) or 0.05)
    except ValueError as exc:
        raise ApiError(str(exc), 409) from None
    if _choice(q, "format", ("json", "csv"), "json") == "csv":
        return Response(to_csv(scan, "row"), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="alphastream_universe_scan.csv"'})
    return _json({"timeframe": tf, "formation_bars": formation, "pairs": scan.to_dict(orient="records")})


def _endpoint(fn):
    async def handler(request: Request) -> Response:
        q = dict(request.query_params)
        try:
            rt = _rt()
            return await run_in_threadpool(fn, rt, q)
        except ApiError as exc:
            return _json({"error": str(exc)}, exc.status)

    return handler


def api_routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/v1/bars", _endpoint(bars_response), methods=["GET"]),
        Route("/api/v1/pair", _endpoint(pair_response), methods=["GET"]),
        Route("/api/v1/scan", _endpoint(scan_response), methods=["GET"]),
    ]
