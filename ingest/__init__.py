"""Market-data ingestion: sources that turn a venue's feed into ordered tick batches.

Owns connections (reconnect, backoff, watchdog), per-exchange parsing, gap
detection and REST backfill, file loading and replay, and hands batches to a
sink (``storage``). It must never import ``streamlit``, ``analytics`` or
``alerts``; the dashboard never talks to a socket, only to ``storage``.
"""
