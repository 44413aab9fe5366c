"""The pair-view layer: stored bars → aligned pair → table → what a pair shows, written once.

Sits above ``storage/`` and ``analytics/`` and below ``server/`` and ``ui/``
(beside ``alerts/``). A :class:`BarSource` is where bars come from (the feed in
memory, a replay, an uploaded dataset); :class:`Timeframe` is the one typed
timeframe; :mod:`pairs.frames` turns a source's bars into the pair table every
view, alert, export and API response shows; :mod:`pairs.universe` does the same
for every symbol at once; :mod:`pairs.exports` writes the CSV files. No Streamlit,
no sockets, no clock of its own.
"""

from pairs.exports import export_name, to_csv
from pairs.format import fmt_age, fmt_duration, fmt_number, fmt_price, fmt_signed
from pairs.frames import (
    PairFrame,
    compute_table,
    diagnostics_of,
    ffill_bars,
    needed_rows,
    pair_frame,
    pair_table_of,
    table_of,
)
from pairs.sources import BarSource, DatasetBars, LastTrade, LiveBars
from pairs.timeframe import BAR_TIMEFRAMES, TIMEFRAMES, Timeframe
from pairs.universe import closes_matrix, pair_scanner, returns_matrix, symbol_stats
from pairs.view import KPI_HELP, Note, PairView, Tile, newest_caption, pair_view, price_tiles, progress_note, z_tone

__all__ = [
    "BAR_TIMEFRAMES", "KPI_HELP", "TIMEFRAMES", "BarSource", "DatasetBars", "LastTrade", "LiveBars", "Note", "PairFrame", "PairView",
    "Tile", "Timeframe", "closes_matrix", "compute_table", "diagnostics_of", "export_name", "ffill_bars", "fmt_age", "fmt_duration",
    "fmt_number", "fmt_price", "fmt_signed", "needed_rows", "newest_caption", "pair_frame", "pair_scanner", "pair_table_of",
    "pair_view", "price_tiles", "progress_note", "returns_matrix", "symbol_stats", "table_of", "to_csv", "z_tone",
]
