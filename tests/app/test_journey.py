"""A user's journey in a real Chromium: every control and round trip, several sessions, uploads, replay.

The server is ``streamlit run app.py`` against a loopback Binance replaying the real recordings at
their own pace (times rebased to now) with real 1-minute klines for history. After every step: no
exception element, no page error, and every chart on the tab has drawn data.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.app.test_browser import ARTIFACTS
from tests.browser import PUSH_FRAME, launch
from tests.fakebinance import FakeBinance
from tests.recordings import aggtrade_frames, funding_history
from tests.serving import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]
KLINES = ("BTCUSDT_1m_20250504_20250603.csv", "ETHUSDT_1m_20250504_20250615.csv")


def _klines(data_dir: Path, n: int) -> dict[str, pd.DataFrame]:
    """The last ``n`` real 1-minute bars both files hold (the same minutes for both symbols)."""
    frames = {name.split("_")[0]: pd.read_csv(data_dir / "multi" / "usdm_1m" / name) for name in KLINES}
    end = min(f["timestamp"].max() for f in frames.values())
    return {s: f[f["timestamp"] <= end].tail(n) for s, f in frames.items()}


@pytest.fixture(scope="module")
def live(tmp_path_factory, data_dir):
    frames = {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT", "ETHUSDT")}
    fake = FakeBinance(frames, rate="real")
    fake.start()
    fake.set_klines(_klines(data_dir, 3000))
    # real funding rates of the kline window's period, their times moved with the klines (ending now)
    now = pd.Timestamp.now(tz="UTC").floor("8h")
    fake.set_funding({s: pd.Series(h.iloc[-8:].to_numpy(), index=[now - pd.Timedelta(hours=8 * i) for i in range(7, -1, -1)])
                      for s in ("BTCUSDT", "ETHUSDT") for h in [funding_history(data_dir, s)]})
    tmp = tmp_path_factory.mktemp("journey")
    env = {"ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url, "ALPHASTREAM_DB_PATH": str(tmp / "j.sqlite"),
           "ALPHASTREAM_STALE_AFTER_S": "20"}
    with serve_app(env, tmp / "server.log") as srv:
        yield srv, fake
    fake.stop()


class Page:
    """One browser tab with the health checks every step ends with."""

    def __init__(self, browser, url: str, width: int = 1600) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": 1400}, accept_downloads=True)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.url = url

    def open(self, query: str = "", ready: str = "Live pair") -> None:
        self.page.goto(self.url + "/" + query)
        self.page.get_by_text(ready).first.wait_for(timeout=60_000)

    def text(self) -> str:
        return self.page.inner_text("body")

    def settle(self, timeout_ms: int = 30_000) -> None:
        """Wait until the app has no script run in progress (Streamlit's status widget is gone)."""
        time.sleep(0.3)
        self.page.wait_for_function("""() => !document.querySelector('[data-testid="stStatusWidget"]')""", timeout=timeout_ms)

    def wait_text(self, text: str, what: str, timeout_ms: int = 20_000) -> None:
        """Wait for ``text`` on the page; on a timeout keep a screenshot and fail with what the page said."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.get_by_text(text).first.wait_for(timeout=timeout_ms)
        except PlaywrightTimeout:
            ARTIFACTS.mkdir(exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS / f"journey_wait_{what.replace(' ', '_')[:40]}.png"), full_page=True)
            raise AssertionError(f"{what}: {text!r} not shown within {timeout_ms} ms; the page says: {self.text()[:3000]}") from None

    def wait_button(self, name: str, what: str, timeout_ms: int = 20_000):
        """The button called ``name`` once it is on the page; on a timeout a screenshot and what the page said."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        button = self.page.get_by_role("button", name=name)
        try:
            button.wait_for(timeout=timeout_ms)
        except PlaywrightTimeout:
            ARTIFACTS.mkdir(exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS / f"journey_wait_{what.replace(' ', '_')[:40]}.png"), full_page=True)
            raise AssertionError(f"{what}: no {name!r} button within {timeout_ms} ms; the page says: {self.text()[:3000]}") from None
        return button

    def charts(self) -> list[int]:
        """Points drawn by each visible live chart of the page (read through the same-origin iframes)."""
        return self.page.evaluate("""() => [...document.querySelectorAll("iframe[title='ui.live_chart.plotly_live']")]
            .filter(f => f.offsetParent !== null && f.contentWindow && f.contentWindow.document.getElementById('chart'))
            .map(f => (f.contentWindow.document.getElementById('chart').data || [])
                 .reduce((a, t) => a + ((t.x || t.z || []).length || 0), 0))""")

    def healthy(self, what: str, charts: int = 0, timeout: float = 20.0) -> None:
        """No exception element or page error; at least ``charts`` visible charts, all with data."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.charts()
            ok = len(counts) >= charts and all(c > 0 for c in counts)
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not ok or self.errors:
            ARTIFACTS.mkdir(exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS / f"journey_fail_{what.replace(' ', '_')[:40]}.png"), full_page=True)
        assert self.page.locator('[data-testid="stException"]').count() == 0, f"{what}: an exception is shown"
        body = self.text()
        assert "Something went wrong" not in body and "failed on this refresh" not in body, f"{what}: {body[:500]}"
        assert not self.errors, f"{what}: page errors {self.errors}"
        assert ok, f"{what}: charts without data {counts} (wanted {charts})"

    def panel_text(self) -> str:
        """Text of the pushed live panel ("" in fallback mode)."""
        return self.page.evaluate("""(sel) => { const f = document.querySelector(sel);
            return (f && f.contentDocument && f.contentDocument.body) ? f.contentDocument.body.innerText : ""; }""", PUSH_FRAME)

    def live_text(self, text: str, timeout_ms: int = 20_000) -> None:
        """Wait for ``text`` in the live part of the page: the pushed panel (a same-origin iframe) or the page itself."""
        self.page.wait_for_function("""([text, sel]) => {
            const f = document.querySelector(sel);
            const inPanel = f && f.contentDocument && f.contentDocument.body && f.contentDocument.body.innerText.includes(text);
            return inPanel || document.body.innerText.includes(text); }""", arg=[text, PUSH_FRAME], timeout=timeout_ms)

    def sidebar(self):
        return self.page.locator('[data-testid="stSidebar"]')


def _radio(p: Page, label: str) -> None:
    p.sidebar().get_by_text(label, exact=True).first.click()


def _select(p: Page, box_label: str, option: str) -> None:
    p.sidebar().get_by_label(box_label).first.click()
    p.page.get_by_role("option", name=option, exact=True).first.click()


def test_every_control_and_round_trip_keeps_the_charts_drawn(live):
    from playwright.sync_api import sync_playwright

    srv, fake = live
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url, width=1366)
        p.open("?timeframe=1m&window=60")
        p.page.get_by_text("LIVE", exact=True).first.wait_for(timeout=60_000)
        p.healthy("1m with kline history", charts=6, timeout=60)
        assert "exchange klines" in p.text()
        for step, action in [
            ("1m → 5m", lambda: _radio(p, "5m")),
            ("5m → 1s (collecting)", lambda: _radio(p, "1s")),
            ("1s → 1m", lambda: _radio(p, "1m")),
            ("Kalman", lambda: _select(p, "Hedge regression", "Kalman")),
            ("Huber", lambda: _select(p, "Hedge regression", "Huber")),
            ("OLS", lambda: _select(p, "Hedge regression", "OLS")),
            ("swap Y/X", lambda: p.sidebar().get_by_role("button", name="⇅ Swap Y and X").click()),
            ("swap back", lambda: p.sidebar().get_by_role("button", name="⇅ Swap Y and X").click()),
            ("overlay β", lambda: p.sidebar().get_by_text("Overlay β of all three methods").click()),
            ("raw prices", lambda: p.sidebar().get_by_text("Log prices").click()),
            ("log prices", lambda: p.sidebar().get_by_text("Log prices").click()),
        ]:
            action()
            time.sleep(1.0)
            charts = 0 if step.endswith("(collecting)") else 6
            p.healthy(step, charts=charts, timeout=30)
        # Y = X, then back: a state that hides every chart, and the charts return
        _select(p, "Y (dependent)", "BTCUSDT")
        time.sleep(1.5)
        assert "Y and X must be different symbols" in p.text()
        _select(p, "Y (dependent)", "ETHUSDT")
        p.healthy("Y = X and back", charts=6, timeout=30)
        # the draw queue is not left running by a removed frame
        state = p.page.evaluate("() => { const q = window.__alphastreamDraws; return q ? {pending: q.pending.size} : null; }")
        assert state is not None and state["pending"] <= 8
        # recording another symbol: no white screen, the page carries on
        p.sidebar().get_by_text("Record another symbol").click()
        p.sidebar().get_by_label("Symbols (comma-separated)").fill("XRPUSDT")
        p.sidebar().get_by_role("button", name="Record for everyone").click()
        p.page.get_by_text("Now recording XRPUSDT for everyone").wait_for(timeout=20_000)
        p.healthy("record XRPUSDT", charts=6)
        p.page.screenshot(path=str(ARTIFACTS / "journey_controls.png"), full_page=True)
        browser.close()
    assert not [m for m in fake.subscriptions if m.get("method") == "UNSUBSCRIBE"]


def test_three_sessions_with_different_choices_do_not_disturb_each_other(live):
    from playwright.sync_api import sync_playwright

    srv, fake = live
    with sync_playwright() as pw:
        browser = launch(pw)
        a, b, c = (Page(browser, srv.url) for _ in range(3))
        a.open("?timeframe=1m&window=60")
        b.open("?timeframe=5m&window=30&sym_y=BTCUSDT&sym_x=ETHUSDT&method=Huber")
        c.open("?symbols=BTCUSDT,SOLUSDT&timeframe=1m")  # a URL selects a view; it never reconfigures the feed
        for p in (a, b):
            p.healthy("opened", charts=6, timeout=60)
        assert "Not recorded by this server: SOLUSDT" in c.text()
        # one analyst narrows their view: nobody else's feed changes
        a.sidebar().get_by_role("button", name="Remove ETHUSDT").first.click()
        time.sleep(2)
        chips = a.sidebar().locator('[data-testid="stMultiSelect"] [data-tag]').all_inner_texts()
        assert "ETHUSDT" not in chips and chips, chips
        b.healthy("b after a changed its view", charts=6)
        assert "BTCUSDT / ETHUSDT · 5m · Huber" in b.text() and "ETHUSDT" in b.text()
        time.sleep(3)
        assert "STALE" not in b.text()
        for p in (a, b, c):
            assert not p.errors
        browser.close()
    assert not [m for m in fake.subscriptions if m.get("method") == "UNSUBSCRIBE"]
    assert not any("SOLUSDT" in str(m) for m in fake.subscriptions)


def test_backtest_result_stays_and_both_downloads_are_the_same_run(live):
    from playwright.sync_api import sync_playwright

    srv, _ = live
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url)
        p.open("?timeframe=1m&window=60")
        p.page.get_by_role("tab", name="Backtest").click()
        p.settle()  # the page's first run has finished, as it has by the time a person clicks
        p.page.get_by_role("button", name="Run backtest").click()
        p.wait_text("Net PnL", "backtest", 60_000)
        body = p.text()
        assert "Slippage" in body and "Funding" in body and "Funding history of" not in body, body[-1500:]
        run_caption = p.page.get_by_text("Result of the run at").first.inner_text()
        with p.page.expect_download(timeout=30_000) as dl:
            p.page.get_by_role("button", name="Download trades CSV").click()
        reader = csv.DictReader(io.StringIO(Path(dl.value.path()).read_text()))
        trades, trades_header = list(reader), reader.fieldnames or []
        time.sleep(3)  # live refreshes pass: the result stays, unchanged
        assert p.page.get_by_text("Result of the run at").first.inner_text() == run_caption
        with p.page.expect_download(timeout=30_000) as dl:
            p.page.get_by_role("button", name="Download equity CSV").click()
        equity = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
        assert equity and float(equity[-1]["equity"]) == pytest.approx(sum(float(t["pnl"]) for t in trades), abs=1e-6)
        assert {"gross_pnl", "fees", "slippage", "funding", "pnl"} <= set(trades_header)
        pnl = sum(float(t["gross_pnl"]) - float(t["fees"]) - float(t["slippage"]) - float(t["funding"]) for t in trades)
        assert pnl == pytest.approx(sum(float(t["pnl"]) for t in trades), abs=1e-6)  # net = gross - fees - slippage - funding
        if trades:
            times = {e["timestamp"] for e in equity}
            assert all(t["exit_time"] in times for t in trades)  # the same bars: the same run
        p.healthy("backtest", charts=0)
        browser.close()


def test_alert_form_does_not_submit_on_enter_and_checks_duplicates(live):
    from playwright.sync_api import sync_playwright

    srv, _ = live
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url)
        p.open()
        p.page.get_by_role("tab", name="Alerts").click()
        threshold = p.page.get_by_label("Threshold")
        threshold.fill("2.5")
        threshold.press("Enter")  # a form would have saved a half-finished rule here
        time.sleep(2)
        assert "Rules** (0)" in p.page.content() or "Rules (0)" in p.text()
        p.page.get_by_role("button", name="Save rule").click()
        p.wait_text("Saved #", "alert save")
        p.page.get_by_role("button", name="Save rule").click()
        p.wait_text("exists already", "alert duplicate")
        p.page.get_by_role("button", name="Edit").first.click()
        p.page.get_by_role("button", name="Update rule").wait_for(timeout=20_000)
        p.settle()
        assert float(p.page.get_by_label("Threshold").input_value()) == 2.5  # the rule is in the editor
        p.page.get_by_label("Threshold").fill("3")
        p.page.get_by_label("Threshold").press("Tab")  # commits the number (a rerun) before the click
        p.settle()
        p.page.get_by_role("button", name="Update rule").click()
        p.wait_text("Updated #", "alert update")
        assert "Rules (1)" in p.text()
        p.healthy("alerts", charts=0)
        browser.close()


def test_uploads_add_legs_follow_the_data_and_delete_confirms(live, data_dir, tmp_path):
    """One file per leg: the second under the first's name adds its leg; the new dataset is selected and the
    timeframe follows its bars; a name the user typed is never overwritten; replace and delete ask first."""
    from playwright.sync_api import sync_playwright

    srv, _ = live
    btc = tmp_path / "BTCUSDT_1m_upload.csv"
    eth = tmp_path / "ETHUSDT_1m_upload.csv"
    pd.read_csv(data_dir / "BTCUSDT_1m_2025-01-01_2025-02-04.csv").head(800).to_csv(btc, index=False)
    pd.read_csv(data_dir / "ETHUSDT_1m_2025-01-01_2025-02-04.csv").head(800).to_csv(eth, index=False)
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url)
        p.open("?source=Uploaded%20history&timeframe=1s", ready="Upload history")
        p.page.locator("input[type='file']").first.set_input_files(str(btc))
        name = p.page.get_by_label("Dataset name").first
        name.wait_for(timeout=20_000)
        p.settle()
        assert name.input_value() == "BTCUSDT_1m_upload" and p.page.get_by_label("Symbol (only for").input_value() == "BTCUSDT"
        p.page.get_by_role("button", name="Load file").click()
        p.wait_text("Saved 800 rows as", "first leg", 60_000)
        p.wait_text("a pair needs two", "one leg only")
        assert p.sidebar().locator("label:has-text('1m') input").first.is_checked()  # the timeframe followed the 1m bars
        # the other leg under the same name: added, not replacing
        p.page.locator("input[type='file']").first.set_input_files(str(eth))
        p.settle()
        assert name.input_value() == "ETHUSDT_1m_upload"  # a suggested name follows the new file
        name.fill("BTCUSDT_1m_upload")
        name.press("Tab")
        p.wait_text("exists already", "same name")
        p.settle()
        assert p.page.get_by_role("radio", name="add these files' legs to it", exact=False).is_checked()
        p.page.get_by_role("button", name="Load file").click()
        p.wait_text("the dataset now holds BTCUSDT, ETHUSDT", "second leg", 60_000)
        p.page.get_by_role("tab", name="Dataset pair").first.wait_for(timeout=20_000)
        p.wait_text("Charts: all 800 bars", "pair drawn", 60_000)
        # a name the user typed stays when more files are chosen (the uploader adds them to its list)
        p.page.locator("input[type='file']").first.set_input_files(str(btc))
        p.settle()
        name.fill("my-pair")
        name.press("Tab")
        p.settle()
        p.page.locator("input[type='file']").first.set_input_files(str(eth))
        p.settle()
        assert name.input_value() == "my-pair"
        p.page.get_by_role("button", name="Load 2 files").click()
        p.wait_text("Saved 1,600 rows as 'my-pair' (BTCUSDT, ETHUSDT)", "two files at once", 60_000)
        # replace asks first, then holds only the new file's leg
        p.page.locator("input[type='file']").first.set_input_files(str(eth))
        p.settle()
        name.fill("BTCUSDT_1m_upload")
        name.press("Tab")
        p.settle()
        p.page.get_by_text("replace 'BTCUSDT_1m_upload' entirely").click()
        p.settle()
        p.page.get_by_role("button", name="Load file").click()
        p.wait_text("Saved 800 rows as", "replaced", 60_000)
        p.page.get_by_role("button", name="Delete").first.click()
        p.wait_text("This cannot be undone", "delete asks")
        p.page.get_by_role("button", name="Yes, delete it").click()
        p.wait_text("Deleted 'BTCUSDT_1m_upload' (bars, 800 rows: ETHUSDT)", "deleted")
        p.healthy("uploads", charts=0)
        browser.close()


def test_replay_progress_pause_and_stop_are_live(live, data_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    srv, _ = live
    name = "usdm_BTCUSDT_ETHUSDT_recording_20251216.csv"
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url)
        p.open("?source=Uploaded%20history", ready="Upload history")
        p.page.locator("input[type='file']").first.set_input_files(str(data_dir / name))
        p.settle()  # the upload's rerun has drawn the form for this file
        p.page.get_by_role("button", name="Load file").click()
        p.wait_text("Saved 44,967 rows as", "upload", 240_000)
        p.open("?source=Replay&window=20&timeframe=1s", ready="Tick dataset to replay")
        p.page.get_by_role("button", name="Start").click()
        bar = p.page.get_by_text("ticks replayed").first
        bar.wait_for(timeout=30_000)
        first = int(bar.inner_text().split(" / ")[0].replace(",", ""))
        time.sleep(3)
        second = int(p.page.get_by_text("ticks replayed").first.inner_text().split(" / ")[0].replace(",", ""))
        assert second > first, "the progress bar is live"
        assert "REPLAY" in p.text() and "This replay is yours alone" in p.text()
        p.page.get_by_role("button", name="Pause").click()
        p.wait_button("Resume", "replay pause", 30_000)
        # ticks already on their way when Pause was pressed still land; then the count stops and stays
        deadline, paused = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            now_text = p.page.get_by_text("ticks replayed").first.inner_text()
            if now_text == paused:
                break
            paused = now_text
            time.sleep(1.5)
        time.sleep(2)
        assert p.page.get_by_text("ticks replayed").first.inner_text() == paused
        # the progress panel re-renders every 0.5 s; under load Playwright's actionability wait never settles on it
        p.wait_button("Resume", "replay resume", 90_000).dispatch_event("click", timeout=90_000)
        p.wait_button("Stop", "replay stop", 90_000).dispatch_event("click", timeout=90_000)
        p.page.get_by_text("stopped").first.wait_for(timeout=10_000)
        p.healthy("replay", charts=0)
        browser.close()


@pytest.mark.parametrize("width", [1366, 1600])
def test_kpi_tiles_are_not_truncated(live, width):
    from playwright.sync_api import sync_playwright

    srv, _ = live
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url, width=width)
        p.open("?timeframe=1m&window=60")
        p.healthy("open", charts=6, timeout=60)
        cut = p.page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricLabel"]')]
            .filter(e => e.offsetParent !== null)
            .map(e => { const t = e.querySelector('div,p') || e; return [e.innerText, t.scrollWidth > t.clientWidth + 1]; })
            .filter(([, over]) => over).map(([t]) => t)""")
        assert not cut, f"truncated at {width}px: {cut}"
        browser.close()


def test_offline_says_so_once_and_points_to_replay_and_uploads(tmp_path):
    from playwright.sync_api import sync_playwright

    env = {"ALPHASTREAM_WS_URL": "ws://127.0.0.1:9/market", "ALPHASTREAM_REST_URL": "http://127.0.0.1:9",
           "ALPHASTREAM_DB_PATH": str(tmp_path / "off.sqlite"), "ALPHASTREAM_BACKOFF_INITIAL_S": "0.2", "ALPHASTREAM_BACKOFF_MAX_S": "1"}
    with serve_app(env, tmp_path / "off.log") as srv, sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url)
        p.open()
        p.page.get_by_text("Cannot reach Binance").first.wait_for(timeout=60_000)
        p.page.get_by_text("Connection attempts").first.wait_for(timeout=30_000)
        time.sleep(2)
        body = p.text()
        assert body.count("Cannot reach Binance") == 1 and "Replay or Uploaded history" in body, body[:1500]
        assert "Connection attempts" in body and "offline" in body, body[:1500]
        p.live_text("Waiting for the first trade")
        assert "collecting" not in body + p.panel_text()
        p.healthy("offline", charts=0)
        browser.close()


def test_a_silent_exchange_turns_every_figure_stale(tmp_path, data_dir):
    from playwright.sync_api import sync_playwright

    frames = {s: aggtrade_frames(data_dir, s) for s in ("BTCUSDT", "ETHUSDT")}
    with FakeBinance(frames, rate="real") as fake:
        fake.set_klines(_klines(data_dir, 1500))
        env = {"ALPHASTREAM_WS_URL": fake.ws_url, "ALPHASTREAM_REST_URL": fake.rest_url, "ALPHASTREAM_DB_PATH": str(tmp_path / "st.sqlite"),
               "ALPHASTREAM_STALE_AFTER_S": "5"}
        with serve_app(env, tmp_path / "stale.log") as srv, sync_playwright() as pw:
            browser = launch(pw)
            p = Page(browser, srv.url)
            p.open("?timeframe=1m&window=60")
            p.page.get_by_text("LIVE", exact=True).first.wait_for(timeout=60_000)
            fake.paused.set()  # the exchange goes silent; the connection stays open
            p.page.get_by_text("STALE", exact=True).first.wait_for(timeout=40_000)
            p.live_text("Not live.")
            body = p.text() + p.panel_text()
            assert "old)" in body and "No new trade for" in body  # every figure says how old it is
            p.healthy("stale", charts=6)
            browser.close()


def test_research_tab_scans_and_walks_forward_on_recorded_bars(live):
    from playwright.sync_api import sync_playwright

    srv, _ = live
    with sync_playwright() as pw:
        browser = launch(pw)
        p = Page(browser, srv.url)
        p.open("?symbols=BTCUSDT,ETHUSDT&timeframe=1m&window=60")  # two legs in view, whatever earlier tests recorded
        p.healthy("open", charts=6, timeout=60)
        p.page.get_by_role("tab", name="Research").click()
        p.page.get_by_role("button", name="Scan the universe").click()
        p.page.get_by_text("Scanned at").first.wait_for(timeout=90_000)
        p.page.get_by_text("Hedge stability (CUSUM").first.wait_for(timeout=90_000)
        p.page.get_by_role("button", name="Fit and backtest the basket").click()
        p.page.get_by_text("at least three legs").first.wait_for(timeout=90_000)  # two symbols in view
        p.page.get_by_role("button", name="Run walk-forward").click()
        try:
            p.page.get_by_text("out-of-sample bars").first.wait_for(timeout=180_000)
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            p.page.screenshot(path=str(ARTIFACTS / "journey_fail_research.png"), full_page=True)
            raise
        body = p.text()
        assert "deflated Sharpe" in body and "OOS net PnL" in body and "half-life" in body, body[-2000:]
        ARTIFACTS.mkdir(exist_ok=True)
        p.page.screenshot(path=str(ARTIFACTS / "research.png"), full_page=True)
        p.healthy("research", charts=0)
        browser.close()
