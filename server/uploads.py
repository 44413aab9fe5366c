"""Uploads parsed and saved in a separate, bounded worker process.

One upload is one or more files (e.g. the two legs of a pair, one file per
symbol) loaded into one dataset — replacing a dataset of that name, or adding
their legs to it (``mode="add"``). A hostile or merely huge file must not starve or kill ingestion: parsing runs
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
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal

__all__ = ["UploadJob", "UploadMode", "start_upload"]

UploadMode = Literal["replace", "add"]

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


def _worker(manifest: dict, conn) -> None:
    """Child process: parse the manifest's files and save them as one dataset; report through ``conn``."""
    with contextlib.suppress(OSError):
        os.nice(10)
    files = manifest["files"]
    label = ", ".join(name for _, name in files)
    try:
        from ingest.files import FileFormatError, load_bytes, merge_loaded
        from storage.datasets import DatasetStore

        loaded = []
        for i, (path, name) in enumerate(files):
            data = Path(path).read_bytes()
            loaded.append(load_bytes(name, data, manifest["symbol"], max_bytes=manifest["max_bytes"],
                                     progress=lambda f, i=i: conn.send(("progress", 0.8 * (i + f) / len(files), "parsing"))))
            del data
        merged = merge_loaded(loaded)
        store = DatasetStore(manifest["db"])
        rows = store.save(manifest["dataset"], merged.kind, merged.frames, source=label, detail=merged.report.summary(),
                          batch_rows=BATCH_ROWS, progress=lambda f: conn.send(("progress", 0.8 + 0.2 * f, "saving")),
                          mode=manifest["mode"])
        info = store.info(manifest["dataset"]) or {}
        conn.send(("done", rows, merged.report.summary(), sorted(merged.frames),
                   {"kind": merged.kind, "native_ms": store.native_ms(manifest["dataset"]), "symbols": list(info.get("symbols", []))}))
    except FileFormatError as exc:
        conn.send(("error", str(exc)))
    except ValueError as exc:  # e.g. bars added to a tick dataset
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("error", f"{label}: the files need more memory than this server allows for an upload"))
    except Exception as exc:  # the parent shows a message, never a traceback
        conn.send(("error", f"{label}: could not be loaded ({type(exc).__name__}: {str(exc)[:200]})"))
    finally:
        conn.close()


@dataclass
class UploadJob:
    """One upload being processed; ``state`` is running / done / error."""

    filename: str  # the files' names, comma-separated
    dataset: str
    size: int
    mode: str = "replace"
    state: str = "running"
    progress: float = 0.0
    stage: str = "starting"
    message: str = ""
    rows: int = 0
    symbols: list[str] = field(default_factory=list)  # the symbols these files held
    kind: str = ""  # "ticks" or "bars"
    native_ms: int | None = None  # bar length of a bars dataset
    dataset_symbols: list[str] = field(default_factory=list)  # every leg of the dataset after the load
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


def start_upload(files: Sequence[tuple[str, bytes]], dataset: str, db_path: Path, symbol: str | None = None,
                 mode: UploadMode = "replace", max_bytes: int = 500 * 1024 * 1024, time_limit_s: float = 900.0) -> UploadJob:
    """Start parsing ``files`` (``(file name, bytes)`` each) into dataset ``dataset`` in a worker process.

    Returns at once (poll the job). ``mode``: ``"replace"`` the dataset of that name, or
    ``"add"`` the files' symbols as legs of it. ``symbol`` names the symbol of files whose
    columns and names do not say.
    """
    label = ", ".join(name for name, _ in files)
    size = sum(len(data) for _, data in files)
    job = UploadJob(label, dataset, size, mode=mode)
    if not files:
        job.state, job.message = "error", "no file to load"
        return job
    if size > max_bytes:
        job.state, job.message = "error", f"{label}: {size / 1e6:.0f} MB is over the {max_bytes / 1e6:.0f} MB limit"
        return job
    if any("\x00" in text for text in (dataset, symbol or "", *(name for name, _ in files))):
        job.state, job.message = "error", f"{label.replace(chr(0), '?')}: a name holds a NUL byte"
        return job
    folder = Path(db_path).parent if Path(db_path).parent.exists() else None
    tmp = Path(tempfile.mkdtemp(prefix="alphastream-upload-", dir=str(folder) if folder else None))
    paths = []
    for i, (_, data) in enumerate(files):
        path = tmp / f"{i}.bin"
        path.write_bytes(data)
        paths.append(str(path))
    manifest = {"files": [[p, name] for p, (name, _) in zip(paths, files, strict=True)], "symbol": symbol or None,
                "dataset": dataset, "db": str(db_path), "max_bytes": int(max_bytes), "mode": mode}
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    a, b = socket.socketpair()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.uploads", str(b.fileno()), str(tmp / "manifest.json")],
            pass_fds=[b.fileno()], env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        a.close()
        shutil.rmtree(tmp, ignore_errors=True)
        job.state, job.message = "error", f"{label}: the loader could not start ({exc.strerror or exc})"
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
                        job.kind, job.native_ms, job.dataset_symbols = msg[4]["kind"], msg[4]["native_ms"], list(msg[4]["symbols"])
                        job.progress, job.state = 1.0, "done"
                        break
                    else:
                        job.state, job.message = "error", str(msg[1])
                        break
                job.peak_rss = max(job.peak_rss, _rss_bytes(proc.pid))
                if job.peak_rss > job.memory_cap:
                    proc.kill()
                    job.state = "error"
                    job.message = (f"{label}: parsing needed more than {job.memory_cap / 1e6:,.0f} MB (3× the file plus "
                                   f"{BASE_MEMORY / 1e6:.0f} MB) and was stopped; nothing was saved")
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    job.state, job.message = "error", f"{label}: loading took over {time_limit_s:.0f} s and was stopped"
                    break
                if proc.poll() is not None and not parent.poll(0):
                    job.state, job.message = "error", f"{label}: the loader stopped unexpectedly (exit code {proc.returncode})"
                    break
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            parent.close()
            shutil.rmtree(tmp, ignore_errors=True)
            if job.state == "running":
                job.state, job.message = "error", f"{label}: the loader stopped unexpectedly"

    job._thread = threading.Thread(target=watch, name="upload-watch", daemon=True)
    job._thread.start()
    return job


if __name__ == "__main__":  # python -m server.uploads <fd> <manifest.json>
    fd, manifest_path = sys.argv[1:3]
    _server = os.getppid()
    _manifest = json.loads(Path(manifest_path).read_text())

    def _orphaned() -> None:  # the server is gone: nobody watches this loader's memory any more
        while os.getppid() == _server:
            time.sleep(1.0)
        shutil.rmtree(Path(manifest_path).parent, ignore_errors=True)
        os._exit(3)

    threading.Thread(target=_orphaned, name="upload-orphan-watch", daemon=True).start()
    _worker(_manifest, Connection(int(fd)))
