"""One cointegration diagnostic for a pair, used by every tile, panel, alert, scan and export.

Why not test the spread the dashboard plots: that spread comes from a
**rolling** hedge, re-fitted every window, so it is stationary by construction
(independent random walks "pass" an ADF test on it 40 times out of 40, with a
half-life that just tracks the window). :func:`pair_diagnostics` instead fits
the hedge **once** on a *formation window* — the most recent
``params.formation_bars`` bars — and tests that fixed-hedge residual with
Engle-Granger (MacKinnon's cointegration critical values, identical to
statsmodels ``coint`` on the same bars). Its result does not depend on the
rolling window, the hedge method or the z-score lookback.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analytics._validate import ArrayLike, aligned_pair
from analytics.params import PairParams
from analytics.stationarity import adf, engle_granger, half_life, hurst

__all__ = ["MIN_DIAGNOSTIC_BARS", "VERDICTS", "PairDiagnostics", "pair_diagnostics"]

MIN_DIAGNOSTIC_BARS = 100
VERDICTS = ("cointegrated at 5 %", "no evidence", "not enough data")


@dataclass(frozen=True)
class PairDiagnostics:
    """Engle-Granger cointegration of ``y`` on ``x`` over the formation window.

    Attributes
    ----------
    n_bars
        Bars in the formation window (the most recent ``formation_bars`` finite ones).
    start, end
        First and last bar of that window (None without a DatetimeIndex).
    beta, alpha
        Static OLS hedge on the window, in the price space ``price_space``
        (``"log"``: beta is a value ratio; ``"raw"``: units of x per unit of y).
    eg_statistic, eg_pvalue, eg_critical_5
        Engle-Granger ADF t-value of the residual, its MacKinnon (2010)
        cointegration p-value and 5 % critical value (H0: not cointegrated).
    adf_pvalue
        ADF (constant, Dickey-Fuller critical values) of the same residual: for
        reference only — DF critical values overstate stationarity of an
        estimated residual, which is why the verdict uses ``eg_pvalue``.
    half_life_bars, half_life_seconds
        Mean-reversion half-life of the residual from its AR(1) fit, in bars and
        in seconds of elapsed time (mean bar spacing of the window).
    hurst
        Hurst exponent of the residual (< 0.5 mean-reverting).
    residual_std
        Standard deviation of the residual (log points for log prices).
    verdict
        One of :data:`VERDICTS`.
    """

    n_bars: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    price_space: str
    beta: float
    alpha: float
    eg_statistic: float
    eg_pvalue: float
    eg_critical_5: float
    adf_pvalue: float
    half_life_bars: float
    half_life_seconds: float
    hurst: float
    residual_std: float
    verdict: str

    @property
    def cointegrated(self) -> bool:
        return self.verdict == VERDICTS[0]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        """One sentence a person can act on."""
        if self.verdict == VERDICTS[2]:
            return f"Not enough data: the test needs {MIN_DIAGNOSTIC_BARS} bars, {self.n_bars} so far."
        hl = _fmt_half_life(self.half_life_bars, self.half_life_seconds)
        if self.cointegrated:
            return (f"Cointegrated at 5 % (Engle-Granger p = {self.eg_pvalue:.3f} over the last {self.n_bars:,} bars); "
                    f"the fixed-hedge spread mean-reverts with a half-life of {hl}.")
        return (f"No evidence of cointegration (Engle-Granger p = {self.eg_pvalue:.3f} over the last {self.n_bars:,} bars): "
                "the spread can drift away for good; do not trade it on these data.")


def _fmt_half_life(bars: float, seconds: float) -> str:
    if not math.isfinite(bars):
        return "∞ (no mean reversion)" if bars == math.inf else "—"
    if not math.isfinite(seconds):
        return f"{bars:,.1f} bars"
    return f"{bars:,.1f} bars ({_fmt_seconds(seconds)})"


def _fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172_800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _mean_spacing_seconds(index: pd.Index) -> float:
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        return float((index[-1] - index[0]).total_seconds()) / (len(index) - 1)
    return math.nan


def _empty(n: int, space: str, start, end) -> PairDiagnostics:
    nan = math.nan
    return PairDiagnostics(n, start, end, space, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, VERDICTS[2])


def pair_diagnostics(price_y: ArrayLike, price_x: ArrayLike, params: PairParams | None = None,
                     formation_bars: int | None = None) -> PairDiagnostics:
    """Engle-Granger diagnostic of the pair on its formation window (see the module docstring).

    Parameters
    ----------
    price_y, price_x
        Raw prices of the legs on one index (rows with a NaN are skipped).
    params
        :class:`analytics.PairParams`: ``log_prices`` picks the price space and
        ``formation_bars`` the window (default ``PairParams()``).
    formation_bars
        Overrides ``params.formation_bars``.

    Returns
    -------
    PairDiagnostics
        ``verdict = "not enough data"`` (and NaN numbers) with fewer than
        :data:`MIN_DIAGNOSTIC_BARS` bars or a constant leg.
    """
    params = params if params is not None else PairParams()
    ys, xs = aligned_pair(price_y, price_x)
    ok = np.isfinite(ys.to_numpy()) & np.isfinite(xs.to_numpy())
    ys, xs = ys[ok], xs[ok]
    space = "log" if params.log_prices else "raw"
    bars = int(formation_bars if formation_bars is not None else params.formation_bars)
    ys, xs = ys.iloc[-bars:], xs.iloc[-bars:]
    n = len(ys)
    is_time = isinstance(ys.index, pd.DatetimeIndex)
    start, end = (ys.index[0], ys.index[-1]) if is_time and n else (None, None)
    if n < MIN_DIAGNOSTIC_BARS or not (ys.max() > ys.min() and xs.max() > xs.min()):
        return _empty(n, space, start, end)
    if params.log_prices:
        if (ys <= 0).any() or (xs <= 0).any():
            raise ValueError("log prices need strictly positive prices")
        ys, xs = np.log(ys), np.log(xs)
    try:
        eg = engle_granger(ys, xs)
    except ValueError:  # a constant leg
        return _empty(n, space, start, end)
    resid = eg.residuals
    try:
        adf_p = adf(resid, regression="c").pvalue
    except ValueError:
        adf_p = math.nan
    hl = half_life(resid)
    spacing = _mean_spacing_seconds(ys.index)
    verdict = VERDICTS[0] if eg.pvalue < 0.05 else VERDICTS[1]
    return PairDiagnostics(
        n_bars=n, start=start, end=end, price_space=space, beta=eg.beta, alpha=eg.alpha,
        eg_statistic=eg.statistic, eg_pvalue=eg.pvalue, eg_critical_5=eg.critical_values["5%"], adf_pvalue=float(adf_p),
        half_life_bars=hl, half_life_seconds=hl * spacing if math.isfinite(hl) else hl,
        hurst=hurst(resid), residual_std=float(resid.std(ddof=1)), verdict=verdict,
    )
