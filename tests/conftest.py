"""Shared fixtures: the real Binance recordings and a temporary settings object."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _find_data_dir() -> Path:
    candidates = [os.environ.get("ALPHASTREAM_TEST_DATA", ""), ROOT.parent / "shared" / "data" / "binance"]
    for c in candidates:
        if c and (Path(c) / "README.md").exists():
            return Path(c)
    raise RuntimeError(
        "Real Binance test data not found: expected ../shared/data/binance next to the repository "
        "or ALPHASTREAM_TEST_DATA pointing at it."
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _find_data_dir()


@pytest.fixture(scope="session")
def minute_bars(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real 1-minute BTCUSDT and ETHUSDT bars (50,000 each, aligned)."""
    kw = {"parse_dates": ["timestamp"], "index_col": "timestamp"}
    btc = pd.read_csv(data_dir / "BTCUSDT_1m_2025-01-01_2025-02-04.csv", **kw)
    eth = pd.read_csv(data_dir / "ETHUSDT_1m_2025-01-01_2025-02-04.csv", **kw)
    return btc, eth


@pytest.fixture
def vision(data_dir):
    """A local data.binance.vision serving the real aggTrades file, zipped by the test."""
    raw = (data_dir / "BTCUSD_PERP-aggTrades-2026-05-08.csv").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BTCUSDT-aggTrades-2026-05-08.csv", raw)
    files = {"/data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2026-05-08.zip": buf.getvalue()}
    good = hashlib.sha256(buf.getvalue()).hexdigest()
    files["/data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2026-05-08.zip.CHECKSUM"] = f"{good}  BTCUSDT-aggTrades-2026-05-08.zip\n".encode()
    hits: list[str] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", files, hits, raw
    srv.shutdown()
    srv.server_close()


PG_URL = os.environ.get("ALPHASTREAM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def schema_url(base: str, schema: str) -> str:
    """``base`` with the search path set to ``schema`` (every table the app creates lands there)."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url():
    """A fresh schema in the test PostgreSQL (``ALPHASTREAM_TEST_DATABASE_URL``), dropped afterwards.

    Fails — never skips — when the server is unreachable: ``make test`` starts or installs it
    (``scripts/ensure_postgres.sh``).
    """
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable ({exc}); run `sh scripts/ensure_postgres.sh` "
                    "or set ALPHASTREAM_TEST_DATABASE_URL", pytrace=False)
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(PG_URL, schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '10s'")
            try:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            except psycopg.errors.LockNotAvailable:  # a session of this test outlived it (a killed process's)
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'alphastream%'"
                             " AND pid <> pg_backend_pid() AND datname = current_database()")
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
