"""Universe helpers over the loopback exchange: exchangeInfo filtering, 24 h volume ranking, funding history paging."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest.rest import RestClient, perpetual_universe
from tests.fakebinance import FakeBinance
from tests.recordings import funding_history, multi_bars


def _contract(symbol: str, **kw) -> dict:
    base = symbol[:-4]
    return {"symbol": symbol, "pair": symbol, "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": base,
            "quoteAsset": "USDT", "marginAsset": "USDT", "underlyingType": "COIN", "underlyingSubType": [], **kw}


def test_tradable_perpetuals_ranked_by_real_24h_quote_volume(data_dir):
    closes, volume = multi_bars(data_dir, "close").dropna(), multi_bars(data_dir, "volume").dropna()
    last_day = (closes * volume).iloc[-1440:].sum()  # quote volume of the last 24 h of real bars
    fake = FakeBinance({})
    fake.exchange_symbols = [_contract(s) for s in closes.columns] + [
        _contract("OLDUSDT", status="SETTLING"),  # delisting
        _contract("BTCUSDT_251226", contractType="CURRENT_QUARTER"),  # a dated future
        _contract("BTCUSDC", quoteAsset="USDC"),
        _contract("XAUUSDT", underlyingType="COMMODITY", underlyingSubType=["TradFi"]),  # trades in sessions
    ]
    fake.tickers = [{"symbol": s, "quoteVolume": f"{v:.2f}", "lastPrice": "1"} for s, v in last_day.items()] + [
        {"symbol": "XAUUSDT", "quoteVolume": "1000.00"}]
    with fake:
        client = RestClient(fake.rest_url)
        uni = perpetual_universe(client.exchange_info(), client.tickers_24h())
    assert set(uni["symbol"]) == set(closes.columns) | {"XAUUSDT"}
    assert uni.set_index("symbol").loc["XAUUSDT", "sessions"] and not uni.set_index("symbol").loc["BTCUSDT", "sessions"]
    top5 = perpetual_universe({"symbols": fake.exchange_symbols}, fake.tickers, top=5)
    assert list(top5["symbol"]) == list(last_day.sort_values(ascending=False).index[:5])
    assert np.allclose(top5["quote_volume_24h"], last_day.sort_values(ascending=False).iloc[:5].round(2))


def test_funding_history_is_paged_and_exact(data_dir):
    btc = funding_history(data_dir, "BTCUSDT")
    assert len(btc) > 1000  # more than one page
    fake = FakeBinance({})
    fake.set_funding({"BTCUSDT": btc})
    with fake:
        got = RestClient(fake.rest_url).funding_rates("BTCUSDT", int(btc.index[0].value // 1_000_000))
    assert got.index.equals(pd.DatetimeIndex(btc.index, name="time"))
    assert np.allclose(got["funding_rate"].to_numpy(), btc.to_numpy(), rtol=0, atol=5e-9)  # served with 8 decimals
