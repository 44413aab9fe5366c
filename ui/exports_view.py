"""Exports tab: the pair's processed analytics, OHLCV bars and raw ticks as CSV, and the feed's known gaps."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from pairs import BAR_TIMEFRAMES, BarSource, Timeframe, export_name, to_csv
from storage.store import GapRecord
from ui.controls import Controls
from ui.tables import styled

__all__ = ["exports"]

RawTicks = Callable[[str], pd.DataFrame]


def exports(source: BarSource, ctl: Controls, table: pd.DataFrame | None, timeframe: Timeframe,
            raw_ticks: RawTicks | None = None, gaps: list[GapRecord] | None = None) -> None:
    """``raw_ticks(symbol)``: every stored tick of a symbol (None: the source has no ticks, e.g. uploaded bars);
    ``gaps``: the feed's known id gaps (live only)."""
    st.markdown("All CSVs use ISO-8601 UTC timestamps; file names carry pair, timeframe and range.")
    prepare_exports(source, ctl, table, timeframe, raw_ticks)
    if gaps:
        st.markdown("**Known gaps** (ids the feed skipped, and whether REST filled them)")
        st.dataframe(gaps_frame(gaps), width="stretch", hide_index=True)


def gaps_frame(gaps: list[GapRecord]) -> pd.DataFrame:
    """Known gaps with UTC times (not epoch milliseconds) and plain column names, newest first."""
    df = pd.DataFrame([g.__dict__ for g in gaps])

    def utc(col: str, unit: str) -> pd.Series:
        return pd.to_datetime(df[col], unit=unit, utc=True).map(lambda t: f"{t:%Y-%m-%d %H:%M:%S}" if pd.notna(t) else "—")

    out = pd.DataFrame({
        "symbol": df["symbol"], "ids": [f"{a:,} … {b:,} ({b - a + 1:,})" for a, b in zip(df["from_agg_id"], df["to_agg_id"], strict=True)],
        "from (UTC)": utc("from_time", "ms"), "to (UTC)": utc("to_time", "ms"), "status": df["status"],
        "ticks filled": df["filled"], "note": df["note"], "detected (UTC)": utc("detected_at", "s"),
    })
    return out.iloc[::-1].reset_index(drop=True)


@st.fragment
def prepare_exports(source: BarSource, ctl: Controls, table: pd.DataFrame | None, timeframe: Timeframe, raw_ticks: RawTicks | None) -> None:
    """Export in two steps: *Prepare* snapshots one table as CSV, then it downloads.

    A one-click (deferred) ``st.download_button`` builds its file on click, but
    Streamlit (1.67) drops such a file at the second script run after building
    it, and the live fragments run several times a second: a busy browser then
    fetches a deleted file (a broken, hash-named download). A prepared CSV is an
    ordinary download tied to this session and stays valid. Only the latest
    snapshot is kept (memory); this fragment reruns alone, not the whole page.
    """
    c1, c2 = st.columns(2)
    sym = c1.selectbox("Symbol", ctl.symbols, key="exp_symbol")
    allowed = [tf.value for tf in BAR_TIMEFRAMES if source.effective(tf) is tf]
    if st.session_state.get("exp_tf") not in allowed:
        st.session_state["exp_tf"] = allowed[0]
    tf = Timeframe.parse(c2.selectbox("Bars timeframe", allowed, key="exp_tf"))
    kinds = {
        "analytics": f"Processed analytics {ctl.pair_label} {timeframe} (prices, β, α, spread, z, correlation, signal)",
        "bars": f"OHLCV bars {sym} {tf}",
    }
    if raw_ticks is not None:
        kinds["ticks"] = f"Raw ticks {sym} (everything stored)"
    clicked = [kind for kind, label in kinds.items() if st.button(f"Prepare CSV: {label}", key=f"prep_{kind}")]
    if clicked == ["analytics"] and table is None:
        st.info("Not enough data yet: the processed analytics need the pair's first window of bars.")
    elif clicked:
        kind = clicked[0]
        with st.spinner("building the CSV…"):
            if kind == "analytics":
                assert table is not None
                data, name, rows = to_csv(table), export_name("analytics", ctl.pair_label, timeframe, table.index), len(table)
            elif kind == "bars":
                bars = source.bars(sym, tf)
                data, name, rows = to_csv(bars), export_name("ohlcv", sym, tf, bars.index), len(bars)
            else:
                assert raw_ticks is not None
                ticks = raw_ticks(sym)  # one read: the file's name and row count describe the file
                times = pd.DatetimeIndex(pd.to_datetime(ticks["trade_time"], unit="ms", utc=True))
                data, name, rows = ticks.to_csv(index=False), export_name("ticks", sym, "tick", times), len(ticks)
        st.session_state["_export"] = {"label": kinds[kind], "data": data, "name": name, "rows": rows, "at": pd.Timestamp.now(tz="UTC")}
    prepared = st.session_state.get("_export")
    if prepared is not None:
        st.download_button(f"Download {prepared['name']}", prepared["data"], prepared["name"], "text/csv",
                           key="dl_prepared", on_click="ignore", type="primary")
        st.caption(f"{prepared['label']}: {prepared['rows']:,} rows, a snapshot taken {prepared['at']:%H:%M:%S} UTC; "
                   "prepare again for newer data.")
    if table is not None:
        st.caption(f"The analytics table: {len(table):,} rows ({timeframe}).")
        st.dataframe(styled(table.tail(200).iloc[::-1], {"price_y": "{:,.6g}", "price_x": "{:,.6g}", "beta": "{:.4f}",
                                                         "zscore": "{:+.2f}", "spread": "{:.5f}"}), height=240)
