"""Plotly figures for the dashboard. Pure: DataFrames in, figure specs out.

Figures are plain Plotly JSON dicts (``{"data": [...], "layout": {...}}``), not
``plotly.graph_objects``: building and validating graph objects cost 40–60 ms
per chart (measured: most of a live refresh), a dict costs well under 1 ms and
serialises with orjson. ``st.plotly_chart`` accepts the same dicts (and
validates them there, off the live path). Time axes are epoch milliseconds on a
``date`` axis (Plotly shows them in UTC). Every figure sets ``uirevision`` so
zoom/pan survive live refreshes.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd

# SVG traces (scatter), not WebGL: a live page re-creates its charts every refresh and
# browsers cap WebGL contexts (~16), after which charts go blank. Display is decimated instead.
BUY, SELL, Y_COLOR, X_COLOR = "#26a69a", "#ef5350", "#42a5f5", "#ffa726"

Figure = dict


def decimate(df: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """Keep at most ``max_points`` rows for display: the most recent ones."""
    return df if len(df) <= max_points else df.iloc[-max_points:]


def to_json(fig: Figure) -> str:
    """Serialise a figure spec (NumPy arrays as lists, NaN as null = a gap)."""
    return orjson.dumps(fig, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _times(index: pd.Index) -> np.ndarray | list:
    """x values: epoch ms for a DatetimeIndex (tz-naive means UTC), else the values."""
    if isinstance(index, pd.DatetimeIndex):
        idx = index.tz_convert("UTC") if index.tz is not None else index
        return idx.as_unit("ms").asi8
    return np.asarray(index).tolist()


def _values(s: pd.Series | np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(s, dtype=np.float64))


def _line(x, y, name: str, **style: object) -> dict:
    return {"type": "scatter", "mode": "lines", "x": x, "y": _values(y), "name": name, **style}


def _figure(traces: list[dict], title: str, revision: str, height: int = 320, date_axis: bool = True, **layout: object) -> Figure:
    base = {
        # title on top, the legend in its own row just above the plot (a long legend overlapped the title)
        "title": {"text": title, "y": 0.98, "yanchor": "top"}, "height": height, "margin": {"l": 50, "r": 20, "t": 60, "b": 30},
        "uirevision": revision, "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0}, "hovermode": "x unified",
    }
    if date_axis:
        base["xaxis"] = {"type": "date"}
    for key, value in layout.items():  # axis dicts merge with the defaults above
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    if base.get("yaxis2", {}).get("side") == "right":  # room for the right axis' tick labels and title
        base["margin"] = {**base["margin"], "r": 70}
    return {"data": traces, "layout": base}


def prices_figure(table: pd.DataFrame, sym_y: str, sym_x: str, revision: str) -> Figure:
    """Both legs on a dual axis (raw prices)."""
    x = _times(table.index)
    return _figure(
        [
            _line(x, table["price_y"], f"{sym_y} (Y)", line={"color": Y_COLOR}),
            _line(x, table["price_x"], f"{sym_x} (X)", line={"color": X_COLOR}, yaxis="y2"),
        ],
        "Prices", revision,
        yaxis={"title": {"text": sym_y}}, yaxis2={"title": {"text": sym_x}, "overlaying": "y", "side": "right"},
    )


def spread_figure(table: pd.DataFrame, window: int, k: float, revision: str) -> Figure:
    """Spread with its rolling mean ± k·σ (previous ``window`` bars)."""
    s = table["spread"]
    mean = s.rolling(window, min_periods=2).mean().shift(1)
    std = s.rolling(window, min_periods=2).std().shift(1)
    x = _times(table.index)
    band = {"width": 1, "dash": "dot", "color": "#888"}
    return _figure(
        [
            _line(x, mean + k * std, f"+{k:g}σ", line=band),
            _line(x, mean - k * std, f"-{k:g}σ", line=band),
            _line(x, mean, "rolling mean", line={"width": 1, "color": "#bbb"}),
            _line(x, s, "spread", line={"color": Y_COLOR}),
        ],
        "Spread (out-of-sample hedge)", revision,
    )


def zscore_figure(table: pd.DataFrame, entry: float, exit: float, revision: str) -> Figure:
    """Z-score with entry/exit lines and markers where the signal changes."""
    shapes = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level, "line": {"dash": dash, "width": 1, "color": "#999"}}
        for level, dash in ((entry, "dash"), (-entry, "dash"), (exit, "dot"), (-exit, "dot"))
    ]
    traces = [_line(_times(table.index), table["zscore"], "z", line={"color": "#ab47bc"})]
    sig = table["signal"]
    change = sig.ne(sig.shift(1)) & sig.shift(1).notna()
    for value, name, color, symbol in ((1, "enter long spread", BUY, "triangle-up"), (-1, "enter short spread", SELL, "triangle-down"), (0, "exit", "#eeeeee", "x")):
        pts = table[change & (sig == value)]
        if len(pts):
            traces.append({"type": "scatter", "mode": "markers", "x": _times(pts.index), "y": _values(pts["zscore"]), "name": name,
                           "marker": {"color": color, "size": 9, "symbol": symbol}})
    return _figure(traces, "Z-score", revision, shapes=shapes)


def beta_figure(betas: dict[str, pd.Series], revision: str) -> Figure:
    palette = {"OLS": "#42a5f5", "Kalman": "#ffa726", "Huber": "#66bb6a"}
    traces = [_line(_times(s.index), s, f"β {name}", line={"color": palette.get(name, "#ab47bc")}) for name, s in betas.items()]
    return _figure(traces, "Hedge ratio β", revision, height=260)


def correlation_figure(table: pd.DataFrame, revision: str) -> Figure:
    trace = _line(_times(table.index), table["correlation"], "corr (returns)", line={"color": "#26c6da"})
    return _figure([trace], "Rolling correlation of returns", revision, height=240, yaxis={"range": [-1, 1]})


def volume_figure(bars: pd.DataFrame, symbol: str, revision: str, max_bars: int = 300) -> Figure:
    """Taker buy vs sell volume (bars) and trade count (line).

    Over ``max_bars`` bars, consecutive bars are summed into buckets of ``k``
    (volumes and counts add up, so nothing is lost but resolution): thousands of
    SVG bars cost the browser more than the rest of the page.
    """
    k = max(1, -(-len(bars) // max_bars))
    cols = ["taker_buy_volume", "taker_sell_volume", "trades"]
    if k > 1:
        groups = np.arange(len(bars)) // k
        summed = bars[cols].groupby(groups).sum()
        summed.index = bars.index[::k][: len(summed)]
        bars = summed
    x = _times(bars.index)
    title = f"{symbol} volume (taker buy ↑ / sell ↓) and trade count" + (f" · each bar sums {k} bars" if k > 1 else "")
    return _figure(
        [
            {"type": "bar", "x": x, "y": _values(bars["taker_buy_volume"]), "name": "taker buy", "marker": {"color": BUY}},
            {"type": "bar", "x": x, "y": -_values(bars["taker_sell_volume"]), "name": "taker sell", "marker": {"color": SELL}},
            _line(x, bars["trades"], "trades", line={"color": "#ffee58", "width": 1}, yaxis="y2"),
        ],
        title, revision, height=260, barmode="relative", yaxis2={"overlaying": "y", "side": "right"},
    )


def volume_profile_figure(profile: pd.DataFrame, symbol: str, revision: str) -> Figure:
    y = _values(profile["price_mid"])
    if "buy_volume" in profile:
        traces = [
            {"type": "bar", "orientation": "h", "y": y, "x": _values(profile["buy_volume"]), "name": "taker buy", "marker": {"color": BUY}},
            {"type": "bar", "orientation": "h", "y": y, "x": _values(profile["sell_volume"]), "name": "taker sell", "marker": {"color": SELL}},
        ]
        return _figure(traces, f"{symbol} volume profile", revision, date_axis=False, barmode="stack")
    traces = [{"type": "bar", "orientation": "h", "y": y, "x": _values(profile["volume"]), "name": "volume"}]
    return _figure(traces, f"{symbol} volume profile", revision, date_axis=False)


def heatmap_figure(corr: pd.DataFrame, revision: str) -> Figure:
    z = corr.to_numpy(dtype=np.float64)
    trace = {
        "type": "heatmap", "z": z, "x": list(corr.columns), "y": list(corr.index), "zmin": -1, "zmax": 1,
        "colorscale": "RdBu", "text": np.round(z, 2), "texttemplate": "%{text}",
    }
    # first symbol at the top (diagonal top-left to bottom-right); room for the symbol names
    return _figure([trace], "Correlation of returns", revision, height=360, date_axis=False,
                   yaxis={"autorange": "reversed", "automargin": True}, xaxis={"automargin": True})


def equity_figure(equity: pd.DataFrame, revision: str) -> Figure:
    """Equity (top, 70 %) and drawdown (bottom) on one shared time axis."""
    x = _times(equity.index)
    return _figure(
        [
            _line(x, equity["equity"], "equity"),
            _line(x, equity["drawdown"], "drawdown", fill="tozeroy", line={"color": SELL}, yaxis="y2"),
        ],
        "Backtest equity and drawdown (quote currency)", revision, height=420,
        yaxis={"domain": [0.32, 1.0]}, yaxis2={"domain": [0.0, 0.28], "anchor": "x"},
    )
