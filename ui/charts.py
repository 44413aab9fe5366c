"""Plotly figures for the dashboard. Pure: DataFrames in, figures out.

Every figure sets ``uirevision`` so zoom/pan survive live refreshes, and the
caller passes a stable ``key`` to ``st.plotly_chart``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# SVG traces (go.Scatter), not WebGL: a live page re-creates its charts every refresh and
# browsers cap WebGL contexts (~16), after which charts go blank. Display is decimated instead.
BUY, SELL, Y_COLOR, X_COLOR = "#26a69a", "#ef5350", "#42a5f5", "#ffa726"


def decimate(df: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """Keep at most ``max_points`` rows for display: the most recent ones."""
    return df if len(df) <= max_points else df.iloc[-max_points:]


def _layout(fig: go.Figure, title: str, revision: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin={"l": 50, "r": 20, "t": 40, "b": 30}, uirevision=revision,
        legend={"orientation": "h", "y": 1.12, "x": 0}, hovermode="x unified",
    )
    return fig


def prices_figure(table: pd.DataFrame, sym_y: str, sym_x: str, revision: str) -> go.Figure:
    """Both legs on a dual axis (raw prices)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=table.index, y=table["price_y"], name=f"{sym_y} (Y)", line={"color": Y_COLOR}), secondary_y=False)
    fig.add_trace(go.Scatter(x=table.index, y=table["price_x"], name=f"{sym_x} (X)", line={"color": X_COLOR}), secondary_y=True)
    fig.update_yaxes(title_text=sym_y, secondary_y=False)
    fig.update_yaxes(title_text=sym_x, secondary_y=True)
    return _layout(fig, "Prices", revision)


def spread_figure(table: pd.DataFrame, window: int, k: float, revision: str) -> go.Figure:
    """Spread with its rolling mean ± k·σ (previous ``window`` bars)."""
    s = table["spread"]
    mean = s.rolling(window, min_periods=2).mean().shift(1)
    std = s.rolling(window, min_periods=2).std().shift(1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=table.index, y=mean + k * std, name=f"+{k:g}σ", line={"width": 1, "dash": "dot", "color": "#888"}))
    fig.add_trace(go.Scatter(x=table.index, y=mean - k * std, name=f"-{k:g}σ", line={"width": 1, "dash": "dot", "color": "#888"}))
    fig.add_trace(go.Scatter(x=table.index, y=mean, name="rolling mean", line={"width": 1, "color": "#bbb"}))
    fig.add_trace(go.Scatter(x=table.index, y=s, name="spread", line={"color": Y_COLOR}))
    return _layout(fig, "Spread (out-of-sample hedge)", revision)


def zscore_figure(table: pd.DataFrame, entry: float, exit: float, revision: str) -> go.Figure:
    """Z-score with entry/exit lines and markers where the signal changes."""
    shapes = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level, "line": {"dash": dash, "width": 1, "color": "#999"}}
        for level, dash in ((entry, "dash"), (-entry, "dash"), (exit, "dot"), (-exit, "dot"))
    ]
    fig = go.Figure(layout={"shapes": shapes})  # one layout update, not four add_hline calls
    fig.add_trace(go.Scatter(x=table.index, y=table["zscore"], name="z", line={"color": "#ab47bc"}))
    sig = table["signal"]
    change = sig.ne(sig.shift(1)) & sig.shift(1).notna()
    for value, name, color, symbol in ((1, "enter long spread", BUY, "triangle-up"), (-1, "enter short spread", SELL, "triangle-down"), (0, "exit", "#eeeeee", "x")):
        pts = table[change & (sig == value)]
        if len(pts):
            fig.add_trace(go.Scatter(x=pts.index, y=pts["zscore"], mode="markers", name=name, marker={"color": color, "size": 9, "symbol": symbol}))
    return _layout(fig, "Z-score", revision)


def beta_figure(betas: dict[str, pd.Series], revision: str) -> go.Figure:
    fig = go.Figure()
    palette = {"OLS": "#42a5f5", "Kalman": "#ffa726", "Huber": "#66bb6a"}
    for name, series in betas.items():
        fig.add_trace(go.Scatter(x=series.index, y=series, name=f"β {name}", line={"color": palette.get(name, "#ab47bc")}))
    return _layout(fig, "Hedge ratio β", revision, height=260)


def correlation_figure(table: pd.DataFrame, revision: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=table.index, y=table["correlation"], name="corr (returns)", line={"color": "#26c6da"}))
    fig.update_yaxes(range=[-1, 1])
    return _layout(fig, "Rolling correlation of returns", revision, height=240)


def volume_figure(bars: pd.DataFrame, symbol: str, revision: str) -> go.Figure:
    """Taker buy vs sell volume (bars) and trade count (line)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=bars.index, y=bars["taker_buy_volume"], name="taker buy", marker_color=BUY), secondary_y=False)
    fig.add_trace(go.Bar(x=bars.index, y=-bars["taker_sell_volume"], name="taker sell", marker_color=SELL), secondary_y=False)
    fig.add_trace(go.Scatter(x=bars.index, y=bars["trades"], name="trades", line={"color": "#ffee58", "width": 1}), secondary_y=True)
    fig.update_layout(barmode="relative")
    return _layout(fig, f"{symbol} volume (taker buy ↑ / sell ↓) and trade count", revision, height=260)


def volume_profile_figure(profile: pd.DataFrame, symbol: str, revision: str) -> go.Figure:
    fig = go.Figure()
    if "buy_volume" in profile:
        fig.add_trace(go.Bar(y=profile["price_mid"], x=profile["buy_volume"], orientation="h", name="taker buy", marker_color=BUY))
        fig.add_trace(go.Bar(y=profile["price_mid"], x=profile["sell_volume"], orientation="h", name="taker sell", marker_color=SELL))
        fig.update_layout(barmode="stack")
    else:
        fig.add_trace(go.Bar(y=profile["price_mid"], x=profile["volume"], orientation="h", name="volume"))
    return _layout(fig, f"{symbol} volume profile", revision, height=320)


def heatmap_figure(corr: pd.DataFrame, revision: str) -> go.Figure:
    fig = go.Figure(
        go.Heatmap(z=corr.to_numpy(), x=list(corr.columns), y=list(corr.index), zmin=-1, zmax=1, colorscale="RdBu",
                   text=np.round(corr.to_numpy(), 2), texttemplate="%{text}")
    )
    return _layout(fig, "Correlation of returns", revision, height=360)


def equity_figure(equity: pd.DataFrame, revision: str) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    fig.add_trace(go.Scatter(x=equity.index, y=equity["equity"], name="equity"), row=1, col=1)
    fig.add_trace(go.Scatter(x=equity.index, y=equity["drawdown"], name="drawdown", fill="tozeroy", line={"color": SELL}), row=2, col=1)
    return _layout(fig, "Backtest equity and drawdown (quote currency)", revision, height=420)
