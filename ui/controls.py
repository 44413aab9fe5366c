"""Sidebar controls, validated, persisted across reruns and shareable via URL query parameters."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import streamlit as st

from analytics import HEDGE_METHODS, PairParams

TIMEFRAMES = ("tick", "1s", "1m", "5m")
SOURCES = ("Live Binance", "Uploaded history", "Replay")
KNOWN_PERPETUALS = (
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "AVAXUSDT", "LINKUSDT",
    "LTCUSDT", "DOTUSDT", "TRXUSDT", "BCHUSDT", "NEARUSDT", "ARBUSDT", "OPUSDT", "SUIUSDT", "APTUSDT",
)
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}(USDT|USDC)$")

# widget key -> (query param, parser)
_PERSISTED = {
    "source": str, "symbols": lambda v: tuple(s for s in v.split(",") if s), "sym_y": str, "sym_x": str,
    "timeframe": str, "window": int, "method": str, "kalman_delta": float, "kalman_ve": float,
    "huber_eps": float, "entry": float, "exit": float, "log_prices": lambda v: v == "1",
}


@dataclass(frozen=True)
class Controls:
    source: str
    symbols: tuple[str, ...]
    sym_y: str
    sym_x: str
    timeframe: str
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


def _init_from_query(defaults: dict[str, object]) -> None:
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


def sidebar(default_symbols: tuple[str, ...], default_window: int) -> Controls:
    """Render the sidebar and return the validated choices."""
    _init_from_query({
        "source": SOURCES[0], "symbols": default_symbols, "timeframe": "1s", "window": default_window,
        "method": "OLS", "kalman_delta": 1e-4, "kalman_ve": 1e-6, "huber_eps": 1.345, "entry": 2.0, "exit": 0.0,
        "log_prices": True,
    })
    sb = st.sidebar
    sb.header("AlphaStream")
    sb.selectbox("Data source", SOURCES, key="source", help="Live Binance streams now; uploaded history and replay feed the same views.")
    options = sorted(set(KNOWN_PERPETUALS) | set(st.session_state.get("symbols", ())) | set(default_symbols))
    current = tuple(s for s in st.session_state.get("symbols", default_symbols) if s in options)
    if current != tuple(st.session_state.get("symbols", ())):
        st.session_state["symbols"] = current
    sb.multiselect("Symbols to stream", options, key="symbols")
    extra = sb.text_input("Add symbols (comma-separated)", key="extra_symbols", placeholder="e.g. SOLUSDT, BNBUSDT")
    if extra:
        ok, bad = parse_symbols(extra)
        if bad:
            sb.error(f"Not a USDⓈ-M perpetual symbol: {', '.join(bad)} (expected e.g. SOLUSDT)")
        new = [s for s in ok if s not in st.session_state["symbols"]]
        if new and sb.button(f"Add {', '.join(new)}"):
            st.session_state["symbols"] = tuple(st.session_state["symbols"]) + tuple(new)
            st.rerun()
    symbols = tuple(st.session_state.get("symbols") or default_symbols)
    if len(symbols) < 2:
        sb.warning("Pick at least two symbols to form a pair.")
    pair_opts = list(symbols) if len(symbols) >= 2 else list(default_symbols)
    for key, idx in (("sym_y", 1), ("sym_x", 0)):
        if st.session_state.get(key) not in pair_opts:
            st.session_state[key] = pair_opts[min(idx, len(pair_opts) - 1)]
    c1, c2 = sb.columns(2)
    c1.selectbox("Y (dependent)", pair_opts, key="sym_y")
    c2.selectbox("X (independent)", pair_opts, key="sym_x")
    if st.session_state["sym_y"] == st.session_state["sym_x"]:
        sb.error("Y and X must be different symbols.")
    sb.radio("Timeframe", TIMEFRAMES, key="timeframe", horizontal=True)
    sb.number_input("Rolling window (bars)", min_value=20, max_value=5000, step=10, key="window")
    sb.selectbox("Hedge regression", HEDGE_METHODS, key="method")
    method = st.session_state["method"]
    if method == "Kalman":
        sb.number_input("Kalman δ (state drift)", min_value=1e-9, max_value=0.5, format="%.2e", key="kalman_delta")
        sb.number_input("Kalman Ve (observation variance)", min_value=1e-12, max_value=1e6, format="%.2e", key="kalman_ve",
                        help="In the units of the regressed prices: ~1e-6 for log prices, larger for raw prices.")
    elif method == "Huber":
        sb.number_input("Huber ε", min_value=0.5, max_value=5.0, step=0.05, key="huber_eps")
    overlay = sb.checkbox("Overlay β of all three methods", key="overlay")
    c3, c4 = sb.columns(2)
    c3.number_input("z entry", min_value=0.1, max_value=10.0, step=0.1, key="entry")
    c4.number_input("z exit", min_value=-5.0, max_value=5.0, step=0.1, key="exit")
    sb.toggle("Log prices", key="log_prices", help="Regress log prices (hedge in return space) instead of raw prices.")
    band_k = sb.slider("Spread band k·σ", 0.5, 4.0, 2.0, 0.5, key="band_k")
    entry, exit_ = float(st.session_state["entry"]), float(st.session_state["exit"])
    if not -entry < exit_ < entry:
        sb.error("z exit must lie strictly between -entry and +entry; using 0.")
        exit_ = 0.0
    _write_query()
    params = PairParams(
        window=int(st.session_state["window"]), method=method, log_prices=bool(st.session_state["log_prices"]),
        kalman_delta=float(st.session_state["kalman_delta"]), kalman_obs_var=float(st.session_state["kalman_ve"]),
        huber_epsilon=float(st.session_state["huber_eps"]), entry=entry, exit=exit_,
    )
    return Controls(
        source=st.session_state["source"], symbols=symbols, sym_y=st.session_state["sym_y"], sym_x=st.session_state["sym_x"],
        timeframe=st.session_state["timeframe"], params=params, overlay_methods=bool(overlay), band_k=float(band_k),
    )
