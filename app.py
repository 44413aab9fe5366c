"""AlphaStream: the server and its dashboard page — wiring and layout only.

``streamlit run app.py`` (``make run``) and ``python app.py`` start the same
server: ``app`` (an ``st.App``) serves Streamlit plus the ops endpoints, the
read API and the live push channel, behind the security middleware, and its
lifespan starts the runtime (storage, ingestion, alerts) when the server
starts. Every browser session runs this same file as its page script, which
the presence of a script-run context tells apart. analytics/ computes,
storage/ stores, ingest/ streams, pairs/ turns bars into what a pair shows,
server/ serves, ui/ renders.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from config import ConfigError, Settings, load_settings
from server import runtime

log = logging.getLogger("alphastream.page")

LIVE_TABS = ("Live pair", "Multi-asset", "Backtest", "Minute stats", "Alerts", "Exports", "Research")
DATASET_TABS = ("Dataset pair", "Multi-asset", "Backtest", "Minute stats", "Research", "Exports")

# A compact page: at 1366×768 the pair's tiles and the z-score chart sit above the fold, and alert
# toasts appear bottom-left (over the sidebar) instead of over the charts' titles.
COMPACT_CSS = """<style>
  .block-container { padding-top: 1.6rem; padding-bottom: 2rem; }
  h1 { font-size: 1.55rem !important; padding: 0 0 0.3rem 0 !important; }
  [data-testid="stMetricValue"] { font-size: 1.45rem; }
  [data-testid="stToastContainer"] { left: 1rem; right: auto; }
</style>"""


def main() -> None:
    from server.status import feed_status
    from ui.controls import REPLAY, UPLOADED, sidebar

    try:
        settings = load_settings()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()
    rt = runtime.get_or_start(settings)  # started by the server's lifespan; AppTest/scripts start it here
    st.markdown(COMPACT_CSS, unsafe_allow_html=True)
    states = {s: r.state for s, r in feed_status(rt, rt.universe.recorded()).symbols.items()} if rt.universe else {}
    ctl = sidebar(rt.universe, settings.default_window, states)
    if ctl.source == UPLOADED:
        _uploaded_page(rt, settings, ctl)
        return
    live_rt = rt
    if ctl.source == REPLAY:
        from ui import replay_view

        st.title(f"Replay · {ctl.timeframe} · {ctl.params.method}")
        chosen = replay_view.replay_panel(rt, ctl)
        if chosen is None:
            return
        rt, ctl = chosen
    else:
        st.title(f"{ctl.sym_y} / {ctl.sym_x} · {ctl.timeframe} · {ctl.params.method}")
    _live_page(rt, live_rt, settings, ctl)


def _live_page(rt: runtime.Runtime, live_rt: runtime.Runtime, settings: Settings, ctl) -> None:
    """The live (or replayed) pair: tabs run only when open (``on_change="rerun"``), so a new tab paints the
    live pair without waiting for the scans and backtests of the others."""
    from ui import alerts_view, backtest_view, exports_view, feed_view, multi_view, pair_view, research_view, stats_view
    from ui.live_push import live_panel

    tabs = dict(zip(LIVE_TABS, st.tabs(LIVE_TABS, key="tab", on_change="rerun"), strict=True))
    src = rt.bars
    stale = settings.stale_after_s
    push = settings.push_enabled and not rt.is_replay and not st.session_state.get("_push_down")
    pair_ok = ctl.sym_y != ctl.sym_x

    # Fragments, each entirely inside its tab (a fragment must only draw into its own container, or its elements
    # pile up and flicker on every refresh): feed health every second, the fallback figures at the refresh cadence,
    # the other live charts every 2 s, minute stats and the multi-asset scan every 10/15 s. Everything a refresh
    # re-renders costs the browser main thread, which the pushed panel shares.
    @st.fragment(run_every=max(1.0, 3 * settings.refresh_ms / 1000))
    def feed_status() -> None:
        def run() -> None:
            alerts_view.toasts(live_rt.alerts)
            feed_view.status_strip(rt, ctl)

        _shown_on_failure("Feed status", run)

    @st.fragment(run_every=settings.refresh_ms / 1000)
    def live() -> None:
        _shown_on_failure("Live view", lambda: pair_view.fallback_panel(
            pair_view.session_view(src, ctl, stale), ctl, settings.max_chart_points, rt.seeded))

    @st.fragment(run_every=max(2.0, 4 * settings.refresh_ms / 1000))
    def live_charts() -> None:
        def run() -> None:
            view = pair_view.session_view(src, ctl, stale)
            if push:
                pair_view.seeded_caption(rt.seeded, ctl)
                if view.diag is not None:
                    st.caption(f"Cointegration (formation window): {view.diag.describe()}")
            pair_view.charts_panel(src, view, ctl, settings.max_chart_points)

        _shown_on_failure("Charts", run)

    @st.fragment(run_every=15.0)
    def multi_asset() -> None:
        _shown_on_failure("Multi-asset", lambda: multi_view.multi_asset(src, ctl))

    @st.fragment(run_every=10.0)
    def minute_stats() -> None:
        def run() -> None:
            view = pair_view.session_view(src, ctl, stale)
            stats_view.minute_stats_tab(src, view.table, ctl, view.timeframe)

        _shown_on_failure("Minute stats", run)

    if tabs["Live pair"].open:
        with tabs["Live pair"]:
            feed_status()
            if not pair_ok:
                st.error("Choose two different symbols for Y and X.")
            elif push:
                if live_panel(ctl.sym_y, ctl.sym_x, ctl.timeframe, ctl.params) == "down":
                    st.session_state["_push_down"] = True  # the socket never opened (a proxy without WebSockets?)
                    st.rerun()
            else:
                live()
            if pair_ok:
                live_charts()
                _shown_on_failure("Cointegration", lambda: pair_view.cointegration_panel(pair_view.session_view(src, ctl, stale), ctl))
    if tabs["Multi-asset"].open:
        with tabs["Multi-asset"]:
            multi_asset()
    if tabs["Backtest"].open:
        with tabs["Backtest"]:
            view = pair_view.session_view(src, ctl, stale) if pair_ok else None
            funding = runtime.funding_source(rt) if not rt.is_replay else None
            _shown_on_failure("Backtest", lambda: backtest_view.backtest_tab(view.table if view else None, ctl, funding_source=funding))
    if tabs["Minute stats"].open:
        with tabs["Minute stats"]:
            minute_stats()
    if tabs["Alerts"].open:
        with tabs["Alerts"]:
            recorded = live_rt.universe.recorded() if live_rt.universe else ()
            alerts_view.alerts_tab(live_rt.alerts, recorded, ctl.sym_y, ctl.sym_x)
    if tabs["Exports"].open:
        with tabs["Exports"]:
            view = pair_view.session_view(src, ctl, stale) if pair_ok else None
            _shown_on_failure("Exports", lambda: exports_view.exports(
                src, ctl, view.table if view else None, view.timeframe if view else ctl.timeframe,
                raw_ticks=rt.store.ticks_export, gaps=rt.store.status().gaps))
    if tabs["Research"].open:
        with tabs["Research"]:
            view = pair_view.session_view(src, ctl, stale) if pair_ok else None
            _shown_on_failure("Research", lambda: research_view.research_tab(src, ctl, view))


def _uploaded_page(rt: runtime.Runtime, settings: Settings, ctl) -> None:
    """Uploaded history: every tab of the live page that applies to stored bars, on the chosen dataset."""
    from ui import backtest_view, exports_view, history_view, multi_view, research_view, stats_view

    st.title(f"Uploaded history · {ctl.timeframe} · {ctl.params.method}")
    history_view.upload_panel(rt)
    history_view.download_panel(rt)
    picked = history_view.dataset_picker(rt, ctl)
    if picked is None:
        return
    src, ctl = picked
    tabs = dict(zip(DATASET_TABS, st.tabs(DATASET_TABS, key="tab", on_change="rerun"), strict=True))
    view = None
    if tabs["Dataset pair"].open:
        with tabs["Dataset pair"]:
            view = history_view.dataset_pair(src, ctl, settings.max_chart_points)
    if view is None and not tabs["Multi-asset"].open:
        from ui.pair_view import session_view

        view = session_view(src, ctl, settings.stale_after_s, key="_ds_view_cache")
    if tabs["Multi-asset"].open:
        with tabs["Multi-asset"]:
            _shown_on_failure("Multi-asset", lambda: multi_view.multi_asset(src, ctl))
    if tabs["Backtest"].open:
        with tabs["Backtest"]:
            _shown_on_failure("Backtest", lambda: backtest_view.backtest_tab(view.table if view else None, ctl))
    if tabs["Minute stats"].open:
        with tabs["Minute stats"]:
            _shown_on_failure("Minute stats", lambda: stats_view.minute_stats_tab(src, view.table if view else None, ctl, ctl.timeframe))
    if tabs["Research"].open:
        with tabs["Research"]:
            _shown_on_failure("Research", lambda: research_view.research_tab(src, ctl, view))
    if tabs["Exports"].open:
        with tabs["Exports"]:
            _shown_on_failure("Exports", lambda: exports_view.exports(src, ctl, view.table if view else None, ctl.timeframe,
                                                                      raw_ticks=history_view.raw_ticks(src)))


def _is_streamlit_control(exc: BaseException) -> bool:
    """Streamlit's own flow control that passes through ``except Exception`` (a fragment's handled error)."""
    from streamlit.errors import FragmentHandledException

    return isinstance(exc, FragmentHandledException)


def _shown_on_failure(what: str, render: Callable[[], None]) -> None:
    """Run one refresh of a panel; a failure is logged (with its traceback) and shown in place in words, and retried."""
    try:
        render()
    except Exception as exc:
        if _is_streamlit_control(exc):
            raise
        log.exception("%s failed", what)
        st.error(f"{what} could not be shown on this refresh: {exc}. The feed and stored data are unaffected; "
                 "it retries on the next refresh (the server log has the details).")


def page() -> None:
    """Run the dashboard page once (one script run of one browser session)."""
    st.set_page_config(page_title="AlphaStream", page_icon="📈", layout="wide")
    try:
        main()
    except Exception as exc:  # never a bare traceback in the UI
        if _is_streamlit_control(exc):
            raise
        log.exception("page failed")
        st.error(f"Something went wrong: {exc}. The feed and stored data are unaffected; "
                 "the page retries on the next refresh (the server log has the details).")


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
