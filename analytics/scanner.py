"""Pair scanner with error control: Engle-Granger in both directions, Benjamini-Yekutieli q-values.

Scanning *m* pairs at a nominal 5 % flags about 0.05·m of them by luck alone
(19 of 153 random-walk pairs in one measured scan). Two guards:

* **Both directions.** Engle-Granger is not symmetric: regressing y on x and x
  on y give different statistics. A pair's p-value is the **larger** of the two
  (it counts only if both directions reject), so choosing the better direction
  after the fact cannot inflate the error rate. ``y``/``x`` name the direction
  with the stronger (more negative) statistic; ``beta`` and the half-life are
  that regression's.
* **False discovery rate.** ``qvalue`` is the Benjamini-Yekutieli adjusted
  p-value over every pair that was tested: flagging pairs with ``q < 0.05``
  keeps the expected share of false discoveries among them below 5 % under
  any dependence between the tests (the scanned pairs share legs, so they are
  dependent; plain Benjamini-Hochberg assumes positive dependence only).
"""

from __future__ import annotations

import pandas as pd

from analytics.diagnostics import MIN_DIAGNOSTIC_BARS
from analytics.multitest import fdr_qvalues
from analytics.universe import scan_universe

__all__ = ["SCAN_COLUMNS", "fdr_qvalues", "scan_pairs"]

SCAN_COLUMNS = ["y", "x", "pvalue", "qvalue", "half_life_bars", "beta", "n_bars", "pvalue_y_on_x", "pvalue_x_on_y"]


def scan_pairs(closes: pd.DataFrame, params=None, min_bars: int = MIN_DIAGNOSTIC_BARS) -> pd.DataFrame:
    """Engle-Granger scan of every unordered pair of ``closes`` columns (see the module docstring).

    The compiled batch of :func:`analytics.universe.scan_universe` (one implementation for the
    watchlist, Research, the CLI and the API), in this module's columns.

    Parameters
    ----------
    closes
        Raw close prices, one column per symbol, on one time index (NaN where a
        symbol has no bar).
    params
        :class:`analytics.PairParams`: ``log_prices`` and ``formation_bars`` (each pair's
        most recent bars where both legs exist) are used.
    min_bars
        Pairs with fewer common bars are listed with NaN p-values, not tested.

    Returns
    -------
    DataFrame
        :data:`SCAN_COLUMNS`, one row per unordered pair, sorted by ``qvalue``
        then ``pvalue`` (untested pairs last).
    """
    from analytics.params import PairParams

    params = params if params is not None else PairParams()
    out = scan_universe(closes, params.formation_bars, params.log_prices, min_bars=min_bars)[SCAN_COLUMNS]
    return out.sort_values(["qvalue", "pvalue"], na_position="last", kind="mergesort").reset_index(drop=True)
