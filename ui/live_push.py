"""The pushed live panel: newest ticks, KPIs and the z-score chart, fed by ``/live`` (no rerun per tick).

See ``ui/live_push/index.html`` (no build step) and :mod:`server.live`. The
component's value is ``"up"`` once its socket opened and ``"down"`` when it
never could; the page then falls back to refreshing those figures itself.
"""

from __future__ import annotations

from pathlib import Path

import streamlit.components.v1 as components

from analytics import PairParams
from ui.live_chart import component_dir

_component = components.declare_component("live_push", path=str(component_dir(Path(__file__).with_name("live_push"), "live-push")))


def push_params(p: PairParams) -> dict[str, str]:
    """The parameters as the read API and ``/live`` take them (strings; None left out)."""
    out = {"window": p.window, "z_window": p.z_window or 0, "z_method": p.z_method, "method": p.method,
           "log_prices": "1" if p.log_prices else "0", "kalman_delta": p.kalman_delta, "kalman_obs_var": p.kalman_obs_var,
           "entry": p.entry, "exit": p.exit, "stop": p.stop, "formation_bars": p.formation_bars, "exit_on": p.exit_on}
    return {k: str(v) for k, v in out.items() if v is not None}


def live_panel(y: str, x: str, timeframe: str, params: PairParams, spread_label: str, corr_label: str,
               key: str = "live_push") -> str | None:
    """Render the persistent pushed panel; returns its socket state ("up", "down" or None before it reports)."""
    return _component(y=y, x=x, timeframe=timeframe, params=push_params(params), spread_label=spread_label,
                      corr_label=corr_label, height=600, chart_height=320, key=key, default=None)
