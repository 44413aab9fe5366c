"""Universe scanner: Engle-Granger on every pair of a universe at once, with error control and filters.

:func:`scan_universe` scans all ``n (n-1) / 2`` pairs of a universe — 1,225 pairs for
50 symbols — in one compiled, parallel pass (:mod:`analytics._eg_batch`; identical
statistics and lags to :func:`analytics.stationarity.engle_granger`, which matches
statsmodels ``coint``), then applies, in order:

* **both directions**: a pair's p-value is the worse of y-on-x and x-on-y (as
  :func:`analytics.scanner.scan_pairs`);
* **false discovery rate**: Benjamini-Yekutieli q-values over every pair tested;
* **liquidity**: symbols whose quote volume (e.g. Binance 24 h ``quoteVolume``, or
  the bars' own) is below ``min_quote_volume`` are listed but not tested, so they
  do not enter the multiple-testing count;
* **stability**: a discovery must also be cointegrated (both directions, p below
  ``stability_p``) in *each half* of the formation window — a relation that
  only held in one half is a regime, not a pair.

``flagged`` = q < ``q_level`` and stable. All on the formation window (the last
``formation_bars`` bars where every tested symbol has a bar); nothing here looks
beyond the data it is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.tsa.adfvalues import mackinnonp

from analytics._eg_batch import default_maxlag, eg_batch
from analytics.diagnostics import MIN_DIAGNOSTIC_BARS
from analytics.scanner import fdr_qvalues

__all__ = ["UNIVERSE_COLUMNS", "engle_granger_batch", "scan_universe"]

UNIVERSE_COLUMNS = ["y", "x", "pvalue", "qvalue", "flagged", "stable", "pvalue_first_half", "pvalue_second_half", "half_life_bars",
                    "beta", "n_bars", "pvalue_y_on_x", "pvalue_x_on_y", "note"]


def engle_granger_batch(series: np.ndarray, ys: np.ndarray, xs: np.ndarray, maxlag: int | None = None) -> pd.DataFrame:
    """Engle-Granger (constant, ADF lag by AIC) for ordered pairs of ``series`` (symbols × time, no NaN).

    Returns one row per pair: ``statistic``, ``pvalue`` (MacKinnon, N = 2), ``lags``, ``beta``, ``alpha``.
    """
    arr = np.ascontiguousarray(series, dtype=np.float64)
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise ValueError("engle_granger_batch: expected a finite symbols × time matrix")
    t = arr.shape[1]
    if t < 10:
        raise ValueError(f"engle_granger_batch needs at least 10 observations, got {t}")
    lag = default_maxlag(t) if maxlag is None else int(maxlag)
    stat, lags, beta, alpha = eg_batch(arr, np.asarray(ys, dtype=np.int64), np.asarray(xs, dtype=np.int64), lag)
    pval = np.array([float(mackinnonp(s, regression="c", N=2)) if np.isfinite(s) or s == -np.inf else np.nan for s in stat])
    return pd.DataFrame({"statistic": stat, "pvalue": pval, "lags": lags, "beta": beta, "alpha": alpha})


def _half_lives(series: np.ndarray, ys: np.ndarray, xs: np.ndarray, beta: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """AR(1) half-life (bars) of each pair's residual ``y - a - b x``: ``-ln 2 / ln(1 + φ)`` from Δe on e."""
    e = series[ys] - alpha[:, None] - beta[:, None] * series[xs]
    lag, de = e[:, :-1], np.diff(e, axis=1)
    lag = lag - lag.mean(axis=1, keepdims=True)
    de = de - de.mean(axis=1, keepdims=True)
    phi = (lag * de).sum(axis=1) / (lag * lag).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = -np.log(2.0) / np.log1p(phi)
    return np.where(phi >= 0, np.inf, np.where(phi > -1, hl, np.nan))  # as analytics.half_life


def scan_universe(
    closes: pd.DataFrame,
    formation_bars: int = 2000,
    log_prices: bool = True,
    quote_volume: pd.Series | None = None,
    min_quote_volume: float = 0.0,
    stability_p: float = 0.05,
    q_level: float = 0.05,
    min_bars: int = MIN_DIAGNOSTIC_BARS,
) -> pd.DataFrame:
    """Scan every unordered pair of ``closes`` (one column per symbol; see the module docstring).

    Parameters
    ----------
    closes
        Raw close prices on one time index (NaN where a symbol has no bar).
    formation_bars
        The most recent rows where every tested symbol has a bar.
    quote_volume
        Per symbol, the traded quote volume the liquidity filter compares with ``min_quote_volume``.

    Returns
    -------
    DataFrame
        :data:`UNIVERSE_COLUMNS`, one row per unordered pair, flagged pairs first then by q-value.
    """
    symbols = list(closes.columns)
    notes: dict[str, str] = {}
    if quote_volume is not None and min_quote_volume > 0:
        for s in symbols:
            v = float(quote_volume.get(s, np.nan))
            if not v >= min_quote_volume:
                notes[s] = f"illiquid: quote volume {v:,.0f} < {min_quote_volume:,.0f}"
    window = closes[[s for s in symbols if s not in notes]]
    window = window.dropna(axis=1, thresh=min(len(window), formation_bars) // 2)  # nearly empty columns leave
    for s in symbols:
        if s not in window.columns and s not in notes:
            notes[s] = "too few bars"
    window = window.dropna().iloc[-formation_bars:]
    if log_prices and len(window.columns):
        positive = (window > 0).all()
        for s in window.columns[~positive]:
            notes[s] = "non-positive price: no log"
        window = np.log(window.loc[:, positive])
    tested = list(window.columns) if len(window) >= min_bars else []
    if len(window) < min_bars:
        for s in window.columns:
            notes.setdefault(s, f"only {len(window)} common bars (< {min_bars})")
    idx = {s: i for i, s in enumerate(tested)}
    pairs = [(a, b) for i, a in enumerate(symbols) for b in symbols[i + 1 :]]
    rows = pd.DataFrame({"y": [a for a, _ in pairs], "x": [b for _, b in pairs]})
    for c in UNIVERSE_COLUMNS[2:]:
        rows[c] = np.nan
    rows["note"] = ["; ".join(f"{s}: {notes[s]}" for s in (a, b) if s in notes) for a, b in pairs]
    rows["n_bars"] = len(window) if tested else 0
    rows["flagged"] = False
    rows["stable"] = False
    ok = np.array([a in idx and b in idx for a, b in pairs], dtype=bool)
    if ok.any():
        series = window.to_numpy().T.copy()
        ia = np.array([idx[a] for a, _ in np.array(pairs, dtype=object)[ok]])
        ib = np.array([idx[b] for _, b in np.array(pairs, dtype=object)[ok]])
        fwd = engle_granger_batch(series, ia, ib)
        rev = engle_granger_batch(series, ib, ia)
        pick_fwd = (fwd["statistic"].to_numpy() <= rev["statistic"].to_numpy())
        best = pd.DataFrame({c: np.where(pick_fwd, fwd[c].to_numpy(), rev[c].to_numpy()) for c in fwd.columns})
        ys = np.where(pick_fwd, ia, ib)
        xs = np.where(pick_fwd, ib, ia)
        sub = rows.loc[ok].copy()
        sub["y"] = [tested[i] for i in ys]
        sub["x"] = [tested[i] for i in xs]
        sub["pvalue"] = np.maximum(fwd["pvalue"].to_numpy(), rev["pvalue"].to_numpy())
        sub["pvalue_y_on_x"] = best["pvalue"].to_numpy()
        sub["pvalue_x_on_y"] = np.where(pick_fwd, rev["pvalue"].to_numpy(), fwd["pvalue"].to_numpy())
        sub["beta"] = best["beta"].to_numpy()
        sub["half_life_bars"] = _half_lives(series, ys, xs, best["beta"].to_numpy(), best["alpha"].to_numpy())
        rows.loc[ok, sub.columns] = sub
    rows["qvalue"] = fdr_qvalues(rows["pvalue"].to_numpy())
    cand = np.flatnonzero(rows["qvalue"].to_numpy() < q_level)
    if len(cand):  # stability: each half of the window on its own, both directions
        series = window.to_numpy().T.copy()
        half = series.shape[1] // 2
        ia = np.array([idx[v] for v in rows["y"].to_numpy()[cand]])
        ib = np.array([idx[v] for v in rows["x"].to_numpy()[cand]])
        for col, part in (("pvalue_first_half", series[:, :half]), ("pvalue_second_half", series[:, half:])):
            part = np.ascontiguousarray(part)
            p = np.maximum(engle_granger_batch(part, ia, ib)["pvalue"].to_numpy(), engle_granger_batch(part, ib, ia)["pvalue"].to_numpy())
            rows.loc[cand, col] = p
        stable = (rows.loc[cand, "pvalue_first_half"] < stability_p) & (rows.loc[cand, "pvalue_second_half"] < stability_p)
        rows.loc[cand, "stable"] = stable.to_numpy()
        rows.loc[cand, "flagged"] = stable.to_numpy()
    rows["n_bars"] = rows["n_bars"].astype("int64")
    rows["flagged"] = rows["flagged"].astype(bool)
    rows["stable"] = rows["stable"].astype(bool)
    for c in ("pvalue", "qvalue", "pvalue_first_half", "pvalue_second_half", "half_life_bars", "beta", "pvalue_y_on_x", "pvalue_x_on_y"):
        rows[c] = rows[c].astype(float)
    rows = rows[UNIVERSE_COLUMNS]
    return rows.sort_values(["flagged", "qvalue", "pvalue"], ascending=[False, True, True], na_position="last",
                            kind="mergesort").reset_index(drop=True)
