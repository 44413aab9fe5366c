"""Flicker-free live Plotly charts.

``st.plotly_chart`` derives its element id from the figure spec (Streamlit
1.67), so every data change remounts the chart: a visible redraw flash and the
user's zoom is lost. This tiny custom component (``ui/plotly_live/index.html``,
no build step) keeps one Plotly instance per key and updates it with
``Plotly.react``; with the figure's ``uirevision`` the zoom/pan survives refreshes.
plotly.js comes from the installed ``plotly`` package (no network).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import plotly
import streamlit.components.v1 as components

from ui.charts import to_json

_SRC = Path(__file__).with_name("plotly_live")
_DARK = {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "font": {"color": "#e6e6e6"}}
_GRID = {"gridcolor": "#333"}


def component_dir(src: Path, name: str) -> Path:
    """``src/index.html`` + plotly.min.js side by side, in a cache folder (never inside the repo)."""
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    target = Path(tempfile.gettempdir()) / f"alphastream-{name}-{plotly.__version__}"
    target.mkdir(parents=True, exist_ok=True)
    if not (target / "plotly.min.js").exists():
        shutil.copyfile(js, target / "plotly.min.js")
    html = (src / "index.html").read_text()
    if not (target / "index.html").exists() or (target / "index.html").read_text() != html:
        (target / "index.html").write_text(html)
    return target


_component = components.declare_component("plotly_live", path=str(component_dir(_SRC, "plotly-live")))


def live_chart(fig: dict, key: str, height: int = 320, priority: int = 0) -> None:
    """Render the figure spec ``fig`` (see :mod:`ui.charts`) in a persistent chart identified by ``key``.

    Charts on a page are redrawn one at a time, highest ``priority`` first (see
    ``plotly_live/index.html``), so the fast-refreshing chart is not queued behind the rest.
    """
    layout = {**fig["layout"], **_DARK}
    for axis in {"xaxis", "yaxis", *(k for k in layout if k.startswith(("xaxis", "yaxis")))}:
        layout[axis] = {**_GRID, **layout.get(axis, {})}  # dark grid on every axis, the figure's settings kept
    h = int(layout.get("height") or height)
    _component(spec=to_json({"data": fig["data"], "layout": layout}), height=h, chart_id=key, priority=priority, key=key, default=None)
