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

``flagged`` = q < ``q_level`` and stable. Each pair is tested on its own
formation window — the last ``formation_bars`` bars where *both* of its legs have a
price (``n_bars``; a recently listed symbol shortens only its own pairs, and says
so in ``note``) — pairs sharing a window run in one batch. Nothing here looks
beyond the data it is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.tsa.adfvalues import mackinnonp

from analytics._eg_batch import default_maxlag, eg_batch
from analytics.diagnostics import MIN_DIAGNOSTIC_BARS
from analytics.multitest import fdr_qvalues

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


def _tail_starts(values: np.ndarray) -> np.ndarray:
    """Per symbol (row of ``values``, symbols × time): the first column from which every later one is
    finite — the start of its unbroken run of prices up to the last bar (the length when the last is NaN)."""
    bad = ~np.isfinite(values[:, ::-1])
    n = values.shape[1]
    last_bad = n - 1 - bad.argmax(axis=1)
    return np.where(bad.any(axis=1), last_bad + 1, 0).astype(np.int64)


def _eg_both(series: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Engle-Granger of each pair both ways, on the rows of ``series`` the pairs use (the others may hold NaN)."""
    used, inv = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    sub = np.ascontiguousarray(series[used])
    ja, jb = inv[: len(ia)], inv[len(ia):]
    return engle_granger_batch(sub, ja, jb), engle_granger_batch(sub, jb, ja)


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
        Each pair is tested on its own last ``formation_bars`` rows where both legs have a
        price (``n_bars`` says how many it got): a symbol listed recently shortens only
        its own pairs' windows, never the others'. A pair whose window has fewer than
        ``min_bars`` rows is listed with the reason, untested.
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
    prices = closes[[s for s in symbols if s not in notes]].astype(float)
    if log_prices and len(prices.columns):
        positive = ((prices > 0) | prices.isna()).all()
        for s in prices.columns[~positive]:
            notes[s] = "non-positive price: no log"
        prices = np.log(prices.loc[:, positive])
    values = prices.to_numpy(dtype=float).T.copy()  # symbols × time
    n_rows = values.shape[1]
    starts = _tail_starts(values) if len(prices.columns) else np.zeros(0, dtype=np.int64)
    for s, first in zip(prices.columns, starts, strict=True):
        if n_rows - first < min_bars:
            notes[s] = f"too few bars ({n_rows - first:,} with a price up to the last bar, < {min_bars})"
    idx = {s: i for i, s in enumerate(prices.columns)}
    pairs = [(a, b) for i, a in enumerate(symbols) for b in symbols[i + 1 :]]
    rows = pd.DataFrame({"y": [a for a, _ in pairs], "x": [b for _, b in pairs]})
    for c in UNIVERSE_COLUMNS[2:]:
        rows[c] = np.nan
    rows["n_bars"] = 0
    rows["flagged"] = False
    rows["stable"] = False
    listed = np.array([a in idx and b in idx for a, b in pairs], dtype=bool)
    ia_all = np.array([idx.get(a, -1) for a, _ in pairs], dtype=np.int64)
    ib_all = np.array([idx.get(b, -1) for _, b in pairs], dtype=np.int64)
    window_first = np.full(len(pairs), n_rows, dtype=np.int64)
    if listed.any():
        window_first[listed] = np.maximum(np.maximum(starts[ia_all[listed]], starts[ib_all[listed]]), n_rows - formation_bars)
    n_bars = np.maximum(0, n_rows - window_first)
    rows["n_bars"] = n_bars
    pair_notes = []
    for k, (a, b) in enumerate(pairs):
        why = [f"{s}: {notes[s]}" for s in (a, b) if s in notes]
        if not why and listed[k] and n_bars[k] < min(formation_bars, n_rows):
            late = [s for s in (a, b) if starts[idx[s]] == window_first[k]]
            if n_bars[k] < min_bars:
                why.append(f"only {n_bars[k]:,} bars with both prices (< {min_bars}): " + (", ".join(late) or "gaps") + " too short")
            else:
                why.append(f"window {n_bars[k]:,} of {min(formation_bars, n_rows):,} bars: {', '.join(late) or 'a leg'} has no earlier prices")
        pair_notes.append("; ".join(why))
    rows["note"] = pair_notes
    testable = listed & (n_bars >= min_bars)
    fwd_p = np.full(len(pairs), np.nan)
    rev_p = np.full(len(pairs), np.nan)
    pick_fwd = np.ones(len(pairs), dtype=bool)
    beta = np.full(len(pairs), np.nan)
    alpha = np.full(len(pairs), np.nan)
    hl = np.full(len(pairs), np.nan)
    for w in np.unique(window_first[testable]):  # one compiled batch per distinct window
        members = np.flatnonzero(testable & (window_first == w))
        series = values[:, int(w):]
        ia, ib = ia_all[members], ib_all[members]
        fwd, rev = _eg_both(series, ia, ib)
        pf = fwd["statistic"].to_numpy() <= rev["statistic"].to_numpy()
        fwd_p[members], rev_p[members], pick_fwd[members] = fwd["pvalue"].to_numpy(), rev["pvalue"].to_numpy(), pf
        b_ = np.where(pf, fwd["beta"].to_numpy(), rev["beta"].to_numpy())
        a_ = np.where(pf, fwd["alpha"].to_numpy(), rev["alpha"].to_numpy())
        beta[members], alpha[members] = b_, a_
        hl[members] = _half_lives(series, np.where(pf, ia, ib), np.where(pf, ib, ia), b_, a_)
    swap = testable & ~pick_fwd
    rows.loc[swap, ["y", "x"]] = rows.loc[swap, ["x", "y"]].to_numpy()
    rows["pvalue"] = np.maximum(fwd_p, rev_p)
    rows["pvalue_y_on_x"] = np.where(pick_fwd, fwd_p, rev_p)
    rows["pvalue_x_on_y"] = np.where(pick_fwd, rev_p, fwd_p)
    rows["beta"] = beta
    rows["half_life_bars"] = hl
    rows["qvalue"] = fdr_qvalues(rows["pvalue"].to_numpy())
    cand = np.flatnonzero(rows["qvalue"].to_numpy() < q_level)
    if len(cand):  # stability: each half of each pair's own window, both directions
        ys = np.array([idx[v] for v in rows["y"].to_numpy()[cand]])
        xs = np.array([idx[v] for v in rows["x"].to_numpy()[cand]])
        for w in np.unique(window_first[cand]):
            sel = np.flatnonzero(window_first[cand] == w)
            series = values[:, int(w):]
            half = series.shape[1] // 2
            for col, part in (("pvalue_first_half", series[:, :half]), ("pvalue_second_half", series[:, half:])):
                f, r = _eg_both(part, ys[sel], xs[sel])
                rows.loc[cand[sel], col] = np.maximum(f["pvalue"].to_numpy(), r["pvalue"].to_numpy())
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
