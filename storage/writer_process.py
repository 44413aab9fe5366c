"""The SQLite writer in its own process, so browser sessions can never starve it of the GIL.

Measured with the writer as a thread: 20 dashboard sessions re-rendering held
the interpreter lock so much that the writer fell ~55 s (135k ids) behind
memory and kept falling. :class:`ProcessWriter` has the interface of
:class:`storage.sqlite.SQLiteWriter` but runs that writer in a child process
(``python -m storage.writer_process``, talking over a socket pair: it never
re-imports the server's own main module): the server only copies each batch's
bytes into the socket from a sender thread, and never blocks on it.

Durability: the server keeps every batch until the child reports it committed.
If the child dies, a new one starts and gets every unacknowledged batch and
SQL job again (ticks are ``INSERT OR IGNORE``; alert events carry their id; a
gap row may be repeated). If the *server* is killed, the child sees its pipe
close, commits what it has received and exits. Past ``max_pending_rows``
unacknowledged rows the oldest batch is dropped and reported through
``on_drop`` (the store turns it into a gap that is backfilled over REST).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from storage.sqlite import SQLiteWriter, WriterStatus
from storage.ticks import BATCH_DTYPE, TickBatch

__all__ = ["ProcessWriter"]

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


def _child(path: str, flush_interval_ms: int, flush_max_rows: int, retention_days: float, conn) -> None:
    """Child process: a normal writer thread, fed from the socket; reports status and committed sequence numbers."""
    import contextlib as _cl

    writer = SQLiteWriter(path, flush_interval_ms=flush_interval_ms, flush_max_rows=flush_max_rows,
                          max_pending_rows=10**12, retention_days=retention_days)
    writer.start()
    lock = threading.Lock()
    stop = threading.Event()
    seqs = {"batch": deque(), "sql": deque()}  # parent seqs in submit order (this writer never drops)
    done = {"batch": 0, "sql": 0}  # committed seq per kind
    popped = {"batch": 0, "sql": 0}

    def snapshot() -> dict:
        snap = asdict(writer.status)
        for kind, count in (("batch", snap["committed_batches"]), ("sql", snap["committed_jobs"])):
            with lock:
                while popped[kind] < count and seqs[kind]:
                    done[kind] = seqs[kind].popleft()
                    popped[kind] += 1
        snap["done_batch_seq"], snap["done_sql_seq"] = done["batch"], done["sql"]
        return snap

    def report() -> None:
        last = None
        while not stop.wait(0.05):
            snap = snapshot()
            if snap != last:
                try:
                    with lock:
                        conn.send(("status", snap))
                except (OSError, EOFError):
                    return
                last = snap

    threading.Thread(target=report, name="writer-report", daemon=True).start()
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # the server is gone: commit what was received, then exit
            kind = msg[0]
            if kind == "batch":
                with lock:
                    seqs["batch"].append(msg[1])
                writer.submit(TickBatch(msg[2], np.frombuffer(msg[3], dtype=BATCH_DTYPE).copy()))
            elif kind == "sql":
                with lock:
                    seqs["sql"].append(msg[1])
                writer.submit_sql(msg[2], msg[3])
            elif kind == "stop":
                break
    finally:
        writer.stop(timeout=60)
        stop.set()
        snap = snapshot()
        with lock, _cl.suppress(OSError, EOFError):
            conn.send(("status", snap))
            conn.send(("stopped", None))
        with _cl.suppress(OSError):
            conn.close()


class ProcessWriter:
    """Drop-in for :class:`storage.sqlite.SQLiteWriter` that writes from a child process."""

    def __init__(
        self,
        path: Path | str,
        flush_interval_ms: int = 250,
        flush_max_rows: int = 20_000,
        max_pending_rows: int = 5_000_000,
        retention_days: float = 0.0,
        on_commit: Callable[[list[TickBatch]], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.flush_interval_ms = flush_interval_ms
        self.flush_max_rows = flush_max_rows
        self.max_pending_rows = max_pending_rows
        self.retention_days = retention_days
        self.on_commit = on_commit
        self.on_drop: Callable[[TickBatch], None] | None = None
        self.status = WriterStatus()
        self.restarts = 0
        self._lock = threading.Lock()
        self._unacked: deque[tuple[int, str, object, float]] = deque()  # (seq, "batch"/"sql", item, submit time)
        self._unacked_rows = 0
        self._seq = 0
        self._sendq: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = False
        self._proc = None
        self._conn = None
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()

    # -- producer side (never blocks) -------------------------------------------------
    def submit(self, batch: TickBatch) -> None:
        if len(batch) == 0:
            return
        dropped = []
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._unacked.append((seq, "batch", batch, time.time()))
            self._unacked_rows += len(batch)
            while self._unacked_rows > self.max_pending_rows and len(self._unacked) > 1:
                _, kind, item, _ = self._unacked[0]
                if kind != "batch":
                    break
                self._unacked.popleft()
                self._unacked_rows -= len(item)
                self.status.dropped_rows += len(item)
                dropped.append(item)
            self.status.pending_rows = self._unacked_rows
        self._sendq.put(("batch", seq, batch.symbol, batch.data.tobytes()))
        if dropped and self.on_drop is not None:
            for b in dropped:
                self.on_drop(b)

    def submit_sql(self, sql: str, params: Sequence[object] = ()) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._unacked.append((seq, "sql", (sql, tuple(params)), time.time()))
        self._sendq.put(("sql", seq, sql, tuple(params)))

    def lag_s(self) -> float:
        with self._lock:
            return max(0.0, time.time() - self._unacked[0][3]) if self._unacked else 0.0

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._proc is not None:
            return
        self._spawn()
        t = threading.Thread(target=self._send_loop, name="writer-send", daemon=True)
        t.start()
        self._threads.append(t)

    def _spawn(self) -> None:
        a, b = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "storage.writer_process", str(b.fileno()), str(self.path), str(self.flush_interval_ms),
             str(self.flush_max_rows), str(self.retention_days)],
            pass_fds=[b.fileno()], env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL,
        )
        b.close()
        parent = Connection(a.detach())
        with self._lock:
            self._proc, self._conn = proc, parent
        t = threading.Thread(target=self._read_loop, args=(parent, proc), name="writer-read", daemon=True)
        t.start()
        self._threads.append(t)

    def _send_loop(self) -> None:
        while True:
            msg = self._sendq.get()
            if msg is None:
                return
            conn = self._conn
            with contextlib.suppress(OSError, EOFError, ValueError, AttributeError):
                conn.send(msg)  # a dead child: its restart resends everything unacknowledged

    def _read_loop(self, conn, proc) -> None:
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                break
            if kind == "status":
                self._apply(payload)
            elif kind == "stopped":
                self._stopped.set()
                return
        if self._stopping:
            self._stopped.set()
            return
        code = proc.wait()
        self.restarts += 1
        delay = min(10.0, 0.25 * 2 ** min(self.restarts, 6))
        log.error("storage writer process exited (code %s); restarting it in %.1f s and resending unsaved ticks", code, delay)
        self.status.state, self.status.message = "error", f"storage writer process exited (code {code}); restarting"
        with contextlib.suppress(OSError):
            conn.close()
        time.sleep(delay)
        if self._stopping:
            self._stopped.set()
            return
        self._spawn()
        with self._lock:
            items = list(self._unacked)
        for seq, kind, item, _ in items:  # the new child writes them again, in order
            if kind == "batch":
                self._sendq.put(("batch", seq, item.symbol, item.data.tobytes()))
            else:
                self._sendq.put(("sql", seq, item[0], item[1]))

    def _apply(self, snap: dict) -> None:
        """Mirror the child's status; forget what it committed (by sequence number, never by count)."""
        done_b, done_j = snap["done_batch_seq"], snap["done_sql_seq"]
        committed: list[TickBatch] = []
        with self._lock:
            keep: deque = deque()
            for entry in self._unacked:
                seq, kind, item, _ = entry
                if (kind == "batch" and seq <= done_b) or (kind == "sql" and seq <= done_j):
                    if kind == "batch":
                        self._unacked_rows -= len(item)
                        committed.append(item)
                else:
                    keep.append(entry)
            self._unacked = keep
            s = self.status
            for k in ("state", "message", "commits", "errors", "last_commit_at", "last_error_at", "schema_version"):
                setattr(s, k, snap[k])
            s.committed_rows += sum(len(b) for b in committed)
            s.committed_batches += len(committed)
            s.pending_rows = self._unacked_rows
        if committed and self.on_commit is not None:
            self.on_commit(committed)

    def flush_now(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted so far is committed (True) or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._unacked:
                    return True
            time.sleep(0.01)
        return False

    def stop(self, timeout: float = 30.0) -> None:
        """Let the child commit what it has, then stop it."""
        if self._proc is None:
            return
        self.flush_now(timeout=min(timeout, 10.0))
        self._stopping = True
        self._sendq.put(("stop", None))
        self._stopped.wait(timeout)
        self._sendq.put(None)
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        with self._lock:
            left = self._unacked_rows
        if left:
            self.status.state = "stopped"
            self.status.message = f"{self.status.message} (stopped with {left:,} unsaved ticks)"
        else:
            self.status.state, self.status.message = "stopped", "writer stopped; all ticks flushed"
        self._proc = None


if __name__ == "__main__":  # python -m storage.writer_process <fd> <path> <flush ms> <flush rows> <retention days>
    fd, db, ms, rows, days = sys.argv[1:6]
    _child(db, int(ms), int(rows), float(days), Connection(int(fd)))
