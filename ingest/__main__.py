"""``python -m ingest``: record the configured symbols into SQLite or PostgreSQL, no UI.

Runs until SIGINT/SIGTERM, then stops the source, flushes the writer and exits 0
(3 when ticks could not be saved). Prints one status line every
``--status-every`` seconds to stderr.

With ``ALPHASTREAM_DATABASE_URL`` (PostgreSQL) it is one *shard*: it records the
symbols of its ``ALPHASTREAM_SYMBOLS`` whose advisory lock it holds, waits as a
hot standby for the others (:mod:`ingest.shards`), and writes closed bars. A
PostgreSQL outage is ridden out in memory (up to the writer's bound) and shown
in the status line.
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
    leases = recorder = bars = None
    if settings.database_url:
        from ingest.shards import BarRecorder, ShardedRecorder
        from storage.postgres import Leases

        store.warm_start_hours = 10 / 60  # the open bars complete in memory, so the bars written are whole
        store.start(warm_start=True)
        leases = Leases(settings.database_url)
        source = BinanceSource.from_settings(store, settings, (), allow_empty=True)
        recorder = ShardedRecorder(store, source, settings.symbols, leases)
        bars = BarRecorder(store, lambda: recorder.owned)
    else:
        store.start(warm_start=False)
        source = BinanceSource.from_settings(store, settings, settings.symbols)
    done = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        logging.info("signal %d: stopping", signum)
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    source.start()
    if leases is not None:
        bars.start()
        leases.start()
    while not done.wait(args.status_every):
        st = store.status()
        h = source.health
        shard = ""
        if recorder is not None:
            shard = (f" | recording {','.join(recorder.owned) or 'nothing'}; standby for {','.join(recorder.standby()) or 'nothing'}"
                     f" | locks {leases.state}")
        print(
            f"[ingest] {h.state}: {h.message} | rows stored {st.rows_stored} | db {st.writer.state}: {st.writer.message}"
            f" ({st.writer.pending_rows:,} pending){shard}",
            file=sys.stderr, flush=True,
        )
    source.stop()
    if bars is not None:
        bars.stop()
    store.close()
    if leases is not None:
        leases.stop()  # only now: a standby takes over from what is stored
    st = store.status()
    print(f"[ingest] stopped: {st.rows_stored} rows stored, writer {st.writer.state}", file=sys.stderr, flush=True)
    if st.writer.pending_rows:
        print(f"[ingest] {st.writer.pending_rows:,} ticks were NOT saved ({st.writer.message}); they are lost unless "
              "REST can backfill them at the next start (about 48 h)", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
