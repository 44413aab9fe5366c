"""Start the real server (``streamlit run app.py``) for a test, as a user would, and stop it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str
    port: int
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def serve_app(env: dict[str, str], log_path: Path, args: tuple[str, ...] = (), headers: dict[str, str] | None = None,
              wait: bool = True, timeout_s: float = 90.0) -> Iterator[Served]:
    """``streamlit run app.py --server.port <free>`` with ``env`` added; waits until ``/_stcore/health`` answers."""
    port = free_port()
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), *args],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    served = Served(f"http://127.0.0.1:{port}", port, proc, log_path)
    try:
        if wait:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {proc.returncode}:\n{served.log()[-3000:]}")
                try:
                    req = urllib.request.Request(f"{served.url}/_stcore/health", headers=headers or {})
                    urllib.request.urlopen(req, timeout=1)
                    break
                except OSError:
                    time.sleep(0.3)
            else:
                raise RuntimeError(f"the server did not start:\n{served.log()[-3000:]}")
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
