"""Dashboard control logic with Streamlit's AppTest (offline: Binance unreachable)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


@pytest.fixture
def app(tmp_path, monkeypatch):
    import streamlit as st

    st.cache_resource.clear()
    monkeypatch.setenv("ALPHASTREAM_WS_URL", "ws://127.0.0.1:9/market")  # nothing listens: offline
    monkeypatch.setenv("ALPHASTREAM_REST_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ALPHASTREAM_DB_PATH", str(tmp_path / "app.sqlite"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    yield at
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
    assert at.number_input(key="kalman_ve")  # Kalman parameters appear
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


def test_bad_symbol_text_gets_a_message(app):
    at = app.run()
    at.text_input(key="extra_symbols").set_value("SOLUSDT, bad-sym!, BTC").run()
    errors = [e.value for e in at.sidebar.error]
    assert any("bad-sym!" in e and "BTC" in e for e in errors), errors
    assert any("Add SOLUSDT" in b.label for b in at.sidebar.button)
    assert not at.exception


def test_query_params_restore_choices(app):
    app.query_params["method"] = "Huber"
    app.query_params["timeframe"] = "5m"
    app.query_params["window"] = "250"
    at = app.run()
    assert at.title[0].value.endswith("· 5m · Huber")
    assert at.number_input(key="window").value == 250


def _by_label(widgets, label):
    return next(w for w in widgets if w.label == label)


def test_alert_rule_created_listed_and_rejected_from_the_ui(app):
    at = app.run()
    _by_label(at.button, "Save rule").click().run()
    assert not at.exception
    assert any("Saved:" in s.value for s in at.success), [e.value for e in at.error]
    assert any("#1" in m.value and "z-score extreme" in m.value for m in at.markdown)
    # an impossible rule: a correlation above 1.5 can never happen
    _by_label(at.selectbox, "Metric").set_value("correlation")
    _by_label(at.selectbox, "Comparison").set_value(">")
    _by_label(at.number_input, "Threshold").set_value(1.5)
    _by_label(at.button, "Save rule").click().run()
    assert any("could never fire" in e.value for e in at.error)
    assert not any("#2" in m.value for m in at.markdown)


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
    at.button(key="dl_go").click().run()
    assert any("Download failed" in e.value and "not found" in e.value for e in at.error)
