"""The "Uploaded history" data source: upload, detection report, dataset pick/delete, analysis."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from ingest.files import FileFormatError, load_bytes
from ingest.history import HistoryError, download_trades
from storage.datasets import DatasetStore
from ui import charts
from ui.controls import Controls, parse_symbols
from ui.pipeline import BAR_SECONDS, dataset_pair_frame, dataset_pair_table, export_name, spread_diagnostics, to_csv
from ui.runtime import Runtime


def datasets(rt: Runtime) -> DatasetStore:
    """The session's dataset store (opened, and migrated, once per session)."""
    if "_datasets" not in st.session_state:
        st.session_state["_datasets"] = DatasetStore(rt.store.db_path)
    return st.session_state["_datasets"]


def upload_panel(rt: Runtime) -> None:
    ds = datasets(rt)
    with st.expander("Upload history", expanded=ds.list().empty):
        up = st.file_uploader(
            "CSV, data.binance.vision .zip, or NDJSON — aggTrades, trades, ticks or OHLCV bars",
            type=["csv", "zip", "json", "ndjson", "jsonl", "txt"], key="upload_file",
        )
        c1, c2 = st.columns(2)
        name = c1.text_input("Dataset name", value=(up.name.rsplit(".", 1)[0] if up else ""), key="upload_name")
        symbol = c2.text_input("Symbol (only if neither a column nor the file name says)", key="upload_symbol")
        if up is not None and st.button("Load file", key="upload_go"):
            bar = st.progress(0.0, text="parsing…")
            try:
                loaded = load_bytes(up.name, up.getvalue(), symbol or None, max_bytes=rt.settings.upload_max_mb * 1024 * 1024,
                                    progress=lambda f: bar.progress(f, text=f"parsing… {f:.0%}"))
                bar.progress(1.0, text="saving…")
                rows = ds.save(name or up.name, loaded.kind, loaded.frames, source=up.name, detail=loaded.report.summary())
                st.success(f"Saved {rows:,} rows as '{name or up.name}'. {loaded.report.summary()}")
            except (FileFormatError, ValueError) as exc:
                st.error(f"Could not load {up.name}: {exc}")
            finally:
                bar.empty()


def download_panel(rt: Runtime) -> None:
    """Fetch official daily aggTrades zips (sha256-verified, cached) into a dataset."""
    ds = datasets(rt)
    with st.expander("Download Binance history (data.binance.vision)"):
        c1, c2, c3 = st.columns([3, 2, 2])
        text = c1.text_input("Symbols", value="BTCUSDT, ETHUSDT", key="dl_symbols")
        yesterday = dt.date.today() - dt.timedelta(days=1)
        start = c2.date_input("From (UTC day)", value=yesterday, key="dl_start")
        end = c3.date_input("To (UTC day)", value=yesterday, key="dl_end")
        name = st.text_input("Dataset name", value=f"binance-{start:%Y%m%d}-{end:%Y%m%d}", key="dl_name")
        if st.button("Download and load", key="dl_go"):
            symbols, bad = parse_symbols(text)
            if bad or not symbols:
                st.error(f"Not USDⓈ-M perpetual symbols: {', '.join(bad) or '(none given)'}")
                return
            bar = st.progress(0.0, text="downloading…")
            try:
                merged = download_trades(rt.settings.history_url, symbols, start, end, rt.settings.history_cache_dir,
                                         progress=lambda f, fname: bar.progress(f, text=fname))
                rows = ds.save(name, "ticks", merged, source=rt.settings.history_url, detail=f"aggTrades {start}..{end}, sha256 verified")
                st.success(f"Saved {rows:,} verified trades as '{name}'")
            except (HistoryError, FileFormatError, ValueError) as exc:
                st.error(f"Download failed: {exc}")
            finally:
                bar.empty()


def dataset_analysis(rt: Runtime, ctl: Controls) -> pd.DataFrame | None:
    """Pick a dataset and a pair from it; returns the analytics table (same as live)."""
    ds = datasets(rt)
    listing = ds.list()
    if listing.empty:
        st.info("No uploaded dataset yet: upload a file above.")
        return None
    c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
    name = c1.selectbox("Dataset", listing["name"].tolist(), key="ds_name")
    info = listing[listing["name"] == name].iloc[0]
    st.caption(f"{info['kind']} · {info['rows']:,} rows · symbols {', '.join(info['symbols'])} · {info['detail']}")
    if c4.button("Delete", key="ds_delete"):
        ds.delete(name)
        st.rerun()
    syms = list(info["symbols"])
    if len(syms) < 2:
        st.warning("This dataset holds one symbol; a pair needs two. Upload the other leg too (as its own dataset or in the same file).")
        return None
    y = c2.selectbox("Y", syms, index=1 if len(syms) > 1 else 0, key="ds_y")
    x = c3.selectbox("X", syms, index=0, key="ds_x")
    if x == y:
        st.error("Choose two different symbols.")
        return None
    tf = "1s" if ctl.timeframe == "tick" else ctl.timeframe
    try:
        frame = dataset_pair_frame(ds, name, y, x, tf)
    except ValueError as exc:
        st.error(str(exc))
        return None
    if len(frame) < ctl.params.window + 2:
        st.warning(f"Only {len(frame)} aligned {tf} bars; the {ctl.params.window}-bar window needs {ctl.params.window + 2}.")
        return None
    with st.spinner("computing…"):
        table = dataset_pair_table(ds, name, y, x, tf, ctl.params)
    last = table.iloc[-1]
    diag = spread_diagnostics(table)
    cols = st.columns(6)
    cols[0].metric("β", f"{last['beta']:.4f}")
    cols[1].metric("spread", f"{last['spread']:.5f}")
    cols[2].metric("z", f"{last['zscore']:+.2f}")
    cols[3].metric("corr", f"{last['correlation']:.3f}")
    cols[4].metric("ADF p", f"{diag['adf_pvalue']:.3f}")
    cols[5].metric("half-life (bars)", f"{diag['half_life']:.0f}")
    shown = charts.decimate(table, rt.settings.max_chart_points)
    rev = f"ds-{name}-{y}-{x}-{tf}"
    st.plotly_chart(charts.zscore_figure(shown, ctl.params.entry, ctl.params.exit, rev), key="ds_z")
    a, b = st.columns(2)
    a.plotly_chart(charts.spread_figure(shown, ctl.params.window, ctl.band_k, rev), key="ds_spread")
    b.plotly_chart(charts.prices_figure(shown, y, x, rev), key="ds_prices")
    st.download_button(
        "Processed analytics (prices, β, α, spread, z, correlation, signal)", to_csv(table),
        export_name("analytics", f"{y}-{x}", tf, table.index), "text/csv", key="ds_dl",
    )
    st.session_state["_ds_bar_seconds"] = BAR_SECONDS.get(tf, 60.0)
    return table
