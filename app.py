"""AlphaStream dashboard: wiring and layout only (``streamlit run app.py``).

analytics/ computes, storage/ serves frames, ingest/ streams; ui/ renders.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from config import ConfigError, load_settings
from ui import alerts_view, history_view, replay_view, views
from ui.controls import sidebar
from ui.runtime import Runtime, build_runtime

st.set_page_config(page_title="AlphaStream", page_icon="📈", layout="wide")


@st.cache_resource(show_spinner="starting storage and the Binance feed…")
def runtime() -> Runtime:
    """One store and one ingestion thread per server process, shared by all sessions."""
    return build_runtime(load_settings())


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()
    rt = runtime()
    ctl = sidebar(settings.symbols, settings.default_window)
    if ctl.source == "Live Binance" and rt.source is not None and tuple(rt.source.symbols) != ctl.symbols and len(ctl.symbols) >= 1:
        rt.source.set_symbols(ctl.symbols)
    if ctl.source == "Uploaded history":
        st.title(f"Uploaded history · {ctl.timeframe} · {ctl.params.method}")
        history_view.upload_panel(rt)
        history_view.download_panel(rt)
        tabs = st.tabs(["Dataset pair", "Backtest", "Minute stats"])
        with tabs[0]:
            table = history_view.dataset_analysis(rt, ctl)
        with tabs[1]:
            views.backtest_tab(table, ctl)
        with tabs[2]:
            views.minute_stats_tab(None, table, ctl)
        return
    live_rt = rt
    if ctl.source == "Replay":
        st.title(f"Replay · {ctl.timeframe} · {ctl.params.method}")
        chosen = replay_view.replay_panel(rt, ctl)
        if chosen is None:
            return
        rt, ctl = chosen
    else:
        st.title(f"{ctl.sym_y} / {ctl.sym_x} · {ctl.timeframe} · {ctl.params.method}")
    tabs = st.tabs(["Live pair", "Multi-asset", "Backtest", "Minute stats", "Alerts", "Exports"])

    # Fragments, each entirely inside its tab (a fragment must only draw into its own
    # container, or its elements pile up and flicker on every refresh): prices/KPIs/
    # z-score every refresh, feed health every second, the other live charts every 2 s,
    # minute stats and the multi-asset scan every 10/15 s (they follow the live data
    # without a click). Everything a refresh re-renders costs the browser main thread,
    # which the tick-to-screen latency of the fast one shares.
    @st.fragment(run_every=max(1.0, 3 * settings.refresh_ms / 1000))
    def feed_status() -> None:
        _shown_on_failure("Feed status", lambda: views.status_strip(rt, ctl))

    @st.fragment(run_every=settings.refresh_ms / 1000)
    def live() -> None:
        def run() -> None:
            alerts_view.toasts(live_rt.alerts)
            st.session_state["_table"] = views.live_pair(rt, ctl)

        _shown_on_failure("Live view", run)

    @st.fragment(run_every=max(2.0, 4 * settings.refresh_ms / 1000))
    def live_charts() -> None:
        _shown_on_failure("Charts", lambda: views.live_charts(rt, ctl, st.session_state.get("_table")))

    @st.fragment(run_every=15.0)
    def multi_asset() -> None:
        _shown_on_failure("Multi-asset", lambda: views.multi_asset(rt, ctl))

    @st.fragment(run_every=10.0)
    def minute_stats() -> None:
        _shown_on_failure("Minute stats", lambda: views.minute_stats_tab(rt, st.session_state.get("_table"), ctl))

    with tabs[0]:
        feed_status()
        live()
        live_charts()
    table = st.session_state.get("_table")  # fresh: live() ran inline just above
    with tabs[0]:
        views.adf_panel(table, ctl)
    with tabs[1]:
        multi_asset()
    with tabs[2]:
        views.backtest_tab(table, ctl)
    with tabs[3]:
        minute_stats()
    with tabs[4]:
        alerts_view.alerts_tab(live_rt.alerts, live_rt.settings.symbols, ctl.sym_y, ctl.sym_x)
    with tabs[5]:
        views.exports(rt, ctl)


def _is_streamlit_control(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("streamlit")


def _shown_on_failure(what: str, render: Callable[[], None]) -> None:
    """Run one refresh of a live view; a failure is shown in place (never a traceback) and retried."""
    try:
        render()
    except Exception as exc:
        if _is_streamlit_control(exc):
            raise
        st.error(f"{what} failed on this refresh: {type(exc).__name__}: {exc}. It retries automatically.")


try:
    main()
except Exception as exc:  # never a bare traceback in the UI
    if _is_streamlit_control(exc):
        raise
    st.error(f"Something went wrong: {type(exc).__name__}: {exc}. The feed and stored data are unaffected; the page retries on the next refresh.")
