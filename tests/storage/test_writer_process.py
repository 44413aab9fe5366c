"""The writer process: every batch committed once, across a killed child and a killed server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from storage.store import TickStore
from storage.ticks import TickBatch
from tests.conftest import ROOT
from tests.recordings import trades_array

pytestmark = pytest.mark.timeout(120)


def _ids(path) -> list[int]:
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute("SELECT agg_id FROM ticks ORDER BY agg_id")]


def test_a_killed_writer_process_is_restarted_and_nothing_is_lost_or_doubled(tmp_path, data_dir):
    arr = trades_array(data_dir, "BTCUSDT")
    path = tmp_path / "w.sqlite"
    store = TickStore(path, writer_process=True, flush_interval_ms=20)
    store.start()
    assert store.writer.status.state == "ok"
    for part in np.array_split(arr[:10_000], 40):
        store.write(TickBatch("BTCUSDT", part))
    store.writer._proc.kill()  # SIGKILL mid-stream: some batches were committed, some not
    for part in np.array_split(arr[10_000:], 40):
        store.write(TickBatch("BTCUSDT", part))
    store.writer.submit_sql("INSERT INTO universe (symbol, added_at, note) VALUES ('SOLUSDT', 1, 'x')", ())
    assert store.writer.flush_now(timeout=60)
    assert store.writer.restarts >= 1
    store.close()
    assert _ids(path) == arr["agg_id"].tolist()
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT COUNT(*) FROM universe").fetchone()[0] == 1


def test_the_writer_process_saves_what_it_received_when_the_server_is_killed(tmp_path, data_dir):
    path = tmp_path / "k.sqlite"
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import numpy as np
        from pathlib import Path
        from storage.store import TickStore
        from storage.ticks import TickBatch
        from tests.recordings import trades_array
        arr = trades_array(Path({str(data_dir)!r}), "ETHUSDT")
        store = TickStore({str(path)!r}, writer_process=True, flush_interval_ms=5000)  # nothing commits on its own soon
        store.start()
        for part in np.array_split(arr, 50):
            store.write(TickBatch("ETHUSDT", part))
        while not store.writer._sendq.empty():
            time.sleep(0.01)
        time.sleep(0.2)
        print(len(arr), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert out.returncode == -9, out.stderr[-2000:]
    sent = int(out.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not path.exists() or len(_ids(path)) < sent):
        time.sleep(0.2)
    assert len(_ids(path)) == sent  # the orphaned child committed everything it had received, then exited
    assert os.system(f"pgrep -f 'storage.writer_process [0-9]+ {path}' > /dev/null") != 0
