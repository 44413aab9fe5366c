"""Shared fixtures: the real Binance recordings and a temporary settings object."""

from __future__ import annotations

import os
import sys
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
