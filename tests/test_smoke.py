"""Every package imports; analytics stays pure; the app renders its empty state offline."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ["config", "analytics", "storage", "ingest", "pairs", "alerts", "server", "ui"]
FORBIDDEN = {
    "analytics": {"streamlit", "storage", "ingest", "pairs", "alerts", "server", "ui", "sqlite3", "socket", "websocket", "requests",
                  "urllib"},
    # storage talks to its database (SQLite, its writer child over a socket pair, PostgreSQL), never to an exchange
    "storage": {"streamlit", "ingest", "pairs", "alerts", "analytics", "server", "ui", "websocket", "requests", "http"},
    "ingest": {"streamlit", "analytics", "pairs", "alerts", "server", "ui"},
    # the pair-view layer: above storage and analytics, below server and ui, beside alerts
    "pairs": {"streamlit", "ingest", "alerts", "server", "ui", "socket", "websocket", "urllib"},
    "alerts": {"streamlit", "ingest", "server", "ui"},
    "server": {"streamlit", "ui"},
}
SOURCE_DIRS = ["analytics", "storage", "ingest", "pairs", "alerts", "server", "ui", "benchmarks", "scripts"]


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


def _modules() -> list[str]:
    out = ["app", "cli", "config"]
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            out.append(".".join(p for p in rel.parts if p != "__init__"))
    return out


@pytest.mark.parametrize("module", [m for m in _modules() if m not in ("app",) and not m.startswith("scripts.")])
def test_every_module_imports(module):
    """Not just each package's ``__init__``: a module nothing imports at start-up still has to import."""
    importlib.import_module(module)


def _import_graph() -> dict[str, set[str]]:
    """Module → project modules it imports (module level and inside functions alike)."""
    known = set(_modules())
    graph: dict[str, set[str]] = {}
    for mod in known:
        path = ROOT / (mod.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / mod.replace(".", "/") / "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                if n in known and n != mod:
                    deps.add(n)
        graph[mod] = deps
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the module graph, or None. A package and its own modules do not count (``__init__``
    re-exports them, and they import siblings through it)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d.startswith(m + ".") or m.startswith(d + "."):
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle():
    """Module by module (imports inside functions count: they only hide a cycle)."""
    assert _find_cycle({"a.x": {"a.y"}, "a.y": {"b.z"}, "b.z": {"a.x"}}) == ["a.x", "a.y", "b.z", "a.x"]  # the finder finds
    assert _find_cycle({"a": {"a.x"}, "a.x": {"a"}}) is None
    cycle = _find_cycle(_import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


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
