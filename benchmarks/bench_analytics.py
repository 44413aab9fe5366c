"""Analytics kernels vs the obvious alternatives (statsmodels, plain Python loops)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS
from statsmodels.tsa.stattools import adfuller

import analytics
from benchmarks.harness import Row, median_time


def _walks(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.log(60_000) + np.cumsum(rng.normal(0, 1e-3, n))
    y = 0.8 * x + 0.5 + rng.normal(0, 1e-3, n)
    return y, x


def bench_rolling_ols(quick: bool) -> list[Row]:
    n, w = (100_000, 500) if quick else (1_000_000, 500)
    y, x = _walks(n)
    ours = median_time(lambda: analytics.rolling_ols(y, x, w), repeat=5)
    t0 = time.perf_counter()
    RollingOLS(y, sm.add_constant(x), window=w).fit()
    alt = time.perf_counter() - t0
    return [Row(f"rolling_ols n={n:,} w={w}", ours, "statsmodels RollingOLS", alt)]


def _python_kalman(y: np.ndarray, x: np.ndarray, delta: float, ve: float) -> None:
    theta = np.zeros(2)
    p = np.eye(2)
    vw = delta / (1 - delta) * np.eye(2)
    for t in range(len(y)):
        r = p + vw
        h = np.array([x[t], 1.0])
        e = y[t] - h @ theta
        q = h @ r @ h + ve
        k = r @ h / q
        theta = theta + k * e
        p = r - np.outer(k, h) @ r


def bench_kalman(quick: bool) -> list[Row]:
    n = 1_000_000
    y, x = _walks(n)
    ours = median_time(lambda: analytics.kalman_hedge(y, x), repeat=7)
    m = 20_000 if quick else 100_000
    t0 = time.perf_counter()
    _python_kalman(y[:m], x[:m], 1e-4, 1e-3)
    alt = (time.perf_counter() - t0) * n / m
    return [Row(f"kalman_hedge n={n:,}", ours, f"NumPy-per-step loop (timed on {m:,}, scaled)", alt)]


def bench_rolling_huber(quick: bool) -> list[Row]:
    n, w = (20_199 if quick else 100_199), 200
    y, x = _walks(n, seed=1)
    ours = median_time(lambda: analytics.rolling_huber(y, x, w), repeat=3)
    k = 200
    ends = np.linspace(w - 1, n - 1, k).astype(int)
    t0 = time.perf_counter()
    norm = sm.robust.norms.HuberT()
    for e in ends:
        sm.RLM(y[e - w + 1 : e + 1], sm.add_constant(x[e - w + 1 : e + 1]), M=norm).fit()
    alt = (time.perf_counter() - t0) / k * (n - w + 1)
    return [Row(f"rolling_huber {n - w + 1:,} windows w={w}", ours, f"statsmodels RLM per window ({k} timed, scaled)", alt)]


def bench_adf(quick: bool) -> list[Row]:
    n = 20_000 if quick else 100_000
    _, x = _walks(n, seed=2)
    ours = median_time(lambda: analytics.adf(x), repeat=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        adfuller(x, autolag="AIC")
        alt = time.perf_counter() - t0
    return [Row(f"adf autolag=AIC n={n:,}", ours, "statsmodels adfuller", alt)]


def bench_pair_analytics(quick: bool) -> list[Row]:
    import pandas as pd

    n = 86_400
    y, x = _walks(n, seed=3)
    idx = pd.date_range("2025-01-01", periods=n, freq="1s")
    py, px = pd.Series(np.exp(y), index=idx), pd.Series(np.exp(x), index=idx)
    params = analytics.PairParams(window=100, method="OLS")
    ours = median_time(lambda: analytics.pair_analytics(py, px, params), repeat=5)
    return [Row("pair_analytics 86,400 1s bars (OLS, z, corr)", ours, "-", None, "budget 150 ms per live refresh")]


SUITE = [bench_rolling_ols, bench_kalman, bench_rolling_huber, bench_adf, bench_pair_analytics]
