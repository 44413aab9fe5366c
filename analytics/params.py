"""How to turn two price series into a signal: :class:`PairParams`, its limits and its one text codec.

:meth:`PairParams.to_query` / :meth:`PairParams.from_query` are the one
translation between parameters and strings — the dashboard's URL, the ``/live``
subscription and the read API all use them, so a parameter has one name, one
range and one error message everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Literal

import pandas as pd

from analytics.kalman import KALMAN_INIT_BARS, KALMAN_MIN_FIT_BARS
from analytics.signals import Z_METHODS

__all__ = ["EXIT_RULES", "HEDGE_METHODS", "LIMITS", "HedgeMethod", "PairParams", "check_thresholds", "table_params", "warmup_bars"]

HedgeMethod = Literal["OLS", "Kalman", "Huber"]
HEDGE_METHODS: tuple[HedgeMethod, ...] = ("OLS", "Kalman", "Huber")
EXIT_RULES = ("held", "signal")

# accepted ranges of the numeric parameters when they come as text (URL, API, /live): what a request may ask for
LIMITS: dict[str, tuple[float, float]] = {
    "window": (3, 5000), "z_window": (3, 5000), "formation_bars": (100, 50_000), "huber_epsilon": (0.5, 5.0),
    "entry": (0.1, 10.0), "exit": (-10.0, 10.0), "stop": (0.1, 50.0), "kalman_delta": (1e-14, 0.5),
    "kalman_obs_var": (1e-14, 1e6), "beta_min": (-100.0, 100.0), "beta_max": (-100.0, math.inf), "stale_after_s": (1.0, 86_400.0),
}


def check_thresholds(entry: float, exit: float, stop: float | None) -> None:
    """Raise ``ValueError`` unless ``entry > 0``, ``-entry < exit < entry`` and ``stop > entry`` (when given)."""
    if not entry > 0:
        raise ValueError(f"entry must be > 0, got {entry}")
    if not -entry < exit < entry:
        raise ValueError(f"exit must lie strictly between -entry and entry, got {exit}")
    if stop is not None and not stop > entry:
        raise ValueError(f"stop must be > entry ({entry}), got {stop}")


@dataclass(frozen=True)
class PairParams:
    """How to turn two price series into a signal.

    Attributes
    ----------
    window
        Bars of the rolling hedge (OLS/Huber) and of the rolling correlation.
    z_window
        Bars of the z-score's mean/std (default: ``window``); ``z_method``
        ``"rolling"`` (equal weights) or ``"ewma"`` (span ``z_window``).
    method
        Hedge: ``"OLS"``, ``"Kalman"`` or ``"Huber"``.
    log_prices
        Regress log prices (hedge in return space: beta is a value ratio)
        instead of raw prices (beta in units of x per unit of y). The whole
        table, its diagnostics and the backtest follow this one choice.
    formation_bars
        Bars of the formation window: the fixed hedge that
        :func:`analytics.pair_diagnostics` tests, and the trailing bars each
        Kalman maximum-likelihood fit uses.
    kalman_delta, kalman_obs_var
        Fixed Kalman ``δ`` and ``Ve`` (in the regressed price units); both None
        (default): estimated by maximum likelihood (:mod:`analytics.kalman`).
    huber_epsilon
        Huber's tuning constant.
    entry, exit, stop
        Enter beyond ``±entry``, exit at ``exit``, optional stop at ``|z| >= stop``.
    exit_on
        ``"held"`` (default): exits and stops judge the spread the position
        holds (hedge and z-normalisation frozen at entry); ``"signal"``: the
        current z (whose hedge keeps moving while the legs do not).
    beta_min, beta_max
        Entries need ``beta_min < beta < beta_max`` (default ``beta > 0``: a
        negative hedge would put both legs on the same side).
    stale_after_s
        A bar where a leg has had no trade for longer than this (seconds) is
        stale: no z and no new signal there.
    """

    window: int = 100
    method: str = "OLS"
    log_prices: bool = True
    kalman_delta: float | None = None
    kalman_obs_var: float | None = None
    huber_epsilon: float = 1.345
    entry: float = 2.0
    exit: float = 0.0
    stop: float | None = None
    z_window: int | None = None
    z_method: str = "rolling"
    formation_bars: int = 2000
    exit_on: str = "held"
    beta_min: float = 0.0
    beta_max: float = math.inf
    stale_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.method not in HEDGE_METHODS:
            raise ValueError(f"method must be one of {HEDGE_METHODS}, got {self.method!r}")
        if int(self.window) != self.window or self.window < 3:
            raise ValueError(f"window must be an integer >= 3, got {self.window}")
        if self.z_window is not None and (int(self.z_window) != self.z_window or self.z_window < 3):
            raise ValueError(f"z_window must be an integer >= 3, got {self.z_window}")
        if self.z_method not in Z_METHODS:
            raise ValueError(f"z_method must be one of {Z_METHODS}, got {self.z_method!r}")
        if int(self.formation_bars) != self.formation_bars or self.formation_bars < 50:
            raise ValueError(f"formation_bars must be an integer >= 50, got {self.formation_bars}")
        if (self.kalman_delta is None) != (self.kalman_obs_var is None):
            raise ValueError("give both kalman_delta and kalman_obs_var, or neither (maximum likelihood)")
        if self.kalman_delta is not None and not 0 < self.kalman_delta < 1:
            raise ValueError(f"kalman_delta must be in (0, 1), got {self.kalman_delta}")
        if self.kalman_obs_var is not None and not self.kalman_obs_var > 0:
            raise ValueError(f"kalman_obs_var must be > 0, got {self.kalman_obs_var}")
        if self.exit_on not in EXIT_RULES:
            raise ValueError(f"exit_on must be one of {EXIT_RULES}, got {self.exit_on!r}")
        if not self.beta_min < self.beta_max:
            raise ValueError(f"beta_min ({self.beta_min}) must be below beta_max ({self.beta_max})")
        if not self.stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {self.stale_after_s}")
        check_thresholds(self.entry, self.exit, self.stop)

    @property
    def zscore_window(self) -> int:
        return int(self.z_window or self.window)

    @property
    def price_space(self) -> str:
        return "log" if self.log_prices else "raw"

    @property
    def kalman_fitted(self) -> bool:
        """True when the Kalman δ/Ve are estimated (maximum likelihood), not fixed."""
        return self.kalman_delta is None

    # -- the one text codec ---------------------------------------------------------------
    def to_query(self) -> dict[str, str]:
        """The parameters as strings (``None`` left out, booleans ``1``/``0``): :meth:`from_query` gives them back."""
        out: dict[str, str] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, bool):
                out[f.name] = "1" if v else "0"
            elif isinstance(v, float):
                out[f.name] = "inf" if v == math.inf else repr(v)
            else:
                out[f.name] = str(v)
        return out

    @classmethod
    def from_query(cls, query: Mapping[str, object], base: PairParams | None = None) -> PairParams:
        """Parameters from text (a URL, an API query, a ``/live`` subscription); unknown keys are ignored.

        Missing keys keep ``base`` (default: the defaults). ``z_window`` 0 or empty means "the hedge
        window"; ``kalman_delta``/``kalman_obs_var`` empty mean "fitted". Raises ``ValueError`` naming
        the parameter and its accepted range.
        """
        base = base or cls()
        values = asdict(base)
        for f in fields(cls):
            if f.name not in query or query[f.name] is None:
                continue
            raw = str(query[f.name]).strip()
            name = f.name
            if name in ("method", "z_method", "exit_on"):
                values[name] = raw
            elif name == "log_prices":
                if raw.lower() not in ("1", "0", "true", "false"):
                    raise ValueError("log_prices: expected 1 or 0")
                values[name] = raw.lower() in ("1", "true")
            elif name in ("window", "z_window", "formation_bars"):
                if name == "z_window" and raw in ("", "0"):
                    values[name] = None
                    continue
                try:
                    v = int(raw)
                except ValueError:
                    raise ValueError(f"{name}: expected an integer") from None
                values[name] = _in_range(name, v)
            else:  # floats; kalman_* and stop may be empty (None)
                if raw == "" and name in ("kalman_delta", "kalman_obs_var", "stop"):
                    values[name] = None
                    continue
                try:
                    v = float(raw)
                except ValueError:
                    raise ValueError(f"{name}: expected a number") from None
                if math.isnan(v) or (math.isinf(v) and name != "beta_max"):
                    raise ValueError(f"{name}: expected a finite number")
                values[name] = _in_range(name, v)
        try:
            return cls(**values)
        except ValueError as exc:
            raise ValueError(str(exc)) from None


def _in_range(name: str, v: float) -> float:
    lo, hi = LIMITS.get(name, (-math.inf, math.inf))
    if not lo <= v <= hi:
        raise ValueError(f"{name}: must be between {lo:g} and {hi:g}, got {v:g}")
    return v


def warmup_bars(params: PairParams) -> int:
    """Bars a pair needs before the first z-score exists (exactly what :func:`analytics.pair_analytics` needs).

    OLS/Huber: the hedge's first fit ends at bar ``window - 1``, the first
    out-of-sample spread is bar ``window``, and the z-score needs ``z_window``
    spreads before it: ``window + z_window + 1`` bars. Kalman: the first
    maximum-likelihood fit (``KALMAN_MIN_FIT_BARS``, at most ``formation_bars``)
    or the ``KALMAN_INIT_BARS`` initialisation bars when δ/Ve are fixed, plus one.
    """
    if params.method == "Kalman":
        if params.kalman_fitted:
            return min(KALMAN_MIN_FIT_BARS, params.formation_bars) + 1
        return KALMAN_INIT_BARS + 1
    return params.window + params.zscore_window + 1


def table_params(table: pd.DataFrame) -> PairParams:
    """The :class:`PairParams` a :func:`analytics.pair_analytics` table was built with."""
    p = table.attrs.get("params")
    if p is None:
        raise ValueError("the table has no parameters: build it with analytics.pair_analytics")
    return p if isinstance(p, PairParams) else PairParams(**p)
