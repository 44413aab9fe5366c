"""Real sizes, real pace: what users bring, through the browser and the read API.

* a month of real 1-minute bars per leg (the shared 50,000-bar BTC/ETH files, and the 16-perpetual
  set), uploaded through the page, every tab of uploaded history walked;
* live on the loopback exchange beyond every cap of the code (chart points, the push snapshot,
  hedge windows) for each hedge method at tick and 1 s, the real trades served faster than real time;
* every method × timeframe through the read API.

After each step: no exception element, no page error, and every chart on the tab has drawn data.
Screenshots go to ``test-artifacts/`` (the closing notes use them).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app.test_browser import ARTIFACTS
from tests.app.test_journey import Page
from tests.browser import launch
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames
from tests.serving import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

MONTH = ("BTCUSDT_1m_2025-01-01_2025-02-04.csv", "ETHUSDT_1m_2025-01-01_2025-02-04.csv")
CHART_CAP = 150  # far below the bars served, so every chart and the push snapshot run past their caps


def _plots(p: Page) -> list[int]:
    """Points in every visible Plotly chart of the page (st.plotly_chart and the live components alike)."""
    own = p.page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].filter(e => e.offsetParent !== null)
        .map(e => (e._fullData || []).reduce((a, t) => a + (t._length || 0), 0))""")  # decoded (st.plotly_chart sends binary)
    return own + p.charts()


def _tab(p: Page, name: str, what: str, plots: int = 0, timeout: float = 90.0) -> None:
    """Open tab ``name``; then no error, and at least ``plots`` charts all with data."""
    p.page.get_by_role("tab", name=name).first.click()
    p.settle(120_000)
    deadline = time.monotonic() + timeout
    counts = _plots(p)
    while (len(counts) < plots or not all(c > 0 for c in counts)) and time.monotonic() < deadline:
        time.sleep(1.0)
        counts = _plots(p)
    ARTIFACTS.mkdir(exist_ok=True)
    p.page.screenshot(path=str(ARTIFACTS / f"real_size_{what}.png"), full_page=True)
    p.healthy(what, charts=0, timeout=1)
    assert len(counts) >= plots and all(c > 0 for c in counts), f"{what}: charts {counts}, wanted {plots} with data"


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    """The app against a loopback exchange that serves the real trades as fast as it can (times rebased to now),
    with the chart cap far below the rows served."""
    frames = {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT", "ETHUSDT")}
    fake = FakeBinance(frames, rate=2000.0, rebase_time=True)
    fake.start()
    tmp = tmp_path_factory.mktemp("real")
    env = {"ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url, "ALPHASTREAM_DB_PATH": str(tmp / "r.sqlite"),
           "ALPHASTREAM_MAX_CHART_POINTS": str(CHART_CAP), "ALPHASTREAM_STALE_AFTER_S": "3600"}
    with serve_app(env, tmp / "server.log") as srv:
        yield srv, fake
    fake.stop()


def test_a_month_of_minute_bars_walks_every_uploaded_tab(server, data_dir):
    srv, _ = server
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url, width=1366)
        p.open("?source=Uploaded%20history&timeframe=1s&window=120", ready="Upload history")
        p.page.locator("input[type='file']").first.set_input_files([str(data_dir / f) for f in MONTH])
        p.settle()
        assert p.page.get_by_label("Dataset name").first.input_value() == "BTCUSDT-ETHUSDT_1m_2025-01-01_2025-02-04"
        p.page.get_by_role("button", name="Load 2 files").click()
        p.wait_text("Saved 100,000 rows as", "upload a month", 240_000)
        p.wait_text("Charts: all 50,000 bars", "a month drawn", 120_000)  # over 3,000 bars: drawn, not an error
        body = p.text()
        assert "Uploaded history · 1m" in body, body[:500]  # the timeframe followed the bars (asked: 1s)
        assert "thinned for drawing" in body
        _tab(p, "Dataset pair", "dataset_pair", plots=5)
        _tab(p, "Multi-asset", "multi_asset", plots=1)
        assert "Click a row to view that pair" in p.text() and p.page.locator('[data-testid="stDataFrame"]').count() >= 2
        _tab(p, "Backtest", "backtest_tab")
        p.page.get_by_role("button", name="Run backtest").click()
        p.wait_text("Net PnL", "backtest run", 120_000)
        _tab(p, "Backtest", "backtest", plots=1)
        assert "Sharpe" in p.text()
        _tab(p, "Minute stats", "minute_stats", plots=1)
        assert "The table shows the newest 2,000 of 50,000 minutes" in p.text()
        _tab(p, "Research", "research_tab")
        p.page.get_by_role("button", name="Scan the universe").click()
        p.wait_text("Scanned at", "scan", 120_000)
        assert "No OU fit and no optimal bands" in p.text() or "optimal entry (Bertram)" in p.text()
        _tab(p, "Research", "research", plots=1)
        _tab(p, "Exports", "exports")
        p.page.get_by_role("button", name="Prepare CSV: Processed analytics", exact=False).click()
        button = p.wait_button("Download alphastream_analytics_ETHUSDT-BTCUSDT_1m", "prepare analytics", 120_000)
        with p.page.expect_download(timeout=60_000) as dl:
            button.click()
        rows = Path(dl.value.path()).read_text().count("\n") - 1
        assert rows == 50_000
        p.healthy("every uploaded tab", charts=0)
        browser.close()


def test_sixteen_perpetuals_uploaded_at_once_scan_as_a_universe(server, data_dir):
    srv, _ = server
    from playwright.sync_api import sync_playwright

    files = sorted((data_dir / "multi" / "usdm_1m").glob("*_1m_*.csv"))
    assert len(files) == 16
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url, width=1366)
        p.open("?source=Uploaded%20history&timeframe=5m", ready="Upload history")
        p.page.locator("input[type='file']").first.set_input_files([str(f) for f in files])
        p.settle()
        name = p.page.get_by_label("Dataset name").first
        name.fill("usdm16")
        name.press("Tab")
        p.settle()
        p.page.get_by_role("button", name="Load 16 files").click()
        p.wait_text("as 'usdm16'", "upload 16 perpetuals", 600_000)
        p.settle(120_000)
        assert "symbols ADAUSDT, AVAXUSDT" in p.text()
        _tab(p, "Multi-asset", "universe_multi_asset", plots=1)
        body = p.text()
        assert "The 100 pairs with the lowest q of 120" in body, body[-2000:]
        _tab(p, "Research", "universe_research_tab")
        p.page.get_by_role("button", name="Scan the universe").click()
        p.wait_text("Scanned at", "scan 16", 180_000)
        assert "120 pairs" in p.text()
        _tab(p, "Dataset pair", "universe_pair", plots=5)
        p.healthy("16 perpetuals", charts=0)
        browser.close()


@pytest.mark.parametrize("method", ["OLS", "Kalman", "Huber"])
@pytest.mark.parametrize("timeframe", ["tick", "1s"])
def test_live_beyond_every_cap_for_each_hedge_method(server, method, timeframe):
    srv, fake = server
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + 120
    while not fake.done() and time.monotonic() < deadline:  # the whole recording is out: 340 1 s bars, 35,000 ticks
        time.sleep(0.5)
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url, width=1366)
        p.page.set_viewport_size({"width": 1366, "height": 768})
        p.open(f"?timeframe={timeframe}&method={method}&window=60")
        p.page.wait_for_function("""() => { const f = document.querySelector("iframe[title='ui.live_push.live_push']");
            const z = f && f.contentDocument && f.contentDocument.querySelector('#tile_z .value');
            return z && /^[+-]\\d/.test(z.textContent); }""", timeout=180_000)
        pushed = p.page.evaluate("""() => { const f = document.querySelector("iframe[title='ui.live_push.live_push']");
            const gd = f.contentDocument.getElementById('chart');
            return (gd.data || []).reduce((a, t) => a + (t.x || []).length, 0); }""")
        assert pushed > CHART_CAP  # the pushed chart holds up to its own cap (3,000 points), past the page's
        p.healthy(f"{method} {timeframe}", charts=6, timeout=120)
        assert f"of {CHART_CAP:,}" not in p.text()
        assert f"Charts show the latest {CHART_CAP:,} of" in p.text(), p.text()[:2000]
        # the z chart is above the fold at 1366×768
        top = p.page.evaluate("""() => { const f = document.querySelector("iframe[title='ui.live_push.live_push']");
            const r = f.contentDocument.getElementById('chart').getBoundingClientRect();
            return f.getBoundingClientRect().top + r.top; }""")
        assert top < 768 - 150, f"z chart starts at {top:.0f} px"
        p.page.screenshot(path=str(ARTIFACTS / f"real_size_live_{method}_{timeframe}.png"))
        browser.close()


def test_every_method_and_timeframe_through_the_read_api(server):
    srv, fake = server
    deadline = time.monotonic() + 120
    while not fake.done() and time.monotonic() < deadline:
        time.sleep(0.5)
    for method in ("OLS", "Kalman", "Huber"):
        for tf in ("tick", "1s", "1m", "5m"):
            url = f"{srv.url}/api/v1/pair?y=ETHUSDT&x=BTCUSDT&timeframe={tf}&method={method}&window=60&fee_bps=20"
            try:
                with urllib.request.urlopen(url, timeout=120) as resp:
                    body = json.loads(resp.read())
            except urllib.error.HTTPError as exc:  # a clear refusal is fine where there are too few bars; a 500 is not
                detail = exc.read().decode()
                assert exc.code == 409 and "aligned" in detail, (method, tf, exc.code, detail)
                continue
            assert body["rows"] > 0 and body["timeframe"] == tf, (method, tf)
            assert body["research"] is not None, (method, tf)
