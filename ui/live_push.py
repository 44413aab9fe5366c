"""The pushed live panel: newest ticks, the pair's tiles and the z-score chart, fed by ``/live`` (no rerun per tick).

See ``ui/live_push/index.html`` (no build step) and :mod:`server.live`. The
component's value is ``"up"`` once its socket opened and ``"down"`` when it
never could; the page then falls back to refreshing those figures itself.
"""

from __future__ import annotations

from pathlib import Path

import streamlit.components.v1 as components

from analytics import PairParams
from pairs import Timeframe
from ui.live_chart import component_dir

_component = components.declare_component("live_push", path=str(component_dir(Path(__file__).with_name("live_push"), "live-push")))


def live_panel(y: str, x: str, timeframe: Timeframe, params: PairParams, key: str = "live_push") -> str | None:
    """Render the persistent pushed panel; returns its socket state ("up", "down" or None before it reports)."""
    return _component(y=y, x=x, timeframe=timeframe.value, params=params.to_query(), height=520, chart_height=300, key=key,
                      default=None)
