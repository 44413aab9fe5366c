"""Write architecture.drawio and architecture.svg from one description (so they always match).

Run: python scripts/make_architecture.py
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]

# id: (label, x, y, w, h, fill)
BOXES = {
    "binance": ("Binance USD-M futures\nwss …/market/stream (aggTrade)\nREST aggTrades · klines · funding", 20, 40, 230, 70, "#fff2cc"),
    "files": ("Files: CSV / .zip / NDJSON\n(aggTrades, trades, ticks, OHLCV)", 20, 330, 230, 60, "#fff2cc"),
    "ws": ("ingest: thread binance-ws\nconnect · backoff · watchdog · 451\nparse frames → queue", 300, 10, 240, 70, "#dae8fc"),
    "seq": ("ingest: thread binance-seq\norder · de-dup · gap → REST backfill\ndeliver batches (sink)", 300, 110, 240, 70, "#dae8fc"),
    "recorder": ("python -m ingest (recorder shards)\nper-symbol advisory locks\nhot standby · BarRecorder", 300, 210, 240, 70, "#dae8fc"),
    "loader": ("ingest.files (upload worker process)\ndetect · validate · normalise", 300, 330, 240, 60, "#dae8fc"),
    "buffer": ("storage.TickBuffer\ncolumnar NumPy, 45 B/tick\nper-symbol lock, bounded", 590, 40, 220, 70, "#d5e8d4"),
    "writer": ("writer child process\nbatched commits ≤250 ms\nfault states, reopen, retries", 590, 140, 220, 70, "#d5e8d4"),
    "sqlite": ("SQLite (WAL, default)\nticks · gaps · datasets\nalert_rules · alert_events", 590, 240, 220, 70, "#d5e8d4"),
    "pg": ("PostgreSQL (scale-out)\nCOPY → ON CONFLICT · partitions\nbars/hour blocks · LISTEN/NOTIFY", 590, 340, 220, 70, "#d5e8d4"),
    "follower": ("storage.Follower\nLISTEN/NOTIFY → fetch new ticks\n(dashboards not recording)", 300, 450, 240, 60, "#d5e8d4"),
    "bars": ("storage bars\n1s/1m/5m resampler (numba)\nclosed-bar cache · pair align", 860, 40, 230, 70, "#d5e8d4"),
    "analytics": ("analytics (pure)\nOLS · Kalman · Huber · z · EG · backtest\nscanner · Johansen · OU · walk-forward", 860, 160, 230, 70, "#e1d5e7"),
    "alerts": ("thread alert-engine\nrules · hysteresis · leader lock\nshadow + takeover → alert_events", 860, 290, 230, 70, "#f8cecc"),
    "webhook": ("thread alert-webhooks\nSlack/Discord/generic POST\nSSRF-checked, retries", 860, 430, 230, 70, "#f8cecc"),
    "server": ("server (st.App, Starlette/Uvicorn)\nlifespan runtime · security middleware\n/healthz /metrics /api/v1/*", 1130, 330, 240, 80, "#ffe6cc"),
    "push": ("/live WebSocket (LiveHub)\none computation per distinct view\nnewest ticks · KPIs · z points", 1130, 40, 240, 80, "#ffe6cc"),
    "ui": ("Streamlit sessions (one per browser)\npushed live panel · fragments\nresearch · backtest · alerts · exports", 1130, 185, 240, 80, "#ffe6cc"),
}

ARROWS = [
    ("binance", "ws", "frames"), ("ws", "seq", "queue"), ("binance", "seq", "REST backfill"),
    ("seq", "buffer", "write(batch)"), ("seq", "writer", ""), ("writer", "sqlite", "commit"), ("writer", "pg", "COPY"),
    ("recorder", "pg", "own symbols"), ("pg", "follower", "NOTIFY"), ("follower", "buffer", "append"),
    ("sqlite", "buffer", "warm start"), ("files", "loader", "upload"), ("loader", "sqlite", "datasets"),
    ("buffer", "bars", "snapshot"), ("bars", "analytics", "aligned bars"), ("analytics", "push", "tables"),
    ("analytics", "alerts", "same metrics"), ("alerts", "webhook", "events"), ("server", "ui", "pages"),
    ("push", "ui", "push"), ("analytics", "server", "read API"),
]


def _center(b: str) -> tuple[float, float]:
    _, x, y, w, h, _ = BOXES[b]
    return x + w / 2, y + h / 2


def drawio() -> str:
    cells = ['<mxCell id="0"/>', '<mxCell id="1" parent="0"/>']
    for bid, (label, x, y, w, h, fill) in BOXES.items():
        value = escape(label).replace("\n", "&#xa;")
        cells.append(
            f'<mxCell id="{bid}" value="{value}" style="rounded=1;whiteSpace=wrap;html=0;fillColor={fill};strokeColor=#666666;fontSize=11;" vertex="1" parent="1">'
            f'<mxGeometry x="{x}" y="{y}" width="{w}" height="{h}" as="geometry"/></mxCell>'
        )
    for i, (a, b, label) in enumerate(ARROWS):
        cells.append(
            f'<mxCell id="e{i}" value="{escape(label)}" style="endArrow=block;html=0;fontSize=10;" edge="1" parent="1" source="{a}" target="{b}">'
            '<mxGeometry relative="1" as="geometry"/></mxCell>'
        )
    body = "".join(cells)
    return (
        '<mxfile host="app.diagrams.net"><diagram id="alphastream" name="AlphaStream architecture">'
        f'<mxGraphModel dx="1400" dy="560" grid="1" gridSize="10" guides="1" page="1" pageWidth="1400" pageHeight="560"><root>{body}</root></mxGraphModel>'
        "</diagram></mxfile>\n"
    )


def svg() -> str:
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="1400" height="560" viewBox="0 0 1400 560" font-family="Helvetica, Arial, sans-serif">',
           '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#444"/></marker></defs>',
           '<rect width="1400" height="560" fill="white"/>']
    for a, b, label in ARROWS:
        (x1, y1), (x2, y2) = _center(a), _center(b)
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#444" stroke-width="1.2" marker-end="url(#arrow)" opacity="0.7"/>')
        if label:
            out.append(f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 4}" font-size="10" fill="#333" text-anchor="middle">{escape(label)}</text>')
    for label, x, y, w, h, fill in BOXES.values():
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#666"/>')
        lines = label.split("\n")
        for i, line in enumerate(lines):
            ty = y + h / 2 + (i - (len(lines) - 1) / 2) * 14 + 4
            weight = "bold" if i == 0 else "normal"
            out.append(f'<text x="{x + w / 2}" y="{ty}" font-size="11" font-weight="{weight}" text-anchor="middle">{escape(line)}</text>')
    out.append('<text x="20" y="550" font-size="11" fill="#555">Server process threads: binance-ws, binance-seq, alert-engine, alert-webhooks, live hub, pg-leases/listener; the writer and uploads run in child processes; sessions only read snapshots.</text>')
    out.append("</svg>\n")
    return "\n".join(out)


if __name__ == "__main__":
    (ROOT / "architecture.drawio").write_text(drawio())
    (ROOT / "architecture.svg").write_text(svg())
    print("wrote architecture.drawio and architecture.svg")
