"""Chromium for the browser tests and benchmarks, and the tick-to-screen measurement they share."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.fakebinance import FakeBinance

PUSH_FRAME = "iframe[title='ui.live_push.live_push']"
CAPTION_PREFIX = "Newest tick on screen"


def chromium_path() -> str:
    for c in (os.environ.get("ALPHASTREAM_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser",
              "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"):
        if c and Path(c).exists():
            return c
    found = shutil.which("chromium") or shutil.which("google-chrome")
    if not found:
        raise RuntimeError("No Chromium found: run `make browser` (Debian: apt-get install chromium)")
    return found


def launch(p):
    """Headless Debian Chromium through Playwright (``p`` is ``sync_playwright()``'s value)."""
    return p.chromium.launch(
        executable_path=chromium_path(),
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    )


def stamp_ticks(page, timeout_ms: int = 90_000) -> str:
    """Record, in the page, every change of the "Newest tick on screen … last ids" caption.

    The page stamps each change itself (MutationObserver, ``Date.now`` on this machine's clock), so
    polling adds no error. Pushed mode: the caption is inside the live panel (a same-origin iframe);
    fallback mode: it is a Streamlit caption. Returns which one it watches ("push" or "rerun").
    """
    page.wait_for_function(f"""() => {{
        const f = document.querySelector("{PUSH_FRAME}");
        const c = f && f.contentDocument && f.contentDocument.getElementById('caption');
        if (c && c.textContent.includes('last ids')) return true;
        return [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
          .some(e => e.innerText.includes('{CAPTION_PREFIX}') && e.innerText.includes('last ids')); }}""", timeout=timeout_ms)
    return page.evaluate(f"""() => {{
      window.__shown = []; let last = "";
      const f = document.querySelector("{PUSH_FRAME}");
      const c = f && f.contentDocument && f.contentDocument.getElementById('caption');
      const record = (text) => {{ if (text !== last) {{ last = text; window.__shown.push([Date.now() / 1000, text]); }} }};
      if (c && c.textContent.includes('last ids')) {{
        new f.contentWindow.MutationObserver(() => record(c.textContent))
          .observe(c, {{subtree: true, childList: true, characterData: true}});
        return "push";
      }}
      new MutationObserver(() => {{
        const el = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
          .find(e => e.innerText.includes("{CAPTION_PREFIX}"));
        if (el) record(el.innerText);
      }}).observe(document.body, {{subtree: true, childList: true, characterData: true}});
      return "rerun";
    }}""")


def shown_ids(page) -> list[tuple[float, dict[str, int]]]:
    """The stamped captions as (time s, {symbol: newest aggregate id shown})."""
    shown = []
    for stamp, caption in page.evaluate("() => window.__shown"):
        words = caption.replace("#", " ").split()
        shown.append((stamp, {w: int(n) for w, n in zip(words, words[1:], strict=False) if w.endswith("USDT") and n.isdigit()}))
    return shown


def tick_latencies(shown: list[tuple[float, dict[str, int]]], fake: FakeBinance, t_start: float) -> list[float]:
    """Per tick the exchange sent after ``t_start`` (s): seconds until the page first showed that id or a newer one.

    Ticks sent in the last 2 s before the final stamp are left out (they may not have been shown yet).
    Raises AssertionError naming a tick that never reached the screen.
    """
    symbol_of = {f["data"]["a"]: f["data"]["s"] for fr in fake.frames.values() for f in fr}
    out = []
    for agg_id, sent in fake.sent_times().items():
        if t_start <= sent <= shown[-1][0] - 2:
            first = next((t for t, ids in shown if t >= sent and ids.get(symbol_of[agg_id], -1) >= agg_id), None)
            assert first is not None, f"tick {agg_id} never reached the screen"
            out.append(first - sent)
    return sorted(out)


def percentiles_ms(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in milliseconds of sorted latencies in seconds."""
    return tuple(latencies[int(q * (len(latencies) - 1))] * 1000 for q in (0.5, 0.95, 0.99))


def long_task_share(page, seconds: float) -> tuple[float, float]:
    """Share of ``seconds`` the page's main thread spent in long tasks (> 50 ms) and the longest one (ms)."""
    page.evaluate("""() => { window.__lt = []; new PerformanceObserver((l) => {
        for (const e of l.getEntries()) window.__lt.push(e.duration); }).observe({type: 'longtask'}); }""")
    t0 = page.evaluate("() => performance.now()")
    time.sleep(seconds)
    t1 = page.evaluate("() => performance.now()")
    durations = page.evaluate("() => window.__lt")
    return sum(durations) / (t1 - t0), max(durations, default=0.0)
