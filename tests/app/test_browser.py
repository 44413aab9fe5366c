"""End to end in a real headless Chromium: streamlit run app.py against a loopback Binance."""

from __future__ import annotations

import contextlib
import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import launch, percentiles_ms, shown_ids, stamp_ticks, tick_latencies
from tests.conftest import ROOT
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames
from tests.serving import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ARTIFACTS = ROOT / "test-artifacts"


@contextlib.contextmanager
def _serve(data_dir: Path, db_path: Path, paused: bool = False):
    """``streamlit run app.py`` against a loopback Binance replaying the real recordings at their own pace."""
    frames = {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT", "ETHUSDT")}
    fake = FakeBinance(frames, rate="real")
    if paused:
        fake.paused.set()
    fake.start()
    env = {"ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url, "ALPHASTREAM_DB_PATH": str(db_path)}
    try:
        with serve_app(env, db_path.with_suffix(".log")) as srv:
            yield srv.url, fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def served_app(tmp_path_factory, data_dir):
    with _serve(data_dir, tmp_path_factory.mktemp("db") / "e2e.sqlite") as served:
        yield served


def test_live_dashboard_in_a_real_browser(served_app):
    from playwright.sync_api import expect, sync_playwright

    url, fake = served_app
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 2000}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/?window=20&timeframe=1s")
        page.get_by_text("LIVE", exact=True).first.wait_for(timeout=60_000)
        # z becomes a number once 41 one-second bars exist (the pushed panel shows it, no rerun)
        page.wait_for_function("""() => { const f = document.querySelector("iframe[title='ui.live_push.live_push']");
            const z = f && f.contentDocument && f.contentDocument.querySelector('#tile_z .value');
            return z && /^[+-]\\d/.test(z.textContent); }""", timeout=120_000)
        push = page.frame_locator("iframe[title='ui.live_push.live_push']")
        push.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for(timeout=30_000)
        # the other live charts are persistent Plotly instances inside component iframes
        page.wait_for_function("""() => [...document.querySelectorAll("iframe[title='ui.live_chart.plotly_live']")]
            .filter(f => f.offsetParent !== null).length >= 5""", timeout=60_000)

        # tick-to-screen latency, per tick: for every aggregate id the exchange sent, the time until the
        # page first shows that id or a newer one (tests/browser.py). The newest ids are pushed over /live
        # into the live panel (an iframe of this page, same origin).
        assert stamp_ticks(page) == "push"
        t_start = time.time() + 1
        time.sleep(15)
        shown = shown_ids(page)
        assert len(shown) >= 10, "the status caption did not update with new ticks"
        latencies = tick_latencies(shown, fake, t_start)
        assert len(latencies) >= 1000
        p50, p95, p99 = percentiles_ms(latencies)
        print(f"\ntick-to-screen over {len(latencies)} ticks: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms")
        (ARTIFACTS / "tick_to_screen.txt").write_text(f"p50_ms={p50:.0f}\np95_ms={p95:.0f}\np99_ms={p99:.0f}\nticks={len(latencies)}\n")
        # reported (benchmarks/ keeps the figures), not asserted: a loaded machine must not fail a correct build

        # every live chart keeps redrawing with new data (one shared draw queue in the page, z-score
        # first, no chart starved): compare what each Plotly instance holds across > 2 chart refreshes
        def drawn() -> list[str]:  # the live pair's charts (the multi-asset heatmap refreshes every 15 s)
            drawn = [f.evaluate("""() => { const gd = document.getElementById('chart');
                       if ((gd.data || []).some(t => t.type === 'heatmap')) return null;
                       return JSON.stringify((gd.data || []).map(t => [t.x, t.y])); }""")
                     for f in page.frames if "plotly_live" in f.url]
            return [d for d in drawn if d is not None]
        before = drawn()
        time.sleep(5)
        after = drawn()
        assert len(before) == len(after) >= 6
        stuck = [i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a == b or a == "[]"]
        assert not stuck, f"charts {stuck} of {len(after)} did not redraw: {[after[i][:200] for i in stuck]}"

        page.screenshot(path=str(ARTIFACTS / "dashboard.png"))

        # the other tabs follow the live data although the page was opened before the pair had a z-score
        page.get_by_role("tab", name="Backtest").click()
        page.get_by_role("button", name="Run backtest").click()
        page.get_by_text("Net PnL").first.wait_for(timeout=30_000)
        page.get_by_role("tab", name="Minute stats").click()
        page.get_by_role("button", name="Download minute stats CSV").wait_for(timeout=30_000)

        # change the method and the pair through the real widgets
        page.goto(f"{url}/?window=20&timeframe=1s&method=Kalman&sym_y=BTCUSDT&sym_x=ETHUSDT")
        page.get_by_text("BTCUSDT / ETHUSDT · 1s · Kalman").wait_for(timeout=30_000)
        page.get_by_text("Fit δ and Ve by maximum likelihood").first.wait_for(timeout=30_000)

        # CSV export of the processed analytics
        page.get_by_role("tab", name="Exports").click()
        prepare = page.get_by_role("button", name="Prepare CSV: Processed analytics", exact=False)
        prepare.wait_for(timeout=30_000)
        prepare.click()
        button = page.get_by_role("button", name="Download alphastream_analytics_BTCUSDT-ETHUSDT_1s", exact=False)
        button.wait_for(timeout=30_000)
        time.sleep(2)  # many live refreshes pass between preparing and clicking: the prepared file must survive them
        with page.expect_download(timeout=30_000) as dl:
            button.click()
        download = dl.value
        assert download.suggested_filename.startswith("alphastream_analytics_BTCUSDT-ETHUSDT_1s_")
        rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
        assert rows and set(rows[0]) >= {"timestamp", "price_y", "price_x", "alpha", "beta", "spread", "zscore", "correlation", "signal"}
        assert rows[-1]["timestamp"].endswith("+00:00")
        # a second export replaces the first snapshot (one kept per session)
        page.get_by_role("button", name="Prepare CSV: OHLCV bars BTCUSDT 1s", exact=False).click()
        button = page.get_by_role("button", name="Download alphastream_ohlcv_BTCUSDT_1s_", exact=False)
        button.wait_for(timeout=30_000)
        expect(page.get_by_role("button", name="Download alphastream_analytics_", exact=False)).to_have_count(0, timeout=10_000)
        with page.expect_download(timeout=30_000) as dl:
            button.click()
        bars = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
        assert len(bars) >= 20 and {"open", "high", "low", "close", "volume", "trades"} <= set(bars[0])
        page.get_by_role("button", name="Prepare CSV: Raw ticks BTCUSDT", exact=False).click()
        button = page.get_by_role("button", name="Download alphastream_ticks_BTCUSDT_tick_", exact=False)
        button.wait_for(timeout=30_000)
        with page.expect_download(timeout=30_000) as dl:
            button.click()
        ticks = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
        ids = [int(t["agg_id"]) for t in ticks]
        assert len(ids) >= 1000 and ids == sorted(set(ids)) and ticks[0]["timestamp"].endswith("+00:00")
        assert f"{len(ids):,} rows" in page.inner_text("body")  # the caption counts what the file holds
        assert not errors, errors
        browser.close()


def test_upload_through_the_browser_and_download_analytics(served_app, data_dir, tmp_path):
    """Upload the real 1-minute bars (both legs in one CSV) and download the analytics CSV."""
    from playwright.sync_api import sync_playwright

    url, _ = served_app
    import pandas as pd

    btc = pd.read_csv(data_dir / "BTCUSDT_1m_2025-01-01_2025-02-04.csv").head(3000).assign(symbol="BTCUSDT")
    eth = pd.read_csv(data_dir / "ETHUSDT_1m_2025-01-01_2025-02-04.csv").head(3000).assign(symbol="ETHUSDT")
    upload = tmp_path / "spot_1m_two_legs.csv"
    pd.concat([btc, eth]).to_csv(upload, index=False)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 2000}, accept_downloads=True)
        page.goto(f"{url}/?source=Uploaded%20history&timeframe=1m&window=60")
        page.get_by_text("Upload history").first.wait_for(timeout=60_000)
        page.locator("input[type='file']").first.set_input_files(str(upload))
        page.get_by_role("button", name="Load file").click()
        page.get_by_text("Saved 6,000 rows").wait_for(timeout=60_000)
        assert "Detected: OHLCV bars" in page.inner_text("body")
        button = page.get_by_role("button", name="Processed analytics (prices, β, α, spread, z, correlation, signal)")
        button.wait_for(timeout=60_000)
        with page.expect_download(timeout=30_000) as dl:
            button.click()
        dashboard_csv = Path(dl.value.path()).read_text()
        dashboard_name = dl.value.suggested_filename
        rows = list(csv.DictReader(io.StringIO(dashboard_csv)))
        assert len(rows) == 3000
        assert rows[-1]["timestamp"].startswith("2025-01-03T") and rows[-1]["zscore"] != ""
        browser.close()
    # the headless CLI writes the same file for the same inputs
    db, out = tmp_path / "cli.sqlite", tmp_path / "out"
    subprocess.run([sys.executable, "cli.py", "--db", str(db), "load", str(upload), "--dataset", "spot"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "cli.py", "--db", str(db), "analyze", "--dataset", "spot", "--y", "ETHUSDT", "--x", "BTCUSDT",
         "--timeframe", "1m", "--window", "60", "--out", str(out)],
        cwd=ROOT, check=True, capture_output=True,
    )
    cli_file = out / dashboard_name
    assert cli_file.exists(), sorted(p.name for p in out.iterdir())
    assert cli_file.read_text() == dashboard_csv


def test_alert_history_follows_the_engine_without_a_click(tmp_path, data_dir):
    """A stored rule fires on the live feed: the open Alerts tab lists it (2 s fragment) and a toast shows."""
    from playwright.sync_api import sync_playwright

    from alerts import AlertEngine, AlertRule
    from storage.store import TickStore

    db = tmp_path / "alerts.sqlite"
    store = TickStore(db)
    store.start()
    engine = AlertEngine(store)
    engine.rules.save(AlertRule(name="btc trades", metric="price", comparison=">", threshold=0.0, symbol="BTCUSDT",
                                timeframe="1s", window=3, cooldown_s=0))
    assert store.writer.flush_now()
    engine.stop()
    store.close()
    with _serve(data_dir, db, paused=True) as (url, fake), sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.get_by_role("tab", name="Alerts").click()
        page.get_by_text("btc trades").first.wait_for(timeout=60_000)
        page.get_by_text("No alert has fired yet.").wait_for(timeout=30_000)
        fake.paused.clear()  # the exchange starts trading only now, with the tab open and nobody clicking
        page.get_by_role("button", name="Export history (CSV)").wait_for(timeout=60_000)  # only with a fired alert
        assert "BTCUSDT price > 0 (1s)" in page.inner_text("body")
        with page.expect_download(timeout=30_000) as dl:
            page.get_by_role("button", name="Export history (CSV)").click()
        fired = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
        assert len(fired) == 1 and fired[0]["rule_name"] == "btc trades"  # once per excursion: the price stays > 0
        assert not errors, errors
        browser.close()
