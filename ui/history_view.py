"""The "Uploaded history" data source: upload (several files at once, or a leg added to a dataset), pick, delete.

Uploads are parsed and saved by a bounded worker process (:mod:`server.uploads`),
so a hostile file cannot starve the live feed. A dataset name is suggested from
the files (and never overwrites a name the user typed); a name that exists
already asks whether to add the files' legs to it or to replace it; after a
load the new dataset is selected and the timeframe follows its bars. A delete
asks first and then says what it deleted. User strings (file names, dataset
names, symbols, messages) are shown as text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pandas as pd
import streamlit as st

from ingest.files import FILE_SYMBOL_RE, FileFormatError
from ingest.history import HistoryError, download_trades
from pairs import DatasetBars, PairView, Timeframe, export_name, pair_view, to_csv
from server.runtime import Runtime
from server.uploads import UploadJob, start_upload
from storage.datasets import DatasetStore
from ui import charts
from ui.controls import Controls, parse_symbols, set_widgets_next_run
from ui.pair_view import render_notes, render_tiles
from ui.text import md_text

__all__ = ["dataset_pair", "dataset_picker", "datasets", "download_panel", "raw_ticks", "upload_panel"]


def datasets(rt: Runtime) -> DatasetStore:
    """The session's dataset store (opened, and migrated, once per session)."""
    if "_datasets" not in st.session_state:
        st.session_state["_datasets"] = DatasetStore(rt.store.db_path)
    return st.session_state["_datasets"]


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "dataset"


def suggested_name(filenames: list[str]) -> str:
    """A dataset name from the files: one file → its stem; one file per symbol with otherwise equal names →
    the symbols joined and the common rest (``BTCUSDT-ETHUSDT_1m_2025-01-01_2025-02-04``)."""
    stems = [f.rsplit(".", 1)[0] for f in filenames]
    if len(stems) == 1:
        return _clean(stems[0])
    found = [FILE_SYMBOL_RE.search(s) for s in stems]
    if all(found):
        rests = {(s[: m.start()] + s[m.end():]) for s, m in zip(stems, found, strict=True) if m is not None}
        syms = sorted({m.group(1).upper() for m in found if m is not None})
        if len(rests) == 1:
            return _clean("-".join(syms) + rests.pop())
        return _clean("-".join(syms))
    return _clean(f"{stems[0]}-and-{len(stems) - 1}-more")


def _describe(info: dict) -> str:
    return f"'{info['name']}' ({info['kind']}, {int(info['rows']):,} rows: {', '.join(info['symbols'])})"


def upload_panel(rt: Runtime) -> None:
    ds = datasets(rt)
    note = st.session_state.pop("_upload_note", None)
    if note:
        (st.success if note[0] == "ok" else st.error)(note[1])
    n = st.session_state.get("_upload_round", 0)
    ups = st.file_uploader(
        "**Upload history** — CSV, data.binance.vision .zip, or NDJSON: aggTrades, trades, ticks or OHLCV bars. "
        "Select several files at once for the legs of a pair (one file per symbol).",
        type=["csv", "zip", "json", "ndjson", "jsonl", "txt"], key=f"upload_files_{n}", accept_multiple_files=True,
    )
    ups = list(ups or [])
    if not ups:
        if "_upload_job" in st.session_state:
            upload_progress()
        return
    fids = tuple(u.file_id for u in ups)
    if st.session_state.get("_upload_fids") != fids:
        # new files: suggest a name — unless the user typed one of their own (widgets not created yet this run)
        st.session_state["_upload_fids"] = fids
        suggestion = suggested_name([u.name for u in ups])
        if st.session_state.get("upload_name", "") in ("", st.session_state.get("_upload_suggested")):
            st.session_state["upload_name"] = suggestion
        st.session_state["_upload_suggested"] = suggestion
        m = FILE_SYMBOL_RE.search(ups[0].name.upper()) if len(ups) == 1 else None
        st.session_state["upload_symbol"] = m.group(1).upper() if m else ""
    with st.container(border=True):
        c1, c2 = st.columns(2)
        name = c1.text_input("Dataset name", key="upload_name").strip()
        symbol = c2.text_input("Symbol (only for files whose name and columns do not say)", key="upload_symbol").strip()
        existing = ds.info(name) if name else None
        mode = "replace"
        if existing is not None:
            mode = st.radio(f"A dataset named {md_text(_describe(existing))} exists already:", ("add", "replace"), horizontal=True,
                            key=f"upload_mode_{len(fids)}_{fids[0]}",
                            format_func={"add": "add these files' legs to it (a leg of the same symbol is replaced)",
                                         "replace": f"replace '{md_text(name)}' entirely"}.get)
        busy = "_upload_job" in st.session_state
        label = "Load file" if len(ups) == 1 else f"Load {len(ups)} files"
        if st.button(label, key="upload_go", disabled=not name or busy, type="primary"):
            st.session_state["_upload_job"] = start_upload(
                [(u.name, u.getvalue()) for u in ups], name, rt.store.db_path, symbol or None, mode=mode,
                max_bytes=rt.settings.upload_max_mb * 1024 * 1024)
        if "_upload_job" in st.session_state:
            upload_progress()


@st.fragment(run_every=0.5)
def upload_progress() -> None:
    """The running upload's progress; when it ends, the whole page reruns on the new dataset."""
    job: UploadJob | None = st.session_state.get("_upload_job")
    if job is None:
        return
    if job.state == "running":
        st.progress(min(1.0, job.progress), text=f"{md_text(job.filename)}: {job.stage}… {job.progress:.0%}")
        return
    del st.session_state["_upload_job"]
    if job.state == "done":
        verb = "Added" if job.mode == "add" else "Saved"
        legs = f"; the dataset now holds {md_text(', '.join(job.dataset_symbols))}" if job.mode == "add" else ""
        st.session_state["_upload_note"] = ("ok", f"{verb} {job.rows:,} rows as '{md_text(job.dataset)}' "
                                                  f"({md_text(', '.join(job.symbols))}){legs}. {md_text(job.message)}")
        pending: dict[str, object] = {"ds_name": job.dataset}
        if job.native_ms:  # the timeframe follows the data: the finest one its bars allow
            fits = Timeframe.at_least(job.native_ms)
            current = Timeframe.parse(st.session_state.get("timeframe", "1s"))
            if fits is not None and current.bars.bar_ms < fits.bar_ms:
                pending["timeframe"] = fits.value
        set_widgets_next_run(**pending)
        st.session_state["_upload_round"] = st.session_state.get("_upload_round", 0) + 1  # an empty uploader next
        st.session_state.pop("_upload_fids", None)
        st.session_state.pop("_upload_suggested", None)
        st.session_state.pop("upload_name", None)
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


def dataset_picker(rt: Runtime, ctl: Controls) -> tuple[DatasetBars, Controls] | None:
    """Pick a dataset and a pair from it; returns its bar source and the controls on it (its symbols, pair and the
    timeframe its bars allow), or None with what is missing on screen."""
    ds = datasets(rt)
    note = st.session_state.pop("_deleted_note", None)
    if note:
        st.success(md_text(note))
    listing = ds.list()
    if listing.empty:
        st.info("No uploaded dataset yet: upload a file above (several at once for the legs of a pair).")
        return None
    names = listing["name"].tolist()
    if st.session_state.get("ds_name") not in names:
        st.session_state["ds_name"] = names[0]
    c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
    name = c1.selectbox("Dataset", names, key="ds_name")
    info = listing[listing["name"] == name].iloc[0]
    c4.button("Delete", key="ds_delete", on_click=_ask_delete, args=(name,))
    if st.session_state.get("_confirm_delete") == name:
        st.warning(f"Delete {md_text(_describe(info.to_dict()))}? This cannot be undone.")
        d1, d2, _ = st.columns([1, 1, 4])
        d1.button("Yes, delete it", key="ds_delete_yes", type="primary", on_click=_do_delete, args=(ds, name))
        d2.button("Cancel", key="ds_delete_no", on_click=_cancel_delete)
    source = DatasetBars(ds, name)
    try:
        tf = source.effective(ctl.timeframe)
    except ValueError as exc:
        st.error(md_text(exc))
        return None
    st.caption(md_text(f"{info['kind']} · {info['rows']:,} rows · symbols {', '.join(info['symbols'])} · {info['detail']}", 800))
    if tf is not ctl.timeframe:
        st.info(f"This dataset has {'1 s' if tf is Timeframe.S1 else tf} bars at the finest"
                + (" (no tick view for uploaded data)" if ctl.timeframe.is_tick else "") + f": shown at {tf}.")
    syms = list(info["symbols"])
    if len(syms) < 2:
        st.warning("This dataset holds one symbol; a pair needs two. Upload the other leg with this dataset's name: "
                   "its leg is added to the dataset.")
        return None
    for key, idx in (("ds_y", 1), ("ds_x", 0)):
        if st.session_state.get(key) not in syms:
            st.session_state[key] = syms[min(idx, len(syms) - 1)]
    y = c2.selectbox("Y", syms, key="ds_y")
    x = c3.selectbox("X", syms, key="ds_x")
    if x == y:
        st.error("Choose two different symbols.")
        return None
    return source, replace(ctl, symbols=tuple(syms), sym_y=y, sym_x=x, timeframe=tf)


def dataset_pair(source: DatasetBars, ctl: Controls, max_points: int) -> PairView:
    """The pair view of a dataset pair: tiles, notes and every chart over all its bars (thinned for drawing only)."""
    cache = st.session_state.setdefault("_ds_view_cache", {})
    key = (source.name, source.datasets.info(source.name)["created_at"])
    if cache.get("dataset") != key:
        cache.clear()
        cache["dataset"] = key
    with st.spinner("computing…"):
        view = pair_view(source, ctl.sym_y, ctl.sym_x, ctl.timeframe, ctl.params, ctl.params.stale_after_s, cache)
    render_notes(view)
    render_tiles(view, keys=("z", "beta", "corr", "spread", "eg", "half_life", "price_y", "price_x", "row"), per_row=5)
    table = view.table
    if view.diag is not None:
        st.caption(f"Cointegration (formation window): {md_text(view.diag.describe())}")
    if table is None:
        return view
    shown, note = charts.decimate_minmax(charts.with_spread_band(table, ctl.params.window), max_points)
    st.caption(f"Charts: all {len(table):,} bars, {table.index[0]:%Y-%m-%d %H:%M} → {table.index[-1]:%Y-%m-%d %H:%M} UTC{note}. "
               "Drag to zoom; double-click to see everything again.")
    rev = f"ds-{source.name}-{ctl.sym_y}-{ctl.sym_x}-{view.timeframe}"
    st.plotly_chart(charts.zscore_figure(shown, ctl.params.entry, ctl.params.exit, rev), key="ds_z")
    a, b = st.columns(2)
    a.plotly_chart(charts.spread_figure(shown, ctl.params.window, ctl.band_k, rev), key="ds_spread")
    b.plotly_chart(charts.prices_figure(shown, ctl.sym_y, ctl.sym_x, rev), key="ds_prices")
    a2, b2 = st.columns(2)
    a2.plotly_chart(charts.beta_figure({ctl.params.method: shown["beta"]}, rev), key="ds_beta")
    b2.plotly_chart(charts.correlation_figure(shown, rev), key="ds_corr")
    st.download_button(
        "Processed analytics (prices, β, α, spread, z, correlation, signal)", to_csv(table),
        export_name("analytics", f"{ctl.sym_y}-{ctl.sym_x}", view.timeframe, table.index), "text/csv", key="ds_dl", on_click="ignore",
    )
    return view


def raw_ticks(source: DatasetBars):
    """``symbol -> every tick`` of a tick dataset (for the Exports tab), None for a bars dataset."""
    if source.kind != "ticks":
        return None

    def read(symbol: str) -> pd.DataFrame:
        df = source.datasets.ticks(source.name, symbol)
        df.insert(0, "symbol", symbol)
        df.insert(0, "timestamp", pd.to_datetime(df["trade_time"], unit="ms", utc=True).map(lambda t: t.isoformat()))
        return df

    return read
