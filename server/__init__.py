"""The AlphaStream server process: its runtime, data plumbing and HTTP/WebSocket surface.

Owns the per-process runtime (tick store, ingestion, alert engine, the recorded
universe), started once when the server starts (the ASGI lifespan), not by the
first browser session; the frames -> tables plumbing every consumer shares
(dashboard, read API, exports, CLI); and the ASGI pieces ``app.py`` wires into
``st.App``: security middleware, ops endpoints, the read API and the live push
channel. It must never import ``streamlit`` (``app.py`` and ``ui`` do).
"""
