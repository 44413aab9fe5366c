"""Tick storage: the thread-safe in-memory columnar buffer, SQLite persistence and bars.

Owns every tick the ingestion layer delivers and serves consistent snapshots
(ticks, 1s/1m/5m bars, aligned pair bars, CSV exports) to the dashboard, the
alert engine and the CLI while writes continue. It must never import
``streamlit``, ``ingest``, ``alerts`` or ``analytics`` and never opens a socket.
"""
