"""Streamlit presentation helpers for ``app.py``: sidebar controls, charts, views.

Owns layout and rendering only. Numbers come from ``analytics``; data from
``storage``; live status from ``ingest`` health objects. It must never open
sockets or database connections itself.
"""
