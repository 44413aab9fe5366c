"""``python -m ingest``: record the configured symbols into SQLite, no UI.

Runs until SIGINT/SIGTERM, then stops the source, flushes the writer and exits 0.
Prints one status line every ``--status-every`` seconds to stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from config import ConfigError, load_settings
from ingest.binance import BinanceSource
from storage.store import TickStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("--status-every", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    store = TickStore.from_settings(settings)
    store.start(warm_start=False)
    source = BinanceSource(
        store, settings.symbols, settings.ws_url, settings.rest_url,
        stale_after_s=settings.stale_after_s, reconnect_before_s=settings.reconnect_before_s,
        backoff_initial_s=settings.backoff_initial_s, backoff_max_s=settings.backoff_max_s,
        rest_timeout_s=settings.rest_timeout_s,
    )
    done = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        logging.info("signal %d: stopping", signum)
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    source.start()
    while not done.wait(args.status_every):
        st = store.status()
        h = source.health
        print(
            f"[ingest] {h.state}: {h.message} | rows in SQLite {st.rows_in_sqlite} | db {st.writer.state}",
            file=sys.stderr, flush=True,
        )
    source.stop()
    store.close()
    st = store.status()
    print(f"[ingest] stopped: {st.rows_in_sqlite} rows in SQLite, writer {st.writer.state}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
