"""Property test: changing data after bar t changes no output at or before t."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import PairParams, backtest, kalman_hedge, pair_analytics, rolling_huber, rolling_ols, spread, zscore

N = 160


def _pair(seed: int) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    y = 50 * np.exp(0.8 * np.log(x / 100) + rng.normal(0, 0.004, N))
    idx = pd.date_range("2025-01-01", periods=N, freq="1s")
    return pd.Series(y, index=idx), pd.Series(x, index=idx)


def _equal_upto(a: pd.DataFrame | pd.Series, b: pd.DataFrame | pd.Series, t: int) -> None:
    pd.testing.assert_frame_equal(pd.DataFrame(a).iloc[: t + 1], pd.DataFrame(b).iloc[: t + 1], check_exact=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(30, N - 3), seed2=st.integers(0, 10_000))
def test_no_output_at_or_before_t_depends_on_later_data(seed, t, seed2):
    y, x = _pair(seed)
    y2, x2 = y.copy(), x.copy()
    rng = np.random.default_rng(seed2)
    y2.iloc[t + 1 :] *= np.exp(rng.normal(0, 0.05, N - t - 1))
    x2.iloc[t + 1 :] *= np.exp(rng.normal(0, 0.05, N - t - 1))

    for fn in (lambda a, b: rolling_ols(a, b, 20), lambda a, b: rolling_huber(a, b, 20), kalman_hedge):
        _equal_upto(fn(np.log(y), np.log(x)), fn(np.log(y2), np.log(x2)), t)

    h1, h2 = rolling_ols(y, x, 20), rolling_ols(y2, x2, 20)
    s1, s2 = spread(y, x, h1), spread(y2, x2, h2)
    _equal_upto(s1, s2, t)
    _equal_upto(zscore(s1, 20), zscore(s2, 20), t)

    for method in ("OLS", "Kalman", "Huber"):
        params = PairParams(window=20, method=method, entry=1.0, kalman_obs_var=1e-5)
        p1, p2 = pair_analytics(y, x, params), pair_analytics(y2, x2, params)
        _equal_upto(p1, p2, t)
        b1 = backtest(p1.price_y, p1.price_x, p1.zscore, p1, entry=1.0, price_space="log")
        b2 = backtest(p2.price_y, p2.price_x, p2.zscore, p2, entry=1.0, price_space="log")
        _equal_upto(b1.equity, b2.equity, t)
        entry_cols = ["entry_time", "side", "beta", "qty_y", "qty_x", "entry_price_y", "entry_price_x", "entry_z"]
        e1 = b1.trades[b1.trades.entry_time <= y.index[t]][entry_cols].reset_index(drop=True)
        e2 = b2.trades[b2.trades.entry_time <= y.index[t]][entry_cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(e1, e2, check_exact=True, check_dtype=False)
