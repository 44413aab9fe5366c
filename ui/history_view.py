"""The "Uploaded history" data source: upload, detection report, dataset pick/replace/delete, analysis.

Uploads are parsed and saved by a bounded worker process (:mod:`server.uploads`),
so a hostile file cannot starve the live feed. The dataset name and symbol
follow each new file; an existing name is only replaced after the user says
so, and a delete asks first and then says what it deleted. User strings
(file names, dataset names, symbols, messages) are shown as text.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import pandas as pd
import streamlit as st

import analytics
from ingest.files import FILE_SYMBOL_RE, FileFormatError
from ingest.history import HistoryError, download_trades
from server.pipeline import BAR_SECONDS, dataset_pair_frame, dataset_pair_table, export_name, needed_rows, to_csv
from server.runtime import Runtime
from server.uploads import UploadJob, start_upload
from storage.datasets import DatasetStore
from ui import charts
from ui.controls import Controls, parse_symbols
from ui.text import md_text
from ui.views import KPI_HELP, fmt_half_life, half_life_label


def datasets(rt: Runtime) -> DatasetStore:
    """The session's dataset store (opened, and migrated, once per session)."""
    if "_datasets" not in st.session_state:
        st.session_state["_datasets"] = DatasetStore(rt.store.db_path)
    return st.session_state["_datasets"]


def _suggested_name(filename: str) -> str:
    stem = filename.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-")[:60] or "dataset"


def _describe(info: dict) -> str:
    return f"'{info['name']}' ({info['kind']}, {int(info['rows']):,} rows: {', '.join(info['symbols'])})"


def upload_panel(rt: Runtime) -> None:
    ds = datasets(rt)
    note = st.session_state.pop("_upload_note", None)
    if note:
        (st.success if note[0] == "ok" else st.error)(note[1])
    st.markdown("**Upload history**")
    with st.container(border=True):
        up = st.file_uploader(
            "CSV, data.binance.vision .zip, or NDJSON — aggTrades, trades, ticks or OHLCV bars",
            type=["csv", "zip", "json", "ndjson", "jsonl", "txt"], key="upload_file",
        )
        if up is not None and st.session_state.get("_upload_fid") != up.file_id:
            # a new file: its own name and symbol, never the previous file's (widgets not created yet this run)
            st.session_state["_upload_fid"] = up.file_id
            st.session_state["upload_name"] = _suggested_name(up.name)
            m = FILE_SYMBOL_RE.search(up.name.upper())
            st.session_state["upload_symbol"] = m.group(1).upper() if m else ""
        c1, c2 = st.columns(2)
        name = c1.text_input("Dataset name", key="upload_name").strip()
        symbol = c2.text_input("Symbol (only if neither a column nor the file name says)", key="upload_symbol").strip()
        if up is None:
            return
        existing = ds.info(name) if name else None
        replace_ok = True
        if existing is not None:
            st.warning(f"A dataset named {md_text(_describe(existing))} exists already. Loading this file replaces it.")
            replace_ok = st.checkbox(f"Replace '{md_text(name)}'", key=f"upload_replace_{up.file_id}")
        busy = "_upload_job" in st.session_state
        if st.button("Load file", key="upload_go", disabled=not name or not replace_ok or busy, type="primary"):
            st.session_state["_upload_job"] = start_upload(
                up.getvalue(), up.name, name, rt.store.db_path, symbol or None, max_bytes=rt.settings.upload_max_mb * 1024 * 1024)
        if "_upload_job" in st.session_state:
            upload_progress()


@st.fragment(run_every=0.5)
def upload_progress() -> None:
    """The running upload's progress; when it ends, the whole page reruns (the dataset list changes)."""
    job: UploadJob | None = st.session_state.get("_upload_job")
    if job is None:
        return
    if job.state == "running":
        st.progress(min(1.0, job.progress), text=f"{md_text(job.filename)}: {job.stage}… {job.progress:.0%}")
        return
    del st.session_state["_upload_job"]
    if job.state == "done":
        st.session_state["_upload_note"] = ("ok", f"Saved {job.rows:,} rows as '{md_text(job.dataset)}' "
                                                  f"({md_text(', '.join(job.symbols))}). {md_text(job.message)}")
    else:
        st.session_state["_upload_note"] = ("error", f"Could not load: {md_text(job.message)}")
    st.rerun()


def download_panel(rt: Runtime) -> None:
    """Fetch official daily aggTrades zips (sha256-verified, cached) into a dataset."""
    ds = datasets(rt)
    with st.expander("Download Binance history (data.binance.vision)"):
        c1, c2, c3 = st.columns([3, 2, 2])
        text = c1.text_input("Symbols", value="BTCUSDT, ETHUSDT", key="dl_symbols")
        yesterday = dt.date.today() - dt.timedelta(days=1)
        start = c2.date_input("From (UTC day)", value=yesterday, key="dl_start")
        end = c3.date_input("To (UTC day)", value=yesterday, key="dl_end")
        name = st.text_input("Dataset name", value=f"binance-{start:%Y%m%d}-{end:%Y%m%d}", key="dl_name").strip()
        existing = ds.info(name) if name else None
        ok = True
        if existing is not None:
            st.warning(f"A dataset named {md_text(_describe(existing))} exists already. Downloading replaces it.")
            ok = st.checkbox(f"Replace '{md_text(name)}'", key="dl_replace")
        if st.button("Download and load", key="dl_go", disabled=not name or not ok):
            symbols, bad = parse_symbols(text)
            if bad or not symbols:
                st.error(f"Not USDⓈ-M perpetual symbols: {md_text(', '.join(bad) or '(none given)')}")
                return
            bar = st.progress(0.0, text="downloading…")
            try:
                merged = download_trades(rt.settings.history_url, symbols, start, end, rt.settings.history_cache_dir,
                                         progress=lambda f, fname: bar.progress(f, text=md_text(fname)))
                rows = ds.save(name, "ticks", merged, source=rt.settings.history_url, detail=f"aggTrades {start}..{end}, sha256 verified")
                st.success(f"Saved {rows:,} verified trades as '{md_text(name)}'")
            except (HistoryError, FileFormatError, ValueError) as exc:
                st.error(f"Download failed: {md_text(exc)}")
            finally:
                bar.empty()


def _ask_delete(name: str) -> None:
    st.session_state["_confirm_delete"] = name


def _cancel_delete() -> None:
    st.session_state.pop("_confirm_delete", None)


def _do_delete(ds: DatasetStore, name: str) -> None:
    info = ds.delete(name)
    st.session_state.pop("_confirm_delete", None)
    st.session_state["_deleted_note"] = f"Deleted {_describe(info)}." if info else f"'{name}' was already gone."


def dataset_analysis(rt: Runtime, ctl: Controls) -> pd.DataFrame | None:
    """Pick a dataset and a pair from it; returns the analytics table (same as live)."""
    ds = datasets(rt)
    note = st.session_state.pop("_deleted_note", None)
    if note:
        st.success(md_text(note))
    listing = ds.list()
    if listing.empty:
        st.info("No uploaded dataset yet: upload a file above.")
        return None
    c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
    name = c1.selectbox("Dataset", listing["name"].tolist(), key="ds_name")
    info = listing[listing["name"] == name].iloc[0]
    st.caption(md_text(f"{info['kind']} · {info['rows']:,} rows · symbols {', '.join(info['symbols'])} · {info['detail']}"))
    c4.button("Delete", key="ds_delete", on_click=_ask_delete, args=(name,))
    if st.session_state.get("_confirm_delete") == name:
        st.warning(f"Delete {md_text(_describe(info.to_dict()))}? This cannot be undone.")
        d1, d2, _ = st.columns([1, 1, 4])
        d1.button("Yes, delete it", key="ds_delete_yes", type="primary", on_click=_do_delete, args=(ds, name))
        d2.button("Cancel", key="ds_delete_no", on_click=_cancel_delete)
    syms = list(info["symbols"])
    if len(syms) < 2:
        st.warning("This dataset holds one symbol; a pair needs two. Upload the other leg too (in the same file, or "
                   "as a file with a symbol column).")
        return None
    for key, idx in (("ds_y", 1), ("ds_x", 0)):
        if st.session_state.get(key) not in syms:
            st.session_state[key] = syms[min(idx, len(syms) - 1)]
    y = c2.selectbox("Y", syms, key="ds_y")
    x = c3.selectbox("X", syms, key="ds_x")
    if x == y:
        st.error("Choose two different symbols.")
        return None
    tf = "1s" if ctl.timeframe == "tick" else ctl.timeframe
    try:
        frame = dataset_pair_frame(ds, name, y, x, tf, ctl.params)
    except ValueError as exc:
        st.error(md_text(exc))
        return None
    need = needed_rows(ctl.params)
    if len(frame) < need:
        st.warning(f"Only {len(frame):,} aligned {tf} bars; the first z-score needs {need:,}.")
        return None
    with st.spinner("computing…"):
        table = dataset_pair_table(ds, name, y, x, tf, ctl.params)
    last = table.iloc[-1]
    diag = analytics.pair_diagnostics(table["price_y"], table["price_x"], ctl.params)
    cols = st.columns(6)
    cols[0].metric("β", f"{last['beta']:.4f}" if math.isfinite(last["beta"]) else "—", help=KPI_HELP["beta"])
    cols[1].metric("spread", f"{last['spread']:.5f}" if math.isfinite(last["spread"]) else "—")
    cols[2].metric("z", f"{last['zscore']:+.2f}" if math.isfinite(last["zscore"]) else "—", help=KPI_HELP["z"])
    cols[3].metric("corr (returns)", f"{last['correlation']:.3f}" if math.isfinite(last["correlation"]) else "—", help=KPI_HELP["corr"])
    cols[4].metric("EG p (formation)", f"{diag.eg_pvalue:.3f}" if math.isfinite(diag.eg_pvalue) else "—", help=KPI_HELP["eg"])
    cols[5].metric(half_life_label(diag), fmt_half_life(diag), help=KPI_HELP["hl"])
    st.caption(f"Cointegration: {diag.verdict} — {md_text(diag.describe())}")
    shown, note = charts.decimate_minmax(table, rt.settings.max_chart_points)
    st.caption(f"Charts: all {len(table):,} bars, {table.index[0]:%Y-%m-%d %H:%M} → {table.index[-1]:%Y-%m-%d %H:%M} UTC{note}. "
               "Drag to zoom; double-click to see everything again.")
    rev = f"ds-{name}-{y}-{x}-{tf}"
    st.plotly_chart(charts.zscore_figure(shown, ctl.params.entry, ctl.params.exit, rev), key="ds_z")
    a, b = st.columns(2)
    a.plotly_chart(charts.spread_figure(shown, ctl.params.window, ctl.band_k, rev), key="ds_spread")
    b.plotly_chart(charts.prices_figure(shown, y, x, rev), key="ds_prices")
    a2, b2 = st.columns(2)
    a2.plotly_chart(charts.beta_figure({ctl.params.method: shown["beta"]}, rev), key="ds_beta")
    b2.plotly_chart(charts.correlation_figure(shown, rev), key="ds_corr")
    st.download_button(
        "Processed analytics (prices, β, α, spread, z, correlation, signal)", to_csv(table),
        export_name("analytics", f"{y}-{x}", tf, table.index), "text/csv", key="ds_dl", on_click="ignore",
    )
    st.session_state["_ds_bar_seconds"] = BAR_SECONDS.get(tf, 60.0)
    return table
