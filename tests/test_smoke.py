"""Every package imports; analytics stays pure; the app renders its empty state offline."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ["config", "analytics", "storage", "ingest", "alerts", "server", "ui"]
FORBIDDEN = {
    "analytics": {"streamlit", "storage", "ingest", "alerts", "ui", "sqlite3", "socket", "websocket", "requests", "urllib"},
    # storage talks to its database (SQLite, its writer child over a socket pair, PostgreSQL), never to an exchange
    "storage": {"streamlit", "ingest", "alerts", "analytics", "ui", "websocket", "requests", "http"},
    "ingest": {"streamlit", "analytics", "alerts", "ui"},
    "alerts": {"streamlit", "ingest", "ui"},
    "server": {"streamlit", "ui"},
}


@pytest.mark.parametrize("name", PACKAGES)
def test_package_imports_and_documents_itself(name):
    mod = importlib.import_module(name)
    assert mod.__doc__ and len(mod.__doc__.split()) > 15, f"{name} needs a module docstring"


@pytest.mark.parametrize("package,forbidden", sorted(FORBIDDEN.items()))
def test_package_never_imports_what_it_must_not(package, forbidden):
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {n}"


def test_config_rejects_bad_values_naming_the_variable():
    import config

    s = config.load_settings({"ALPHASTREAM_SYMBOLS": "btcusdt, ethusdt ,solusdt"})
    assert s.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert config.load_settings({}).ws_url == "wss://fstream.binance.com/market"
    for name, value in [
        ("ALPHASTREAM_SYMBOLS", "btc-usdt"),
        ("ALPHASTREAM_SYMBOLS", " , "),
        ("ALPHASTREAM_WS_URL", "http://example.com"),
        ("ALPHASTREAM_REST_URL", "not a url"),
        ("ALPHASTREAM_HISTORY_URL", "ftp://x"),
        ("ALPHASTREAM_REFRESH_MS", "fast"),
        ("ALPHASTREAM_DB_PATH", " "),
        ("ALPHASTREAM_INGEST_ENABLED", "maybe"),
    ]:
        with pytest.raises(config.ConfigError, match=name):
            config.load_settings({name: value})
    assert config.load_settings({"ALPHASTREAM_DB_PATH": "/tmp/x.sqlite"}).db_path == Path("/tmp/x.sqlite")
