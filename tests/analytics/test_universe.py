"""Universe scanner: the batch kernel against the per-pair reference, error control, stability and liquidity filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.tsa.stattools import coint

from analytics.stationarity import engle_granger
from analytics.universe import engle_granger_batch, scan_universe
from tests.recordings import multi_bars


def test_batch_engle_granger_equals_the_per_pair_test_on_real_bars(data_dir):
    closes = multi_bars(data_dir).dropna().iloc[-2000:]
    series = np.log(closes.to_numpy()).T.copy()
    n = series.shape[0]
    ys, xs = np.array([(i, j) for i in range(n) for j in range(n) if i != j]).T
    batch = engle_granger_batch(series, ys, xs)
    assert len(batch) == 240
    for k in range(len(batch)):
        ref = engle_granger(series[ys[k]], series[xs[k]])
        assert batch.at[k, "lags"] == ref.lags
        assert abs(batch.at[k, "statistic"] - ref.statistic) < 1e-9 * max(1.0, abs(ref.statistic))
        assert abs(batch.at[k, "pvalue"] - ref.pvalue) < 1e-9
        assert abs(batch.at[k, "beta"] - ref.beta) < 1e-9
    for k in (0, 37, 111, 239):  # and statsmodels itself
        stat, p, _ = coint(series[ys[k]], series[xs[k]], trend="c", autolag="aic")
        assert abs(batch.at[k, "statistic"] - stat) < 1e-8 and abs(batch.at[k, "pvalue"] - p) < 1e-8


def _walks(rng, n_sym: int, n: int) -> np.ndarray:
    return np.cumsum(rng.normal(0, 0.01, (n, n_sym)), axis=0)


def _ar1(rng, n: int, phi: float, sd: float) -> np.ndarray:
    s = np.zeros(n)
    eps = rng.normal(0, sd, n)
    for t in range(1, n):
        s[t] = phi * s[t - 1] + eps[t]
    return s


def test_stability_filter_keeps_lasting_pairs_and_drops_regimes_monte_carlo():
    """Per scan: 10 independent random walks, one lasting cointegrated pair and one that is cointegrated
    in the first half only (its spread becomes a random walk). 20 scans."""
    rng = np.random.default_rng(7)
    n = 2000
    found = regime_flagged = regime_q = false = 0
    for _ in range(20):
        walks = _walks(rng, 12, n)
        cols = {f"R{i}USDT": walks[:, i] for i in range(10)}
        cols["AUSDT"] = walks[:, 10]
        cols["BUSDT"] = 0.8 * walks[:, 10] + _ar1(rng, n, 0.95, 0.004)
        spread = np.concatenate([_ar1(rng, n // 2, 0.9, 0.004), np.cumsum(rng.normal(0, 0.004, n - n // 2))])
        spread[n // 2 :] += spread[n // 2 - 1]
        cols["CUSDT"] = walks[:, 11]
        cols["DUSDT"] = walks[:, 11] + spread
        closes = pd.DataFrame({k: 100 * np.exp(v) for k, v in cols.items()})
        out = scan_universe(closes, formation_bars=n)
        assert len(out) == 14 * 13 // 2
        key = {frozenset((r.y, r.x)): r for r in out.itertuples()}
        found += bool(key[frozenset(("AUSDT", "BUSDT"))].flagged)
        regime = key[frozenset(("CUSDT", "DUSDT"))]
        regime_q += bool(regime.qvalue < 0.05)
        regime_flagged += bool(regime.flagged)
        false += int(out[out["flagged"]].apply(lambda r: {r.y, r.x} not in ({"AUSDT", "BUSDT"}, {"CUSDT", "DUSDT"}), axis=1).sum())
    assert found >= 18, found  # the lasting pair is kept
    assert regime_flagged <= max(2, regime_q // 4), (regime_flagged, regime_q)  # the regime is dropped
    assert false <= 1, false  # random walks: (almost) never a discovery


def test_liquidity_filter_and_untestable_symbols_are_listed_not_tested(data_dir):
    closes = multi_bars(data_dir).dropna().iloc[-3000:]
    closes["EMPTYUSDT"] = np.nan
    volume = pd.Series({s: 1e9 for s in closes.columns})
    volume["XMRUSDT"] = 1e3
    out = scan_universe(closes, quote_volume=volume, min_quote_volume=1e6)
    assert len(out) == 17 * 16 // 2
    xmr = out[(out["y"] == "XMRUSDT") | (out["x"] == "XMRUSDT")]
    assert xmr["pvalue"].isna().all() and xmr["note"].str.contains("illiquid").all()
    empty = out[(out["y"] == "EMPTYUSDT") | (out["x"] == "EMPTYUSDT")]
    assert empty["pvalue"].isna().all() and empty["note"].str.contains("EMPTYUSDT: too few bars").all()
    tested = out["pvalue"].notna().sum()
    assert tested == 15 * 14 // 2
    assert out.loc[out["flagged"], "qvalue"].lt(0.05).all()
