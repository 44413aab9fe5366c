"""What a pair shows, computed once: the table, its tiles, its notes, its colours — as data.

:func:`pair_view` is the one computation behind the pushed live panel, the
fallback (rerun) panel, uploaded history, the read API and the alert engine:
aligned bars → (tail-trimmed) pair table → formation-window diagnostic → the
tiles (label, formatted value, colour, help) and the notes (collecting with a
time estimate, no z and why, stale data). A renderer only lays the tiles out —
no formatting or colour rule lives in a page or in JavaScript.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

import analytics
from analytics import PairParams
from pairs.format import fmt_age, fmt_duration, fmt_price
from pairs.frames import PairFrame, compute_table, needed_rows, pair_frame
from pairs.sources import BarSource, LastTrade
from pairs.timeframe import Timeframe

__all__ = ["KPI_HELP", "Note", "PairView", "Tile", "newest_caption", "pair_view", "price_tiles", "progress_note", "z_tone"]

Tone = Literal["", "red", "orange", "green", "gray"]

KPI_HELP = {
    "beta": "Hedge ratio of the current rolling fit (the hedge window, or the Kalman filter): units of X per unit of Y "
            "(raw prices) or value of X per value of Y (log prices).",
    "z": "How many standard deviations the spread is from its recent mean (the trading signal; entry at ±entry).",
    "corr": "Rolling correlation of the legs' returns over the hedge window (on 1 s returns for the tick view).",
    "eg": "Engle-Granger cointegration p-value of a hedge fixed over the formation window (H0: no cointegration; "
          "< 0.05 = cointegrated at 5 %). Not the rolling-hedge spread, which looks stationary by construction.",
    "hl": "Half-life of the formation-window residual: time for half of a deviation to decay.",
    "spread": "Y minus the hedged X (out of sample: the hedge fitted up to the previous bar).",
    "row": "Start of the newest row of the table (UTC).",
    "age": "Time since the newest trade of either leg (on the view's clock: a replay's own).",
}


@dataclass(frozen=True)
class Tile:
    """One KPI tile: ``value`` is already formatted; ``tone`` colours it (z: red/orange/green, gray when stale)."""

    key: str
    label: str
    value: str
    tone: Tone = ""
    help: str = ""


@dataclass(frozen=True)
class Note:
    """A sentence above the tiles: ``info`` (collecting…), ``warning`` (stale, no z), ``error``."""

    level: Literal["info", "warning", "error"]
    text: str


@dataclass(frozen=True)
class PairView:
    """Everything a pair shows at one moment (see the module docstring)."""

    y: str
    x: str
    timeframe: Timeframe  # as the source can show it (a 1m dataset viewed at 1s is shown at 1m)
    params: PairParams
    rows: int  # aligned rows (closed bars for 1m/5m)
    needed: int  # rows the first z needs
    table: pd.DataFrame | None  # None before 3 aligned rows (or when it cannot be computed); z is NaN while collecting
    diag: analytics.PairDiagnostics | None
    tiles: tuple[Tile, ...]
    notes: tuple[Note, ...]
    last: dict[str, LastTrade | None] = field(default_factory=dict)
    newest_ms: int | None = None
    age_s: float | None = None
    stale: bool = False

    def tile(self, key: str) -> Tile:
        return next(t for t in self.tiles if t.key == key)

    @property
    def z(self) -> float:
        if self.table is None or not len(self.table):
            return math.nan
        return float(self.table["zscore"].iloc[-1])

    @property
    def caption(self) -> str:
        """``Newest tick on screen: … UTC (age …) — last ids …``."""
        return newest_caption(self.last, None if self.age_s is None else self.newest_ms, self.age_s)

    def as_message(self) -> dict[str, Any]:
        """The tiles, notes and newest trades as JSON-ready data (the push channel's ``view``)."""
        return {
            "tiles": [{"key": t.key, "label": t.label, "value": t.value, "tone": t.tone, "help": t.help} for t in self.tiles],
            "notes": [{"level": n.level, "text": n.text} for n in self.notes],
            "rows": self.rows, "needed": self.needed, "timeframe": self.timeframe.value,
            "newest_ms": self.newest_ms, "age_s": self.age_s, "stale": self.stale,
            "row_ms": int(self.table.index[-1].value // 1_000_000) if self.table is not None and len(self.table) else None,
        }


def newest_caption(last: dict[str, LastTrade | None], newest_ms: int | None, age_s: float | None) -> str:
    """``Newest tick on screen: 2026-12-04 17:46:50.817000 UTC (age 29 ms) — last ids ETHUSDT #… · BTCUSDT #…``."""
    if newest_ms is None:
        newest_ms = max((t.time_ms for t in last.values() if t is not None), default=None)
    if not newest_ms:
        return "Newest tick on screen: none yet"
    ids = " · ".join(f"{s} #{t.agg_id}" for s, t in last.items() if t is not None and t.agg_id is not None)
    age = f" (age {fmt_age(age_s)})" if age_s is not None else ""
    return f"Newest tick on screen: {pd.Timestamp(newest_ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S.%f} UTC{age}" + (
        f" — last ids {ids}" if ids else "")


def price_tiles(y: str, x: str, last: dict[str, LastTrade | None], age_s: float | None, stale: bool) -> tuple[Tile, ...]:
    """The newest-price and data-age tiles alone (the push channel sends them with every new tick)."""
    old = f" ({fmt_age(age_s)} old)" if stale else ""
    ly, lx = last.get(y), last.get(x)
    return (
        Tile("price_y", f"{y}{old}", fmt_price(ly.price if ly else None), help=f"Newest trade price of {y} (Y)."),
        Tile("price_x", f"{x}{old}", fmt_price(lx.price if lx else None), help=f"Newest trade price of {x} (X)."),
        Tile("age", "data age", fmt_age(age_s), "gray" if stale else "", KPI_HELP["age"]),
    )


def z_tone(z: float, entry: float, stale: bool = False) -> Tone:
    """The z-score's colour: red beyond the entry band, orange beyond half of it, green inside, gray when stale/missing."""
    if stale or not math.isfinite(z):
        return "gray"
    return "red" if abs(z) >= entry else "orange" if abs(z) >= entry / 2 else "green"


def progress_note(rows: int, needed: int, timeframe: Timeframe, params: PairParams) -> str | None:
    """``collecting 1m bars: 40 of 201 … — about 2.7 h more``; None once there are enough rows."""
    if rows >= needed:
        return None
    what = (f"the {params.window}-bar hedge and the {params.zscore_window}-bar z-score" if params.method != "Kalman"
            else "the first Kalman fit" if params.kalman_fitted else "the Kalman initialisation")
    wait = "" if timeframe.is_tick else f" — about {fmt_duration((needed - rows) * timeframe.bar_seconds)} more"
    return f"collecting {timeframe.unit}: {rows:,} of {needed:,} that {what} need before the first z-score{wait}"


def _why_no_z(table: pd.DataFrame, pf: PairFrame, params: PairParams, y: str, x: str) -> str | None:
    """Why the newest row has no z although there are enough rows (None when it has one)."""
    last = table.iloc[-1]
    if math.isfinite(float(last["zscore"])):
        return None
    if bool(last.get("stale", False)):
        quiet = [(leg, float(pf.frame[f"quiet_{k}_s"].iloc[-1])) for leg, k in ((y, "y"), (x, "x")) if f"quiet_{k}_s" in pf.frame]
        who = ", ".join(f"{leg} has not traded for {fmt_age(q)}" for leg, q in quiet if q > params.stale_after_s)
        return f"No z-score: {who or 'a leg is stale'} (limit {fmt_age(params.stale_after_s)}); a stale leg gives no z and no signal."
    if params.method == "Kalman" and not np.isfinite(table["zscore"].to_numpy()).any():
        return ("No z-score yet: the Kalman filter has not been fitted — X has not moved enough in the bars so far "
                "(it needs to change price at least twice); it is retried as bars arrive.")
    if not np.isfinite(table["beta"].to_numpy()[-1:]).all():
        return ("No z-score: X did not move over the hedge window, so there is no hedge ratio to fit; "
                "it comes back once X trades at another price.")
    return "No z-score on the newest row: a price is missing there."


def pair_view(source: BarSource, y: str, x: str, timeframe: Timeframe, params: PairParams, stale_after_s: float,
              cache: dict | None = None, tail: int | None = None) -> PairView:
    """The pair's view on ``source`` (see the module docstring).

    Parameters
    ----------
    stale_after_s
        The feed's staleness limit: newer data is live, older is flagged (live sources only).
    cache
        A dict kept by the caller across calls (a session, a push topic): the table and the
        diagnostic are recomputed only when a bar has closed.
    tail
        Rows of the table the caller needs; OLS/Huber are then computed on just enough
        trailing bars for those rows to equal a full computation (Kalman always uses the
        whole history: its state is path dependent). The position rule is path dependent
        too: a tail table has no ``signal`` column. None: the whole table.
    """
    tf = source.effective(timeframe)
    last = {s: source.last_trade(s) for s in (y, x)}
    newest = max((t.time_ms for t in last.values() if t is not None), default=None)
    age = None
    stale = False
    if source.live and newest is not None:
        age = max(0.0, (source.now_ms() - newest) / 1000)  # clock skew can put a trade a few ms "ahead"
        stale = age > stale_after_s
    need = needed_rows(params)
    pf = pair_frame(source, y, x, tf, params)
    notes: list[Note] = []
    if stale and age is not None and newest is not None:
        notes.append(Note("warning", f"These figures are {fmt_age(age)} old: the last trade of {y}/{x} was at "
                                     f"{pd.Timestamp(newest, unit='ms', tz='UTC'):%H:%M:%S} UTC. Not live."))
    table = None
    diag = None
    if pf.rows == 0:
        waiting = [s for s, t in last.items() if t is None]
        notes.append(Note("info", f"Waiting for the first trade of {', '.join(waiting)}." if waiting
                          else "Waiting for both legs to trade in the same bar."))
    if 0 < pf.rows < need:
        notes.append(Note("info", progress_note(pf.rows, need, tf, params) or ""))
    if pf.rows >= 3:  # prices, volume and the hedge show while z still collects
        work = pf
        if tail is not None and params.method != "Kalman":
            work = pf.tail(tail + 2 * max(params.window, params.zscore_window) + 2)
        try:
            table = compute_table(work, params, cache)
        except ValueError as exc:
            notes.append(Note("error", f"Cannot compute the pair's analytics: {exc}"))
        if table is not None:
            if tail is not None:
                table = table.iloc[-tail:].drop(columns=["signal"])  # a position needs the whole history
            why = _why_no_z(table, work, params, y, x) if pf.rows >= need else None
            if why and not stale:
                notes.append(Note("warning", why))
    if pf.rows >= analytics.MIN_DIAGNOSTIC_BARS:
        diag = _diagnostics(pf, params, cache)
    tiles = _tiles(y, x, tf, params, table, diag, last, age, stale)
    return PairView(y, x, tf, params, pf.rows, need, table, diag, tiles, tuple(notes), last, newest, age, stale)


def _diagnostics(pf: PairFrame, params: PairParams, cache: dict | None) -> analytics.PairDiagnostics:
    """:func:`analytics.pair_diagnostics` on the closed rows' formation window, cached on the last closed row."""
    frame = pf.frame if pf.closed_only or pf.timeframe.is_tick else pf.frame.iloc[:-1]  # 1s: the newest bar still forms
    key = (params.log_prices, params.formation_bars, len(frame), frame.index[-1] if len(frame) else None)
    if cache is not None:
        hit = cache.get("diagnostics")
        if hit is not None and hit[0] == key:
            return hit[1]
    w = frame.iloc[-params.formation_bars:]
    d = analytics.pair_diagnostics(w["close_y"], w["close_x"], params)
    if cache is not None:
        cache["diagnostics"] = (key, d)
    return d


def _row_time(row_ms: int | None, last: dict[str, LastTrade | None]) -> str:
    """The newest row's start: its time alone when it is on the newest trade's UTC day, else with the date."""
    if not row_ms:
        return "—"
    t = pd.Timestamp(row_ms, unit="ms", tz="UTC")
    newest = max((lt.time_ms for lt in last.values() if lt is not None), default=row_ms)
    if t.normalize() == pd.Timestamp(newest, unit="ms", tz="UTC").normalize():
        return f"{t:%H:%M:%S}"
    return f"{t:%Y-%m-%d %H:%M}"


def _tiles(y: str, x: str, tf: Timeframe, params: PairParams, table: pd.DataFrame | None, diag: analytics.PairDiagnostics | None,
           last: dict[str, LastTrade | None], age: float | None, stale: bool) -> tuple[Tile, ...]:
    old = f" ({fmt_age(age)} old)" if stale else ""
    row = table.iloc[-1] if table is not None and len(table) else None

    def val(col: str) -> float:
        return float(row[col]) if row is not None and col in row.index else math.nan

    z = val("zscore")
    if math.isfinite(z):
        z_text = f"{z:+.2f}"
    else:
        z_text = "stale leg" if row is not None and bool(row.get("stale", False)) else "—"
    beta, corr, spread = val("beta"), val("correlation"), val("spread")
    unit = "log points" if params.log_prices else f"{y} quote units"
    hl_s = diag.half_life_seconds if diag is not None else math.nan
    hl_bars = diag.half_life_bars if diag is not None else math.nan
    if diag is None or not math.isfinite(diag.eg_pvalue):
        eg_text = "—"
    else:
        eg_text = f"{diag.eg_pvalue:.3f}"
    if not math.isfinite(hl_bars):
        hl_text = "∞" if hl_bars == math.inf else "—"
    elif math.isfinite(hl_s):
        hl_text = fmt_duration(hl_s)
    else:
        hl_text = f"{hl_bars:,.0f} bars"
    hl_label = f"half-life ({hl_bars:,.0f} bars)" if math.isfinite(hl_bars) else "half-life"
    corr_label = "corr (1 s returns)" if tf.is_tick else "corr (returns)"
    row_ms = int(table.index[-1].value // 1_000_000) if table is not None and len(table) else None
    prices = {t.key: t for t in price_tiles(y, x, last, age, stale)}
    return (
        prices["price_y"],
        prices["price_x"],
        Tile("z", f"z-score{old}", z_text, z_tone(z, params.entry, stale), KPI_HELP["z"]),
        Tile("beta", f"β ({params.method}, rolling)", f"{beta:.4f}" if math.isfinite(beta) else "—", help=KPI_HELP["beta"]),
        Tile("corr", corr_label, f"{corr:.3f}" if math.isfinite(corr) else "—", help=KPI_HELP["corr"]),
        Tile("spread", f"spread ({unit})", f"{spread:.5f}" if math.isfinite(spread) else "—", help=KPI_HELP["spread"]),
        Tile("eg", "EG p (formation)", eg_text, help=KPI_HELP["eg"]),
        Tile("half_life", hl_label, hl_text, help=KPI_HELP["hl"]),
        Tile("row", "newest row (UTC)", _row_time(row_ms, last), help=KPI_HELP["row"]),
        prices["age"],
    )
