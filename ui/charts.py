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


def decimate_minmax(df: pd.DataFrame, max_points: int, columns: tuple[str, ...] = ("zscore", "price_y", "price_x", "spread")) -> tuple[pd.DataFrame, str]:
    """All of ``df`` in at most ~``max_points`` rows: per bucket its first and last row and the rows
    where each of ``columns`` is lowest and highest, so no spike or trough disappears.

    Returns ``(rows, note)``; the note says how it was thinned ("" when nothing was). The rows on both
    sides of every real gap are kept and listed in ``attrs["gaps_ms"]`` (the time before each gap), so a
    line breaks where the data have a gap, not where thinning left points apart."""
    n = len(df)
    if n <= max_points:
        return df, ""
    cols = [c for c in columns if c in df]
    per_bucket = 2 + 2 * len(cols)
    buckets = max(1, max_points // per_bucket)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = [edges[:-1], np.maximum(edges[1:] - 1, edges[:-1])]
    groups = np.repeat(np.arange(buckets), np.diff(edges))
    starts = edges[:-1][np.diff(edges) > 0]
    for c in cols:
        v = df[c].to_numpy(dtype=float)
        finite = np.isfinite(v)
        for key in (v, -v):  # lowest, then highest: per bucket, its first row after sorting by (bucket, value)
            order = np.lexsort((np.where(finite, key, np.inf), groups))
            pick = order[starts]  # buckets are contiguous row ranges, so bucket b starts at edges[b] in `order`
            keep.append(pick[finite[pick]])  # a bucket with no finite value (a warm-up) adds nothing
    t = _times(df.index)
    gaps = np.empty(0, dtype=np.int64)
    if isinstance(t, np.ndarray) and t.dtype.kind in "iu" and n > 2:
        dx = np.diff(t)
        gaps = np.flatnonzero(dx > 3 * max(float(np.median(dx)), 1))
        keep += [gaps, gaps + 1]
    rows = np.unique(np.concatenate(keep))
    out = df.iloc[rows]
    out.attrs = {**df.attrs, "gaps_ms": [int(v) for v in np.asarray(t)[gaps]] if len(gaps) else []}
    return out, f" (thinned for drawing to {len(rows):,} points: each of {buckets:,} buckets keeps its lowest and highest values)"


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


def _break_gaps(x, y: np.ndarray, gaps_ms: list[int] | None = None) -> tuple[object, np.ndarray]:
    """Insert a gap (NaN) where time jumps by more than 3 bars, so a line never bridges missing data.

    ``gaps_ms``: for thinned rows (whose own spacing is no guide), the times after which the data have a gap."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu" or len(x) < 3:
        return x, y
    dx = np.diff(x)
    step = float(np.median(dx))
    if gaps_ms is not None:
        cut = np.flatnonzero(np.isin(x[:-1], np.asarray(gaps_ms, dtype=x.dtype)))
    else:
        cut = np.flatnonzero(dx > 3 * max(step, 1))
    if not len(cut):
        return x, y
    xs = np.insert(x.astype(np.float64), cut + 1, x[cut] + step)
    ys = np.insert(y, cut + 1, np.nan)
    return xs, ys


def _line(x, y, name: str, **style: object) -> dict:
    xs, ys = _break_gaps(x, _values(y), getattr(y, "attrs", {}).get("gaps_ms"))  # a thinned table's real gaps
    return {"type": "scatter", "mode": "lines", "x": xs, "y": ys, "name": name, **style}


VALUE_AXIS = {"exponentformat": "none", "separatethousands": True, "hoverformat": ",.6~g", "automargin": True}
TIME_AXIS = {"type": "date", "title": {"text": "time (UTC)", "standoff": 4}, "automargin": True, "hoverformat": "%Y-%m-%d %H:%M:%S UTC"}
RANGE_BUTTONS = {"buttons": [
    {"count": 1, "label": "1h", "step": "hour", "stepmode": "backward"},
    {"count": 6, "label": "6h", "step": "hour", "stepmode": "backward"},
    {"count": 1, "label": "1d", "step": "day", "stepmode": "backward"},
    {"step": "all", "label": "all"},
], "bgcolor": "#333", "activecolor": "#555", "font": {"color": "#eee"}, "x": 0, "y": 1.12}


def _figure(traces: list[dict], title: str, revision: str, height: int = 320, date_axis: bool = True, **layout: object) -> Figure:
    base = {
        # title on top, the legend in its own row just above the plot (a long legend overlapped the title)
        "title": {"text": title, "y": 0.98, "yanchor": "top"}, "height": height, "margin": {"l": 60, "r": 20, "t": 60, "b": 40},
        "uirevision": revision, "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0}, "hovermode": "x unified",
        "hoverlabel": {"bgcolor": "#1e1e1e", "bordercolor": "#666", "font": {"color": "#eeeeee", "size": 12}},
        "yaxis": dict(VALUE_AXIS),
    }
    if date_axis:
        base["xaxis"] = dict(TIME_AXIS)
    else:
        base["xaxis"] = dict(VALUE_AXIS)
    for key, value in layout.items():  # axis dicts merge with the defaults above
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    for key in [k for k in base if k.startswith("yaxis") and k != "yaxis"]:
        base[key] = {**VALUE_AXIS, **base[key]}
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


def with_spread_band(table: pd.DataFrame, window: int) -> pd.DataFrame:
    """``table`` plus ``band_mean``/``band_std``: the spread's rolling mean and σ over the previous ``window`` rows.

    Computed on the whole table *before* it is thinned or trimmed for drawing (a rolling window over
    thinned points would average bars far apart)."""
    s = table["spread"]
    return table.assign(band_mean=s.rolling(window, min_periods=2).mean().shift(1),
                        band_std=s.rolling(window, min_periods=2).std().shift(1))


def spread_figure(table: pd.DataFrame, window: int, k: float, revision: str) -> Figure:
    """Spread with its rolling mean ± k·σ (previous ``window`` bars; from ``band_mean``/``band_std`` when the
    table has them — see :func:`with_spread_band`)."""
    s = table["spread"]
    if "band_mean" not in table:
        table = with_spread_band(table, window)
    mean, std = table["band_mean"], table["band_std"]
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


MAX_STALE_SHAPES = 200


def stale_shapes(table: pd.DataFrame) -> list[dict]:
    """Grey bands over runs of stale rows (a leg without trades past the limit: no z there).

    Consecutive stale rows are one band; at most :data:`MAX_STALE_SHAPES` (the longest)."""
    if "stale" not in table or not isinstance(table.index, pd.DatetimeIndex) or not table["stale"].any():
        return []
    st = table["stale"].to_numpy(dtype=bool)
    t = _times(table.index)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], st.astype(np.int8), [0]])))
    runs = list(zip(edges[::2], edges[1::2], strict=True))  # [start, end) row ranges
    runs.sort(key=lambda r: r[1] - r[0], reverse=True)
    step = int(np.median(np.diff(t))) if len(t) > 1 else 0
    out = []
    for a, b in runs[:MAX_STALE_SHAPES]:
        x1 = int(t[b]) if b < len(t) else int(t[b - 1]) + step
        out.append({"type": "rect", "xref": "x", "yref": "paper", "x0": int(t[a]), "x1": x1, "y0": 0, "y1": 1,
                    "fillcolor": "rgba(160,160,160,0.18)", "line": {"width": 0}, "layer": "below"})
    return out


def zscore_figure(table: pd.DataFrame, entry: float, exit: float, revision: str, note: str = "") -> Figure:
    """Z-score with entry/exit lines, markers where the signal changes, grey bands where a leg is stale."""
    shapes = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level, "line": {"dash": dash, "width": 1, "color": "#999"}}
        for level, dash in ((entry, "dash"), (-entry, "dash"), (exit, "dot"), (-exit, "dot"))
    ] + stale_shapes(table)
    traces = [_line(_times(table.index), table["zscore"], "z", line={"color": "#ab47bc"})]
    sig = table["signal"]
    change = sig.ne(sig.shift(1)) & sig.shift(1).notna()
    for value, name, color, symbol in ((1, "enter long spread", BUY, "triangle-up"), (-1, "enter short spread", SELL, "triangle-down"), (0, "exit", "#eeeeee", "x")):
        pts = table[change & (sig == value)]
        if len(pts):
            traces.append({"type": "scatter", "mode": "markers", "x": _times(pts.index), "y": _values(pts["zscore"]), "name": name,
                           "marker": {"color": color, "size": 9, "symbol": symbol}})
    return _figure(traces, f"Z-score{note}", revision, shapes=shapes, xaxis={"rangeselector": RANGE_BUTTONS})


def beta_figure(betas: dict[str, pd.Series], revision: str, band: pd.Series | None = None) -> Figure:
    """β of each method; ``band`` (the Kalman posterior σ of the first one) draws its ±2σ band."""
    palette = {"OLS": "#42a5f5", "Kalman": "#ffa726", "Huber": "#66bb6a"}
    traces = []
    if band is not None and np.isfinite(_values(band)).any():
        first = next(iter(betas.values()))
        t = _times(first.index)
        traces += [_line(t, first + 2 * band, "β + 2σ", line={"width": 0}, showlegend=False, hoverinfo="skip"),
                   _line(t, first - 2 * band, "β ± 2σ (filter)", line={"width": 0}, fill="tonexty",
                         fillcolor="rgba(255,167,38,0.22)", hoverinfo="skip")]
    traces += [_line(_times(s.index), s, f"β {name}", line={"color": palette.get(name, "#ab47bc")}) for name, s in betas.items()]
    return _figure(traces, "Hedge ratio β", revision, height=260)


def correlation_figure(table: pd.DataFrame, revision: str) -> Figure:
    trace = _line(_times(table.index), table["correlation"], "corr (returns)", line={"color": "#26c6da"})
    return _figure([trace], "Rolling correlation of returns", revision, height=240, yaxis={"range": [-1, 1]})


def volume_figure(bars: pd.DataFrame, symbol: str, revision: str, max_bars: int = 300, side_known: bool = True) -> Figure:
    """Taker buy vs sell volume (bars) and trade count (line); total volume only when the data
    has no taker side (never drawn as all buys).

    Over ``max_bars`` bars, consecutive bars are summed into buckets of ``k``
    (volumes and counts add up, so nothing is lost but resolution): thousands of
    SVG bars cost the browser more than the rest of the page.
    """
    k = max(1, -(-len(bars) // max_bars))
    if "volume" not in bars:
        bars = bars.assign(volume=bars["taker_buy_volume"].fillna(0) + bars["taker_sell_volume"].fillna(0))
    cols = ["taker_buy_volume", "taker_sell_volume", "trades", "volume"]
    if k > 1:
        groups = np.arange(len(bars)) // k
        summed = bars[cols].groupby(groups).sum()
        summed.index = bars.index[::k][: len(summed)]
        bars = summed
    x = _times(bars.index)
    summed = f" · each bar sums {k} bars" if k > 1 else ""
    if side_known:
        title = f"{symbol} volume (taker buy ↑ / sell ↓) and trade count{summed}"
        vol = [
            {"type": "bar", "x": x, "y": _values(bars["taker_buy_volume"]), "name": "taker buy", "marker": {"color": BUY}},
            {"type": "bar", "x": x, "y": -_values(bars["taker_sell_volume"]), "name": "taker sell", "marker": {"color": SELL}},
        ]
    else:
        title = f"{symbol} volume (no taker side in this data) and trade count{summed}"
        vol = [{"type": "bar", "x": x, "y": _values(bars["volume"]), "name": "volume", "marker": {"color": "#90a4ae"}}]
    return _figure(
        [
            *vol,
            _line(x, bars["trades"], "trades", line={"color": "#ffee58", "width": 1}, yaxis="y2"),
        ],
        title, revision, height=260, barmode="relative",
        yaxis={"title": {"text": f"{symbol} (base units)"}},
        yaxis2={"overlaying": "y", "side": "right", "rangemode": "nonnegative", "title": {"text": "trades"}, "showgrid": False,
                "tickformat": ",d", "dtick": count_step(float(np.nanmax(_values(bars["trades"]))) if len(bars) else 0.0)},
    )


def count_step(top: float, ticks: int = 4) -> int:
    """A whole-number tick step (1, 2, 5 × 10^k) giving about ``ticks`` ticks up to ``top``: a count axis never
    shows 190.7 trades."""
    if not np.isfinite(top) or top <= ticks:
        return 1
    raw = top / ticks
    mag = 10 ** int(np.floor(np.log10(raw)))
    return int(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


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
                   yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
                   xaxis={"automargin": True, "type": "category"}, margin={"l": 100, "r": 20, "t": 60, "b": 60})


def equity_figure(equity: pd.DataFrame, revision: str) -> Figure:
    """Equity (top, 70 %) and drawdown (bottom) on one shared time axis."""
    x = _times(equity.index)
    return _figure(
        [
            _line(x, equity["equity"], "equity"),
            _line(x, equity["drawdown"], "drawdown", fill="tozeroy", line={"color": SELL}, yaxis="y2"),
        ],
        "Backtest equity and drawdown (quote currency)", revision, height=440,
        # the time axis sits under the drawdown panel, its labels outside both panels
        xaxis={"anchor": "y2"}, yaxis={"domain": [0.36, 1.0], "title": {"text": "equity"}},
        yaxis2={"domain": [0.0, 0.3], "anchor": "x", "title": {"text": "drawdown"}},
    )


def series_figure(series: dict[str, pd.Series], title: str, revision: str, height: int = 280, **layout: object) -> Figure:
    """Lines on one time axis (research results: a basket's z, an out-of-sample equity)."""
    return _figure([_line(_times(s.index), s, name) for name, s in series.items()], title, revision, height=height, **layout)


def cusum_figure(cusum: pd.Series, bound: pd.Series, revision: str) -> Figure:
    """CUSUM of recursive residuals inside its ± significance lines."""
    t = _times(cusum.index)
    grey = {"dash": "dash", "width": 1, "color": "#999"}
    return _figure([_line(t, cusum, "CUSUM", line={"color": "#ab47bc"}), _line(t, bound, "5 % bound", line=grey),
                    _line(t, -bound, "−5 % bound", line=grey, showlegend=False)], "Hedge stability: CUSUM of recursive residuals",
                   revision, height=260)
