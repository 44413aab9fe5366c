"""The "Replay" data source: replay a tick dataset through the live pipeline at 1×–100× or max speed."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from ingest.replay import ReplaySource, frames_to_ticks
from ui.controls import Controls
from ui.history_view import datasets
from ui.runtime import Runtime, start_replay

SPEEDS = {"1×": 1.0, "10×": 10.0, "100×": 100.0, "as fast as possible": None}


def replay_panel(rt: Runtime, ctl: Controls) -> tuple[Runtime, Controls] | None:
    """Controls for the replay; returns the replay runtime and controls for its symbols."""
    ds = datasets(rt)
    listing = ds.list()
    ticks_sets = listing[listing["kind"] == "ticks"] if not listing.empty else listing
    c1, c2, c3 = st.columns([3, 2, 3])
    if ticks_sets.empty:
        st.info("Replay needs a tick dataset: upload trades or aggTrades under 'Uploaded history' first.")
        return None
    name = c1.selectbox("Tick dataset to replay", ticks_sets["name"].tolist(), key="rp_name")
    speed_label = c2.selectbox("Speed", list(SPEEDS), index=1, key="rp_speed")
    b1, b2, b3 = c3.columns(3)
    replay = rt.replay
    src = replay.source if replay is not None else None
    if b1.button("Start", key="rp_start"):
        symbols = ticks_sets[ticks_sets["name"] == name].iloc[0]["symbols"]
        frames = {s: ds.ticks(name, s) for s in symbols}
        replay = start_replay(rt, frames_to_ticks(frames), SPEEDS[speed_label])
        st.session_state["rp_dataset"] = name
    if isinstance(src, ReplaySource):
        if b2.button("Pause" if src.health.message != "paused" else "Resume", key="rp_pause"):
            if src.health.message == "paused":
                src.resume()
            else:
                src.pause()
        if b3.button("Stop", key="rp_stop"):
            src.stop()
        src.set_speed(SPEEDS[speed_label])
    if replay is None or not isinstance(replay.source, ReplaySource):
        st.caption("Press Start to replay the dataset through the live views.")
        return None
    src = replay.source
    st.progress(min(1.0, src.delivered / max(1, src.total)), text=f"{src.delivered:,} / {src.total:,} ticks replayed · {src.health.message}")
    symbols = src.symbols
    if len(symbols) < 2:
        st.warning("This dataset has one symbol; a pair needs two.")
        return None
    y = ctl.sym_y if ctl.sym_y in symbols else symbols[1]
    x = ctl.sym_x if ctl.sym_x in symbols and ctl.sym_x != y else next(s for s in symbols if s != y)
    return replay, replace(ctl, symbols=tuple(symbols), sym_y=y, sym_x=x)
