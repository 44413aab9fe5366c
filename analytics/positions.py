"""The one position rule: the table's ``signal`` column and the backtest decide with the same compiled kernel.

Enter beyond ``±entry``, exit at ``exit``, optional stop; entries need
``beta_min < beta < beta_max``; after a stop no same-side re-entry until z is
back inside the entry band; exits and stops judge the spread actually **held**
(hedge and z-normalisation frozen at entry) unless ``exit_on="signal"``. Stale or
undefined z: no change.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics import _kernels
from analytics._validate import ArrayLike, as_series
from analytics.params import PairParams, check_thresholds, table_params

__all__ = ["UNSET", "positions", "target_positions"]


class _Unset:
    """Marker: an argument not given (``None`` means "no stop")."""


UNSET = _Unset()


def target_positions(z: ArrayLike, entry: float = 2.0, exit: float = 0.0, stop: float | None = None) -> pd.Series:
    """Desired position from ``z`` alone (+1 long, -1 short, 0 flat): exits on z itself, no beta guard.

    The same kernel as :func:`positions`, for a bare z series; NaN z keeps the
    previous position.
    """
    zs = as_series(z, "z")
    check_thresholds(entry, exit, stop)
    zv = zs.to_numpy()
    one = np.ones(len(zv))
    pos, _ = _kernels.positions_kernel(
        zv, one, one, one, one, one, one, float(entry), float(exit), math.inf if stop is None else float(stop), False, -math.inf, math.inf,
    )
    return pd.Series(pos, index=zs.index, name="signal")


def positions(
    table: pd.DataFrame,
    params: PairParams | None = None,
    entry: float | None = None,
    exit: float | None = None,
    stop: float | None | _Unset = UNSET,
    exit_on: str | None = None,
) -> tuple[pd.Series, np.ndarray]:
    """Position after each bar of a pair table by the one rule (module docstring).

    Parameters default to ``params`` (else ``table.attrs["params"]``); ``entry``,
    ``exit``, ``stop`` and ``exit_on`` override them. Returns ``(signal,
    reason_codes)``.
    """
    p = params if params is not None else table_params(table)
    entry_v = float(p.entry if entry is None else entry)
    exit_v = float(p.exit if exit is None else exit)
    stop_v = p.stop if isinstance(stop, _Unset) else stop
    check_thresholds(entry_v, exit_v, stop_v)
    rule = p.exit_on if exit_on is None else exit_on
    if rule not in ("held", "signal"):
        raise ValueError("exit_on must be 'held' or 'signal'")
    py, px = table["price_y"].to_numpy(dtype=float), table["price_x"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y, x = (np.log(py), np.log(px)) if p.log_prices else (py, px)
    beta_used = table["beta"].shift(1).to_numpy(dtype=float)
    alpha_used = table["alpha"].shift(1).to_numpy(dtype=float)
    pos, why = _kernels.positions_kernel(
        table["zscore"].to_numpy(dtype=float), y, x, beta_used, alpha_used,
        table["spread_mean"].to_numpy(dtype=float), table["spread_std"].to_numpy(dtype=float),
        entry_v, exit_v, math.inf if stop_v is None else float(stop_v), rule == "held",
        float(p.beta_min), float(p.beta_max),
    )
    return pd.Series(pos, index=table.index, name="signal"), why
