"""Dashboard control logic with Streamlit's AppTest (offline: Binance unreachable)."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


@pytest.fixture
def app(tmp_path, monkeypatch):
    import streamlit as st

    from server import runtime

    runtime.stop()  # each test gets its own process runtime (AppTest pages start it on first use)
    st.cache_resource.clear()
    monkeypatch.setenv("ALPHASTREAM_WS_URL", "ws://127.0.0.1:9/market")  # nothing listens: offline
    monkeypatch.setenv("ALPHASTREAM_REST_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ALPHASTREAM_DB_PATH", str(tmp_path / "app.sqlite"))
    # AppTest has no browser to run the pushed panel's socket: test the fallback (rerun) rendering here;
    # the push path is tested in Chromium (tests/app/test_browser.py)
    monkeypatch.setenv("ALPHASTREAM_PUSH_ENABLED", "false")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    yield at
    runtime.stop()
    st.cache_resource.clear()


def _text(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.info] + [e.value for e in at.warning] + [e.value for e in at.caption]
    return "\n".join(str(p) for p in parts)


def test_empty_state_renders_without_data_or_network(app):
    at = app.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    text = _text(at)
    assert "Newest tick on screen: none yet" in text
    assert at.title[0].value.startswith("ETHUSDT / BTCUSDT")


def test_controls_change_what_they_should(app):
    at = app.run()
    at.selectbox(key="method").set_value("Kalman").run()
    assert at.title[0].value.endswith("Kalman")
    assert at.toggle(key="kalman_auto").value is True  # maximum likelihood by default
    at.toggle(key="kalman_auto").set_value(False).run()
    assert at.number_input(key="kalman_log_ve")  # fixed Kalman parameters, on a log scale
    assert at.number_input(key="kalman_log_delta").step == 0.5
    at.radio(key="timeframe").set_value("1m").run()
    assert "· 1m ·" in at.title[0].value
    at.selectbox(key="sym_y").set_value("BTCUSDT").run()
    at.selectbox(key="sym_x").set_value("ETHUSDT").run()
    assert at.title[0].value.startswith("BTCUSDT / ETHUSDT")
    assert at.query_params["method"] == ["Kalman"] or at.query_params["method"] == "Kalman"
    at.number_input(key="entry").set_value(1.0).run()
    at.number_input(key="exit").set_value(1.5).run()
    assert any("between -entry and +entry" in e.value for e in at.sidebar.error)
    assert not at.exception


def test_recording_a_symbol_is_explicit_additive_and_validated(app):
    from server import runtime

    at = app.run()
    at.text_input(key="record_text").set_value("SOLUSDT, bad-sym!, BTC")
    at.button(key="record_go").click().run()
    errors = [e.value for e in at.error]
    assert any("bad-sym!" in e and "BTC" in e for e in errors), errors
    assert runtime.current().universe.recorded() == ("BTCUSDT", "ETHUSDT")  # nothing recorded on bad input
    at.text_input(key="record_text").set_value("solusdt")
    at.button(key="record_go").click().run()  # the button's callback changes the view before widgets exist: no error
    assert not at.exception
    assert runtime.current().universe.recorded() == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert "SOLUSDT" in at.multiselect(key="symbols").value
    assert any("Now recording SOLUSDT for everyone" in m.value for m in at.success)
    # a view choice never reconfigures the feed: dropping ETHUSDT from this view keeps it recorded
    at.multiselect(key="symbols").set_value(["BTCUSDT", "SOLUSDT"]).run()
    assert not at.exception
    assert "ETHUSDT" in runtime.current().source.symbols and "SOLUSDT" in runtime.current().source.symbols


def test_query_params_restore_choices(app):
    app.query_params["method"] = "Huber"
    app.query_params["timeframe"] = "5m"
    app.query_params["window"] = "250"
    at = app.run()
    assert at.title[0].value.endswith("· 5m · Huber")
    assert at.number_input(key="window").value == 250


def _by_label(widgets, label):
    return next(w for w in widgets if w.label == label)


def _plain(markdown: str) -> str:
    """What a reader sees: Markdown backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_alert_rules_are_created_checked_for_duplicates_edited_and_shown_as_text(app):
    app.query_params["tab"] = "Alerts"  # tabs run only when open
    at = app.run()
    at.button(key="ar_save").click().run()
    assert not at.exception
    assert any("Saved #1: z-score extreme" in _plain(s.value) for s in at.success), [e.value for e in at.error]
    assert any("#1" in m.value and "z-score extreme" in _plain(m.value) for m in at.markdown)
    # the same rule again: refused, named after the one it duplicates
    at.button(key="ar_save").click().run()
    assert any("exists already" in e.value for e in at.error), [e.value for e in at.error]
    # an impossible rule: a correlation above 1.5 can never happen
    at.text_input(key="ar_name").set_value("corr")
    at.selectbox(key="ar_metric").set_value("correlation")
    at.selectbox(key="ar_comparison").set_value(">")
    at.number_input(key="ar_threshold").set_value(1.5)
    at.button(key="ar_save").click().run()
    assert any("could never fire" in e.value for e in at.error)
    assert not any("#2" in m.value for m in at.markdown)
    # edit #1: its values come back into the editor, Update keeps the id
    at.button(key="rule_edit_1").click().run()
    assert at.text_input(key="ar_name").value == "z-score extreme" and at.number_input(key="ar_threshold").value == 2.0
    at.number_input(key="ar_threshold").set_value(2.5)
    at.button(key="ar_save").click().run()
    assert any("Updated #1" in s.value for s in at.success), [e.value for e in at.error]
    assert any("|value| > 2.5" in _plain(m.value) for m in at.markdown) and not any("#2" in m.value for m in at.markdown)
    # a name written as Markdown is shown as text: no image, no link, no colour directive survives
    at.text_input(key="ar_name").set_value("![x](https://evil.example/p.png) :red[boom]")
    at.button(key="ar_save").click().run()
    listed = next(m.value for m in at.markdown if "#2" in m.value)
    assert "\\!\\[x\\]\\(https\\:" in listed and "\\:red\\[boom\\]" in listed, listed
    assert "![x](https://evil.example/p.png) :red[boom]" in _plain(listed)


def test_replay_source_streams_a_tick_dataset_into_the_live_views(app, tmp_path, data_dir):
    import time

    from ingest.files import load_bytes
    from storage.datasets import DatasetStore

    name = "usdm_BTCUSDT_ETHUSDT_recording_20251216.csv"
    loaded = load_bytes(name, (data_dir / name).read_bytes())
    DatasetStore(tmp_path / "app.sqlite").save("recording", loaded.kind, loaded.frames)
    app.query_params["source"] = "Replay"
    at = app.run()
    assert at.selectbox(key="rp_name").value == "recording"
    at.selectbox(key="rp_speed").set_value("as fast as possible").run()
    at.button(key="rp_start").click().run()
    assert not at.exception
    time.sleep(3)
    at.run()
    assert at.title[0].value.startswith("Replay")
    text = "\n".join(c.value for c in at.caption)
    assert "Newest tick on screen: 2025-12-16" in text, text
    assert not at.exception


def test_history_download_from_the_dashboard(app, vision, monkeypatch, tmp_path):
    base, *_ = vision
    monkeypatch.setenv("ALPHASTREAM_HISTORY_URL", base)
    monkeypatch.setenv("ALPHASTREAM_HISTORY_CACHE_DIR", str(tmp_path / "cache"))
    app.query_params["source"] = "Uploaded history"
    at = app.run()
    import datetime as dt

    at.text_input(key="dl_symbols").set_value("BTCUSDT")
    at.date_input(key="dl_start").set_value(dt.date(2026, 5, 8))
    at.date_input(key="dl_end").set_value(dt.date(2026, 5, 8))
    at.text_input(key="dl_name").set_value("may8")
    at.button(key="dl_go").click().run()
    assert not at.exception
    assert any("Saved 105,280 verified trades as 'may8'" in s.value for s in at.success), [e.value for e in at.error]
    at.date_input(key="dl_end").set_value(dt.date(2026, 5, 9)).run()
    assert at.button(key="dl_go").disabled  # 'may8' exists: nothing is replaced until the user says so
    assert any("exists already" in w.value for w in at.warning)
    at.checkbox(key="dl_replace").check().run()
    at.button(key="dl_go").click().run()
    assert any("Download failed" in e.value and "not found" in e.value for e in at.error)


def test_what_a_backtest_click_says_stays_until_the_next_click(app):
    app.query_params["tab"] = "Backtest"  # tabs run only when open
    at = app.run()
    at.button(key="bt_run").click().run()  # offline: no z-score yet
    says = "Not enough data yet: the backtest needs the pair's z-score"
    assert any(says in e.value for e in at.info)
    at.radio(key="timeframe").set_value("1m").run()  # another rerun, no click: the message stays
    assert any(says in e.value for e in at.info)
    assert "_backtest_requested" not in at.session_state  # done once, not again on every rerun
    assert not at.exception
