"""Tick storage: the thread-safe in-memory columnar buffer, persistence (SQLite or PostgreSQL) and bars.

Owns every tick the ingestion layer delivers and serves consistent snapshots
(ticks, 1s/1m/5m bars, aligned pair bars, CSV exports) to the dashboard, the
alert engine and the CLI while writes continue. Both database backends sit
behind one writer/reader interface (:class:`storage.store.TickStore`). It must
never import ``streamlit``, ``ingest``, ``alerts`` or ``analytics``; the only
connections it opens are to its own database (and its writer child process).
"""
