"""Input coercion shared by the public analytics functions (private)."""

from __future__ import annotations

import numpy as np
import pandas as pd

ArrayLike = pd.Series | np.ndarray | list


def as_series(values: ArrayLike, name: str) -> pd.Series:
    """Return ``values`` as a float64 Series (index kept when it is a Series)."""
    if isinstance(values, pd.Series):
        out = values.astype("float64")
    else:
        arr = np.asarray(values, dtype="float64")
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
        out = pd.Series(arr)
    return out


def aligned_pair(y: ArrayLike, x: ArrayLike) -> tuple[pd.Series, pd.Series]:
    """Coerce ``y`` and ``x`` to float Series sharing one index, or raise."""
    ys = as_series(y, "y")
    xs = as_series(x, "x")
    if len(ys) != len(xs):
        raise ValueError(f"y and x must have the same length ({len(ys)} != {len(xs)})")
    if isinstance(y, pd.Series) and isinstance(x, pd.Series) and not ys.index.equals(xs.index):
        raise ValueError("y and x must share the same index (align them first, e.g. storage.align_pair)")
    if not isinstance(y, pd.Series) and isinstance(x, pd.Series):
        ys.index = xs.index
    else:
        xs.index = ys.index
    return ys, xs


def check_window(window: int, name: str = "window") -> int:
    if isinstance(window, bool) or int(window) != window or window < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {window!r}")
    return int(window)


def check_lag(lag: int) -> int:
    if isinstance(lag, bool) or int(lag) != lag or lag < 0:
        raise ValueError(f"lag must be an integer >= 0, got {lag!r}")
    return int(lag)
