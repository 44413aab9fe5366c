"""Uploads parsed and saved in a separate, bounded worker process.

A hostile or merely huge file must not starve or kill ingestion: parsing runs
in a fresh interpreter (``python -m server.uploads``: no inherited threads or
sockets, and none of the server's modules — multiprocessing's ``spawn`` would
re-import ``app.py`` and with it Streamlit, Plotly and SciPy, ≈ 280 MB before the
file is read) at a lower CPU priority, watched by the parent — killed when its memory passes
``3 × the file + 400 MB`` or it runs past the time limit — and it saves in
transactions of at most :data:`BATCH_ROWS` rows, so the live tick writer never
waits long for the database lock. The server only sees a small message: the
rows saved and the load report, or the error.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

__all__ = ["UploadJob", "start_upload"]

BATCH_ROWS = 50_000
BASE_MEMORY = 400 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _worker(path: str, filename: str, symbol: str | None, dataset: str, db_path: str, max_bytes: int, conn) -> None:
    """Child process: parse ``path`` and save it as ``dataset``; report through ``conn``."""
    with contextlib.suppress(OSError):
        os.nice(10)
    try:
        from ingest.files import FileFormatError, load_bytes
        from storage.datasets import DatasetStore

        data = Path(path).read_bytes()
        loaded = load_bytes(filename, data, symbol, max_bytes=max_bytes,
                            progress=lambda f: conn.send(("progress", 0.8 * f, "parsing")))
        del data
        rows = DatasetStore(db_path).save(dataset, loaded.kind, loaded.frames, source=filename, detail=loaded.report.summary(),
                                          batch_rows=BATCH_ROWS, progress=lambda f: conn.send(("progress", 0.8 + 0.2 * f, "saving")))
        conn.send(("done", rows, loaded.report.summary(), sorted(loaded.frames)))
    except FileFormatError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("error", f"{filename}: the file needs more memory than this server allows for an upload"))
    except Exception as exc:  # the parent shows a message, never a traceback
        conn.send(("error", f"{filename}: could not be loaded ({type(exc).__name__}: {str(exc)[:200]})"))
    finally:
        conn.close()


@dataclass
class UploadJob:
    """One upload being processed; ``state`` is running / done / error."""

    filename: str
    dataset: str
    size: int
    state: str = "running"
    progress: float = 0.0
    stage: str = "starting"
    message: str = ""
    rows: int = 0
    symbols: list[str] = field(default_factory=list)
    peak_rss: int = 0
    started: float = field(default_factory=time.time)
    _thread: threading.Thread | None = None

    @property
    def memory_cap(self) -> int:
        return 3 * self.size + BASE_MEMORY

    def wait(self, timeout: float | None = None) -> UploadJob:
        if self._thread is not None:
            self._thread.join(timeout)
        return self


def start_upload(data: bytes, filename: str, dataset: str, db_path: Path, symbol: str | None = None,
                 max_bytes: int = 500 * 1024 * 1024, time_limit_s: float = 900.0) -> UploadJob:
    """Start parsing and saving ``data`` in a worker process; returns at once (poll the job)."""
    job = UploadJob(filename, dataset, len(data))
    if len(data) > max_bytes:
        job.state, job.message = "error", f"{filename}: {len(data) / 1e6:.0f} MB is over the {max_bytes / 1e6:.0f} MB limit"
        return job
    fd, tmp = tempfile.mkstemp(prefix="alphastream-upload-", suffix=".bin", dir=str(Path(db_path).parent) if Path(db_path).parent.exists() else None)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    a, b = socket.socketpair()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.uploads", str(b.fileno()), tmp, filename, symbol or "", dataset, str(db_path), str(max_bytes)],
            pass_fds=[b.fileno()], env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL,
        )
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in a file or dataset name
        a.close()
        Path(tmp).unlink(missing_ok=True)
        reason = "a name holds a NUL byte" if isinstance(exc, ValueError) else (exc.strerror or str(exc))
        job.state, job.message = "error", f"{filename}: the loader could not start ({reason})"
        return job
    finally:
        b.close()
    parent = Connection(a.detach())

    def watch() -> None:
        try:
            deadline = time.monotonic() + time_limit_s
            while True:
                if parent.poll(0.2):
                    try:
                        msg = parent.recv()
                    except EOFError:
                        break
                    if msg[0] == "progress":
                        job.progress, job.stage = float(msg[1]), str(msg[2])
                    elif msg[0] == "done":
                        job.rows, job.message, job.symbols = int(msg[1]), str(msg[2]), list(msg[3])
                        job.progress, job.state = 1.0, "done"
                        break
                    else:
                        job.state, job.message = "error", str(msg[1])
                        break
                job.peak_rss = max(job.peak_rss, _rss_bytes(proc.pid))
                if job.peak_rss > job.memory_cap:
                    proc.kill()
                    job.state = "error"
                    job.message = (f"{filename}: parsing needed more than {job.memory_cap / 1e6:,.0f} MB (3× the file plus "
                                   f"{BASE_MEMORY / 1e6:.0f} MB) and was stopped; nothing was saved")
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    job.state, job.message = "error", f"{filename}: loading took over {time_limit_s:.0f} s and was stopped"
                    break
                if proc.poll() is not None and not parent.poll(0):
                    job.state, job.message = "error", f"{filename}: the loader stopped unexpectedly (exit code {proc.returncode})"
                    break
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            parent.close()
            Path(tmp).unlink(missing_ok=True)
            if job.state == "running":
                job.state, job.message = "error", f"{filename}: the loader stopped unexpectedly"

    job._thread = threading.Thread(target=watch, name="upload-watch", daemon=True)
    job._thread.start()
    return job


if __name__ == "__main__":  # python -m server.uploads <fd> <file> <name> <symbol or ""> <dataset> <db> <max bytes>
    fd, path_arg, name_arg, symbol_arg, dataset_arg, db_arg, max_arg = sys.argv[1:8]
    _server = os.getppid()

    def _orphaned() -> None:  # the server is gone: nobody watches this loader's memory any more
        while os.getppid() == _server:
            time.sleep(1.0)
        Path(path_arg).unlink(missing_ok=True)
        os._exit(3)

    threading.Thread(target=_orphaned, name="upload-orphan-watch", daemon=True).start()
    _worker(path_arg, name_arg, symbol_arg or None, dataset_arg, db_arg, int(max_arg), Connection(int(fd)))
