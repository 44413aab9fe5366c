"""The feed's health in one compact strip (badge, per-symbol state), with the full table one click away."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from pairs import fmt_age
from server.runtime import Runtime
from server.status import FeedStatus, feed_status
from ui.controls import Controls

__all__ = ["status_strip"]


def _latency_cell(d: dict) -> str:
    p50, p99 = d.get("latency_p50_ms"), d.get("latency_p99_ms")
    if p50 is None:
        return "—"
    if p50 > 3_600_000:  # receive time - exchange time over an hour: a recording or a wrong clock
        return "n/a (clock mismatch: replayed or recorded data?)"
    return f"{p50:,.0f} / {p99:,.0f}"


def status_strip(rt: Runtime, ctl: Controls) -> FeedStatus:
    """Feed state per stream, rates, ages, latency, gaps, persistence — never old data shown as live."""
    fs = feed_status(rt, ctl.symbols)
    st_store = rt.store.status()
    if fs.severity in ("warning", "error"):
        (st.error if fs.severity == "error" else st.warning)(fs.message)
    elif fs.severity == "info":
        st.info(fs.message)
    w = st_store.writer
    if w.state not in ("ok", "starting"):
        last = f"last successful write {fmt_age(time.time() - w.last_commit_at)} ago" if w.last_commit_at else "nothing written since start"
        st.error(f"Storage: {w.message} — {w.pending_rows:,} ticks waiting in memory; {last}.")
    src = rt.source
    rows = []
    for sym in ctl.symbols:
        s_ = fs.symbols[sym]
        b = st_store.symbols.get(sym, {})
        sh = src.health.symbols.get(sym) if src is not None else None
        d = sh.as_dict() if sh is not None else {}
        rows.append({
            "stream": sym,
            "state": s_.state,
            "frames/s": f"{s_.frames_per_s:,.1f}",
            "last trade (UTC)": f"{pd.Timestamp(s_.last_time_ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M:%S}" if s_.last_time_ms else "no trade yet",
            "age": fmt_age(s_.age_s),
            "last agg id": f"{s_.last_agg_id:,}".replace(",", " ") if s_.last_agg_id is not None else "—",
            "latency p50 / p99 (ms)": _latency_cell(d),
            "gaps filled / unfillable": f"{d.get('gaps_filled', 0)} / {d.get('gaps_unfillable', 0)}",
            "ticks in memory": f"{b.get('ticks', 0):,}",
        })
    color = BADGE.get(fs.state.split(" ")[0], "gray")
    attempts = (f"Connection attempts **{fs.attempts}**" if fs.attempts else f"Reconnects **{fs.reconnects}**")
    rows_label = "Rows in PostgreSQL" if rt.store.backend == "postgresql" else "Rows in SQLite"
    malformed = src.health.malformed if src else 0
    st.markdown(f"Feed :{color}-badge[{fs.state}] · {attempts} · {rows_label} **{st_store.rows_stored:,}** · "
                f"Malformed frames **{malformed:,}**", help=fs.message)
    summary = " · ".join(f"{r['stream']} {r['state']} ({r['frames/s']} frames/s, age {r['age']})" for r in rows)
    with st.expander(f"Streams: {summary}"):
        st.table(pd.DataFrame(rows).set_index("stream"))  # static HTML: far cheaper to re-render every second than a data grid
        if malformed and src is not None and src.health.last_malformed:
            st.caption(f"Last malformed frame: {src.health.last_malformed}")
    return fs


BADGE = {"LIVE": "green", "REPLAY": "blue", "STALE": "red", "BLOCKED": "red", "offline": "red", "reconnecting": "orange",
         "connecting": "orange", "waiting": "gray", "stored": "gray"}
