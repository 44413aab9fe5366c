"""Sidebar controls, validated, persisted across reruns and shareable via URL query parameters."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import streamlit as st

from analytics import HEDGE_METHODS, PairParams
from pairs import TIMEFRAMES, Timeframe
from server.runtime import Universe, UniverseError

SOURCES = ("Live Binance", "Uploaded history", "Replay")
LIVE, UPLOADED, REPLAY = SOURCES
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}(USDT|USDC)$")

# widget key -> (query param, parser)
_PERSISTED = {
    "source": str, "symbols": lambda v: tuple(s for s in v.split(",") if s), "sym_y": str, "sym_x": str,
    "timeframe": str, "window": int, "z_window": int, "z_method": str, "method": str, "kalman_auto": lambda v: v == "1",
    "kalman_log_delta": float, "kalman_log_ve": float, "huber_eps": float, "entry": float, "exit": float,
    "log_prices": lambda v: v == "1", "formation_bars": int, "exit_on": str, "beta_min": float, "beta_max": float,
    "stale_after_s": float, "tab": str,
}
EXIT_LABELS = {"held": "on the spread held (hedge frozen at entry)", "signal": "on the current z (moving hedge)"}


@dataclass(frozen=True)
class Controls:
    source: str
    symbols: tuple[str, ...]
    sym_y: str
    sym_x: str
    timeframe: Timeframe
    params: PairParams
    overlay_methods: bool
    band_k: float

    @property
    def pair_label(self) -> str:
        return f"{self.sym_y}-{self.sym_x}"


def parse_symbols(text: str) -> tuple[list[str], list[str]]:
    """Split free text into (valid USDⓈ-M perpetual symbols, rejected entries)."""
    ok, bad = [], []
    for raw in re.split(r"[\s,;]+", text.strip()):
        if not raw:
            continue
        s = raw.upper()
        (ok if SYMBOL_RE.match(s) else bad).append(s if SYMBOL_RE.match(s) else raw)
    return ok, bad


def set_widgets_next_run(**values: object) -> None:
    """Set widget values for the next run (a widget's value cannot change once it is drawn in a run)."""
    st.session_state.setdefault("_pending_widgets", {}).update(values)


def _apply_pending() -> None:
    for key, value in st.session_state.pop("_pending_widgets", {}).items():
        st.session_state[key] = value


def _init_from_query(defaults: dict[str, object]) -> None:
    _apply_pending()
    if st.session_state.get("_controls_init"):
        return
    qp = st.query_params
    for key, parse in _PERSISTED.items():
        if key in qp:
            with contextlib.suppress(ValueError, TypeError):
                st.session_state[key] = parse(qp[key])
        elif key in defaults and key not in st.session_state:
            st.session_state[key] = defaults[key]
    st.session_state["_controls_init"] = True


def _write_query() -> None:
    out = {}
    for key in _PERSISTED:
        v = st.session_state.get(key)
        if v is None:
            continue
        if isinstance(v, bool):
            out[key] = "1" if v else "0"
        elif isinstance(v, tuple | list):
            out[key] = ",".join(v)
        else:
            out[key] = str(v)
    if dict(st.query_params) != out:
        st.query_params.from_dict(out)


def _record(universe: Universe) -> None:
    """Button callback (runs before the widgets of the rerun exist, so it may change their state)."""
    ok, bad = parse_symbols(st.session_state.get("record_text", ""))
    if bad or not ok:
        st.session_state["_record_note"] = ("error", f"Not a USDⓈ-M perpetual symbol: {', '.join(bad) or '(none given)'} (expected e.g. SOLUSDT)")
        return
    try:
        added = universe.add(ok)
    except UniverseError as exc:
        st.session_state["_record_note"] = ("error", str(exc))
        return
    st.session_state["symbols"] = tuple(dict.fromkeys([*st.session_state.get("symbols", ()), *ok]))
    st.session_state["record_text"] = ""
    if not added.symbols:
        st.session_state["_record_note"] = ("ok", f"{', '.join(ok)} already recorded: added to your view.")
        return
    text = f"Now recording {', '.join(added.symbols)} for everyone."
    if added.unverified:
        text += f" Not checked: {added.unverified}; a symbol Binance does not list stays 'waiting'."
    st.session_state["_record_note"] = ("ok", text)


def _ask_stop(symbol: str) -> None:
    st.session_state["_confirm_stop"] = symbol


def _stop_recording(universe: Universe, symbol: str) -> None:
    st.session_state.pop("_confirm_stop", None)
    try:
        universe.remove(symbol)
    except UniverseError as exc:
        st.session_state["_record_note"] = ("error", str(exc))
        return
    st.session_state["symbols"] = tuple(s for s in st.session_state.get("symbols", ()) if s != symbol)
    st.session_state["_record_note"] = ("ok", f"Stopped recording {symbol} for everyone (its stored ticks are kept).")


def universe_panel(sb, universe: Universe, states: dict[str, str]) -> None:
    """The recorded universe with each symbol's state and origin; an added symbol can be stopped (after a confirmation)."""
    recorded = universe.recorded()
    with sb.expander(f"Recorded universe ({len(recorded)})"):
        for sym in recorded:
            origin = universe.origin(sym)
            c1, c2 = st.columns([3, 1])
            c1.markdown(f"`{sym}` {states.get(sym, '—')} · {origin}")
            if origin == "added":
                c2.button("Stop", key=f"stop_{sym}", on_click=_ask_stop, args=(sym,), help=f"Stop recording {sym} for everyone")
        pending = st.session_state.get("_confirm_stop")
        if pending in recorded:
            st.warning(f"Stop recording {pending} for every session? Its stored ticks are kept; alerts and views lose it.")
            y1, y2 = st.columns(2)
            y1.button("Yes, stop", key="stop_yes", type="primary", on_click=_stop_recording, args=(universe, pending))
            y2.button("Cancel", key="stop_no", on_click=_ask_stop, args=(None,))


def _swap_legs() -> None:
    st.session_state["sym_y"], st.session_state["sym_x"] = st.session_state.get("sym_x"), st.session_state.get("sym_y")


def _symbol_controls(sb, universe: Universe | None, recorded: tuple[str, ...], states: dict[str, str]) -> tuple[str, ...]:
    """Symbols in view, "record another symbol", Y/X and the swap button (live data only)."""
    wanted = tuple(st.session_state.get("symbols") or recorded)
    not_recorded = [s for s in wanted if s not in recorded]
    view = tuple(s for s in wanted if s in recorded) or recorded
    if view != tuple(st.session_state.get("symbols") or ()):
        st.session_state["symbols"] = view
    sb.multiselect("Symbols in view", recorded, key="symbols",
                   help="Which recorded symbols this tab shows. The server records them for everyone; your choice changes only your view.")
    if not_recorded:
        st.session_state["_not_recorded"] = not_recorded
    not_recorded = [s for s in st.session_state.get("_not_recorded", ()) if s not in recorded]
    if not_recorded:
        sb.info(f"Not recorded by this server: {', '.join(not_recorded)} — add it under 'Record another symbol'.")
    if universe is not None:
        with sb.expander("Record another symbol"):
            st.text_input("Symbols (comma-separated)", key="record_text", placeholder="e.g. SOLUSDT, BNBUSDT")
            st.button("Record for everyone", key="record_go", on_click=_record, args=(universe,),
                      help="Checks the symbols with Binance (exchangeInfo), then adds them to the feed (every session, SQLite, alerts).")
            note = st.session_state.get("_record_note")
            if note:
                (st.error if note[0] == "error" else st.success)(note[1])
        universe_panel(sb, universe, states)
    symbols = tuple(st.session_state.get("symbols") or recorded)
    if len(symbols) < 2:
        sb.warning("Pick at least two symbols to form a pair.")
    pair_opts = list(symbols) if len(symbols) >= 2 else list(recorded) or ["BTCUSDT", "ETHUSDT"]
    for key, idx in (("sym_y", 1), ("sym_x", 0)):
        if st.session_state.get(key) not in pair_opts:
            st.session_state[key] = pair_opts[min(idx, len(pair_opts) - 1)]
    c1, c2 = sb.columns(2)
    c1.selectbox("Y (dependent)", pair_opts, key="sym_y")
    c2.selectbox("X (independent)", pair_opts, key="sym_x")
    sb.button("⇅ Swap Y and X", key="swap_legs", on_click=_swap_legs, width="stretch")
    if st.session_state["sym_y"] == st.session_state["sym_x"]:
        sb.error("Y and X must be different symbols.")
    st.session_state["_keep_symbols"] = tuple(st.session_state.get("symbols") or ())
    st.session_state["_keep_sym_y"] = st.session_state["sym_y"]
    st.session_state["_keep_sym_x"] = st.session_state["sym_x"]
    return symbols


def sidebar(universe: Universe | None, default_window: int, states: dict[str, str] | None = None) -> Controls:
    """Render the sidebar and return the validated choices (a session's view: it never reconfigures the feed).

    ``states``: each recorded symbol's feed state (LIVE, waiting, STALE …) for the universe panel."""
    _init_from_query({
        "source": SOURCES[0], "timeframe": "1s", "window": default_window,
        "z_window": 0, "z_method": "rolling", "method": "OLS", "kalman_auto": True, "kalman_log_delta": -8.0,
        "kalman_log_ve": -7.0, "huber_eps": 1.345, "entry": 2.0, "exit": 0.0, "log_prices": True, "formation_bars": 2000,
        "exit_on": "held", "beta_min": 0.0, "beta_max": 1e6, "stale_after_s": 60.0,
    })
    sb = st.sidebar
    sb.header("AlphaStream")
    sb.selectbox("Data source", SOURCES, key="source", help="Live Binance streams now; uploaded history and replay feed the same views.")
    recorded = tuple(universe.recorded()) if universe is not None else ()
    live = st.session_state["source"] == SOURCES[0]
    for key in ("symbols", "sym_y", "sym_x"):  # widgets not drawn lose their state: restore the live view's
        if key not in st.session_state and f"_keep_{key}" in st.session_state:
            st.session_state[key] = st.session_state[f"_keep_{key}"]
    if live:
        symbols = _symbol_controls(sb, universe, recorded, states or {})
    else:  # replay and uploaded history choose their own pair from their data
        symbols = tuple(st.session_state.get("_keep_symbols") or recorded)
        st.session_state.setdefault("sym_y", recorded[1] if len(recorded) > 1 else "ETHUSDT")
        st.session_state.setdefault("sym_x", recorded[0] if recorded else "BTCUSDT")
    if st.session_state.get("timeframe") not in TIMEFRAMES:
        st.session_state["timeframe"] = Timeframe.S1.value
    sb.radio("Timeframe", [tf.value for tf in TIMEFRAMES], key="timeframe", horizontal=True,
             help="tick: every trade (as-of join of the legs); 1s bars; 1m and 5m: closed bars only.")
    sb.number_input("Hedge window (bars)", min_value=20, max_value=5000, step=10, key="window",
                    help="Bars of the rolling OLS/Huber hedge and of the rolling correlation.")
    c5, c6 = sb.columns(2)
    c5.number_input("z-score window (bars)", min_value=0, max_value=5000, step=10, key="z_window",
                    help="Bars of the spread's mean and standard deviation that standardise z; 0 = the hedge window.")
    c6.selectbox("z weighting", ("rolling", "ewma"), key="z_method", help="Equal weights, or exponential with span = the z window.")
    sb.selectbox("Hedge regression", HEDGE_METHODS, key="method")
    method = st.session_state["method"]
    if method == "Kalman":
        sb.toggle("Fit δ and Ve by maximum likelihood", key="kalman_auto",
                  help="Refitted every formation/8 bars on the trailing formation window (causal). Off: fixed values below.")
        if not st.session_state["kalman_auto"]:
            k1, k2 = sb.columns(2)
            k1.number_input("log10 δ (state drift)", min_value=-14.0, max_value=-0.5, step=0.5, format="%.1f", key="kalman_log_delta")
            k2.number_input("log10 Ve (obs. variance)", min_value=-14.0, max_value=6.0, step=0.5, format="%.1f", key="kalman_log_ve",
                            help="In the units of the regressed prices: about -7 for 1m log prices.")
    elif method == "Huber":
        sb.number_input("Huber ε", min_value=0.5, max_value=5.0, step=0.05, key="huber_eps")
    overlay = sb.checkbox("Overlay β of all three methods", key="overlay")
    c3, c4 = sb.columns(2)
    c3.number_input("z entry", min_value=0.1, max_value=10.0, step=0.1, key="entry")
    c4.number_input("z exit", min_value=-5.0, max_value=5.0, step=0.1, key="exit")
    sb.toggle("Log prices", key="log_prices", help="Regress log prices (hedge in return space) instead of raw prices.")
    band_k = sb.slider("Spread band k·σ", 0.5, 4.0, 2.0, 0.5, key="band_k")
    with sb.expander("Formation window, exits, guards"):
        st.number_input("Formation window (bars)", min_value=100, max_value=50_000, step=100, key="formation_bars",
                        help="Bars of the fixed hedge that the cointegration test (EG p) judges, and of each Kalman fit.")
        st.selectbox("Exits and stops judged", tuple(EXIT_LABELS), format_func=EXIT_LABELS.get, key="exit_on")
        g1, g2 = st.columns(2)
        g1.number_input("β above", min_value=-100.0, max_value=100.0, step=0.1, key="beta_min", help="No entry unless β is above this.")
        g2.number_input("β below", min_value=-100.0, max_value=1e6, step=1.0, key="beta_max", help="No entry unless β is below this.")
        st.number_input("A leg is stale after (s) without a trade", min_value=1.0, max_value=86_400.0, step=5.0, key="stale_after_s",
                        help="Stale bars get no z-score and no signal.")
    entry, exit_ = float(st.session_state["entry"]), float(st.session_state["exit"])
    if not -entry < exit_ < entry:
        sb.error("z exit must lie strictly between -entry and +entry; using 0.")
        exit_ = 0.0
    beta_lo, beta_hi = float(st.session_state["beta_min"]), float(st.session_state["beta_max"])
    if not beta_lo < beta_hi:
        sb.error("β bounds: the lower bound must be below the upper one; using β > 0.")
        beta_lo, beta_hi = 0.0, 1e6
    _write_query()
    auto = method != "Kalman" or bool(st.session_state["kalman_auto"])
    params = PairParams(
        window=int(st.session_state["window"]), z_window=max(3, int(st.session_state["z_window"])) if st.session_state["z_window"] else None,
        z_method=st.session_state["z_method"],
        method=method, log_prices=bool(st.session_state["log_prices"]),
        kalman_delta=None if auto else 10.0 ** float(st.session_state["kalman_log_delta"]),
        kalman_obs_var=None if auto else 10.0 ** float(st.session_state["kalman_log_ve"]),
        huber_epsilon=float(st.session_state["huber_eps"]), entry=entry, exit=exit_,
        formation_bars=int(st.session_state["formation_bars"]), exit_on=st.session_state["exit_on"],
        beta_min=beta_lo, beta_max=beta_hi, stale_after_s=float(st.session_state["stale_after_s"]),
    )
    return Controls(
        source=st.session_state["source"], symbols=symbols, sym_y=st.session_state["sym_y"], sym_x=st.session_state["sym_x"],
        timeframe=Timeframe.parse(st.session_state["timeframe"]), params=params, overlay_methods=bool(overlay), band_k=float(band_k),
    )
