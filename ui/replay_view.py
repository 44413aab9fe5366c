"""The "Replay" data source: replay a tick dataset through the live pipeline at 1×–100× or max speed.

Each browser session has its own replay (its own store and SQLite file): one
analyst's replay, speed or pause never changes what another session sees, and
the live feed is never touched.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ingest.replay import ReplaySource, frames_to_ticks
from server.runtime import Runtime, start_replay
from ui.controls import Controls
from ui.history_view import datasets

SPEEDS = {"1×": 1.0, "10×": 10.0, "100×": 100.0, "as fast as possible": None}
MAX_REPLAYS = 4  # concurrent replays per server; starting another stops the oldest


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "default"


def _start(rt: Runtime, name: str, speed: float | None) -> None:
    ds = datasets(rt)
    listing = ds.list()
    symbols = listing[listing["name"] == name].iloc[0]["symbols"]
    frames = {s: ds.ticks(name, s) for s in symbols}
    while len(rt.replays) >= MAX_REPLAYS and session_id() not in rt.replays:
        oldest = next(iter(rt.replays))
        rt.replays.pop(oldest).close()
    ticks, side_known = frames_to_ticks(frames)
    replay = start_replay(rt, session_id(), ticks, speed)
    replay.side_known = side_known
    st.session_state["rp_dataset"] = name


def replay_panel(rt: Runtime, ctl: Controls) -> tuple[Runtime, Controls] | None:
    """Controls for this session's replay; returns the replay runtime and controls for its symbols."""
    ds = datasets(rt)
    listing = ds.list()
    ticks_sets = listing[listing["kind"] == "ticks"] if not listing.empty else listing
    if ticks_sets.empty:
        st.info("Replay needs a tick dataset: upload trades or aggTrades under 'Uploaded history' first.")
        return None
    c1, c2, c3 = st.columns([3, 2, 1])
    name = c1.selectbox("Tick dataset to replay", ticks_sets["name"].tolist(), key="rp_name")
    speed_label = c2.selectbox("Speed", list(SPEEDS), index=1, key="rp_speed")
    c3.button("Start", key="rp_start", type="primary", on_click=_start, args=(rt, name, SPEEDS[speed_label]),
              help="Starts (or restarts) your replay from the first tick.")
    st.caption("This replay is yours alone: other sessions and the live feed are not affected.")
    replay = rt.replays.get(session_id())
    if replay is None or not isinstance(replay.source, ReplaySource):
        st.caption("Press Start to replay the dataset through the live views.")
        return None
    replay.source.set_speed(SPEEDS[speed_label])
    replay_progress(replay)
    symbols = list(replay.source.symbols)
    if len(symbols) < 2:
        st.warning("This dataset has one symbol; a pair needs two.")
        return None
    for key, idx in (("rp_y", 1), ("rp_x", 0)):
        if st.session_state.get(key) not in symbols:
            st.session_state[key] = symbols[idx]
    c4, c5, _ = st.columns([2, 2, 3])
    y = c4.selectbox("Y", symbols, key="rp_y")
    x = c5.selectbox("X", symbols, key="rp_x")
    if x == y:
        st.error("Choose two different symbols.")
        return None
    return replay, replace(ctl, symbols=tuple(symbols), sym_y=y, sym_x=x)


@st.fragment(run_every=0.5)
def replay_progress(replay: Runtime) -> None:
    """Live progress and the Pause/Resume/Stop buttons (a fragment: no full-page rerun)."""
    src = replay.source
    assert isinstance(src, ReplaySource)
    running = src.health.state in ("replaying", "paused")
    b1, b2, _ = st.columns([1, 1, 4])
    if running:
        # one idempotent action per button (run before the fragment draws, so the label is current at once):
        # a click delivered twice, or a double click, pauses twice instead of flipping back
        if src.paused:
            b1.button("Resume", key="rp_resume", on_click=src.resume)
        else:
            b1.button("Pause", key="rp_pause", on_click=src.pause)
        b2.button("Stop", key="rp_stop", on_click=src.stop)
    done = min(1.0, src.delivered / max(1, src.total))
    st.progress(done, text=f"{src.delivered:,} / {src.total:,} ticks replayed · {src.health.message}")
