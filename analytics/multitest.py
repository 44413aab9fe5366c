"""Multiple-testing control: false-discovery-rate adjusted p-values (q-values)."""

from __future__ import annotations

import numpy as np

__all__ = ["fdr_qvalues"]


def fdr_qvalues(pvalues: np.ndarray | list[float], method: str = "by") -> np.ndarray:
    """Adjusted p-values (q-values) controlling the false discovery rate.

    ``method="by"`` (Benjamini-Yekutieli, valid under arbitrary dependence:
    ``q_(i) = min_{j >= i} min(1, m c(m) p_(j) / j)`` with ``c(m) = sum 1/k``)
    or ``"bh"`` (Benjamini-Hochberg, ``c(m) = 1``). NaN p-values stay NaN and
    do not count in ``m``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    if method == "by":
        c = float(np.sum(1.0 / np.arange(1, m + 1)))
    elif method == "bh":
        c = 1.0
    else:
        raise ValueError("method must be 'by' or 'bh'")
    order = ok[np.argsort(p[ok], kind="mergesort")]
    ranked = p[order] * m * c / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out[order] = np.minimum(q, 1.0)
    return out
