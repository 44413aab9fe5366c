"""AlphaStream: the server and its dashboard page — wiring and layout only.

``streamlit run app.py`` (``make run``) and ``python app.py`` start the same
server: ``app`` (an ``st.App``) serves Streamlit plus the ops endpoints, the
read API and the live push channel, behind the security middleware, and its
lifespan starts the runtime (storage, ingestion, alerts) when the server
starts. Every browser session runs this same file as its page script, which
the presence of a script-run context tells apart. analytics/ computes,
storage/ stores, ingest/ streams, server/ serves, ui/ renders.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from config import ConfigError, load_settings
from server import runtime


def main() -> None:
    from ui import alerts_view, history_view, replay_view, research_view, views
    from ui.controls import sidebar
    from ui.live_push import live_panel

    try:
        settings = load_settings()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()
    rt = runtime.get_or_start(settings)  # started by the server's lifespan; AppTest/scripts start it here
    ctl = sidebar(rt.universe, settings.default_window)
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
    tabs = st.tabs(["Live pair", "Multi-asset", "Backtest", "Minute stats", "Alerts", "Exports", "Research"])

    # Fragments, each entirely inside its tab (a fragment must only draw into its own
    # container, or its elements pile up and flicker on every refresh): prices/KPIs/
    # z-score every refresh, feed health every second, the other live charts every 2 s,
    # minute stats and the multi-asset scan every 10/15 s (they follow the live data
    # without a click). Everything a refresh re-renders costs the browser main thread,
    # which the tick-to-screen latency of the fast one shares.
    # Live pair tab. Pushed mode (default, live data): the newest ticks, KPIs and z-score chart come over
    # the /live WebSocket into one persistent component — no rerun per tick; feed health refreshes every
    # second and the other charts every 2 s. Fallback (a replay, ALPHASTREAM_PUSH_ENABLED=false, or a
    # socket that cannot open): fragments refresh those figures at the refresh cadence. A fragment must
    # only draw into its own container, or its elements pile up and flicker on every refresh.
    push = settings.push_enabled and ctl.source == "Live Binance" and not st.session_state.get("_push_down")

    @st.fragment(run_every=max(1.0, 3 * settings.refresh_ms / 1000))
    def feed_status() -> None:
        def run() -> None:
            if push:
                alerts_view.toasts(live_rt.alerts)
            views.status_strip(rt, ctl)

        _shown_on_failure("Feed status", run)

    @st.fragment(run_every=settings.refresh_ms / 1000)
    def live() -> None:
        def run() -> None:
            alerts_view.toasts(live_rt.alerts)
            st.session_state["_table"] = views.live_pair(rt, ctl)

        _shown_on_failure("Live view", run)

    @st.fragment(run_every=max(2.0, 4 * settings.refresh_ms / 1000))
    def live_charts() -> None:
        def run() -> None:
            if push:
                st.session_state["_table"] = views.live_table(rt, ctl)
            views.live_charts(rt, ctl, st.session_state.get("_table"))

        _shown_on_failure("Charts", run)

    @st.fragment(run_every=15.0)
    def multi_asset() -> None:
        _shown_on_failure("Multi-asset", lambda: views.multi_asset(rt, ctl))

    @st.fragment(run_every=10.0)
    def minute_stats() -> None:
        _shown_on_failure("Minute stats", lambda: views.minute_stats_tab(rt, st.session_state.get("_table"), ctl))

    with tabs[0]:
        feed_status()
        if push and ctl.sym_y != ctl.sym_x:
            spread_unit = "log points" if ctl.params.log_prices else f"{ctl.sym_y} quote units"
            state = live_panel(ctl.sym_y, ctl.sym_x, ctl.timeframe, ctl.params, f"spread ({spread_unit})",
                               "corr (1 s returns)" if ctl.timeframe == "tick" else "corr (returns)")
            if state == "down":  # the socket never opened (a proxy without WebSockets?): refresh the figures here
                st.session_state["_push_down"] = True
                st.rerun()
        else:
            live()
        live_charts()
    table = st.session_state.get("_table")  # fresh: live() ran inline just above
    with tabs[0]:
        views.cointegration_panel(table, ctl)
    with tabs[1]:
        multi_asset()
    with tabs[2]:
        views.backtest_tab(table, ctl, funding_source=runtime.funding_source(rt) if ctl.source == "Live Binance" else None)
    with tabs[3]:
        minute_stats()
    with tabs[4]:
        alerts_view.alerts_tab(live_rt.alerts, live_rt.universe.recorded(), ctl.sym_y, ctl.sym_x)
    with tabs[5]:
        views.exports(rt, ctl)
    with tabs[6]:
        _shown_on_failure("Research", lambda: research_view.research_tab(rt, ctl, table))


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


def page() -> None:
    """Run the dashboard page once (one script run of one browser session)."""
    st.set_page_config(page_title="AlphaStream", page_icon="📈", layout="wide")
    try:
        main()
    except Exception as exc:  # never a bare traceback in the UI
        if _is_streamlit_control(exc):
            raise
        st.error(f"Something went wrong: {type(exc).__name__}: {exc}. The feed and stored data are unaffected; "
                 "the page retries on the next refresh.")


if get_script_run_ctx(suppress_warning=True) is None:
    # Imported by the server (`streamlit run app.py` finds `app` below and serves it with uvicorn;
    # `python app.py` runs it directly): one process, one runtime started by the lifespan at
    # server start — recording and alerts run with no browser open.
    from streamlit import config as _st_config

    from server import asgi

    def _bind_address() -> str:
        return str(_st_config.get_option("server.address") or "")

    app = st.App("app.py", lifespan=asgi.make_lifespan(_bind_address), routes=asgi.routes(),
                 middleware=asgi.middleware(_bind_address))
    if __name__ == "__main__":
        app.run()
else:
    page()
