"""Timing helpers and the result table."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    """One comparison: our median seconds vs the alternative's (``ratio = alt / ours``)."""

    name: str
    ours_s: float
    alternative: str
    alt_s: float | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.alt_s is None or self.ours_s <= 0 else self.alt_s / self.ours_s


def median_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def render(rows: list[Row]) -> str:
    head = f"| {'benchmark':<44} | {'ours':>10} | {'alternative':<40} | {'alt':>10} | {'ratio':>8} | note"
    lines = [head, "|" + "-" * (len(head) - 1)]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:,.1f}x"
        lines.append(
            f"| {r.name:<44} | {fmt_seconds(r.ours_s):>10} | {r.alternative:<40} | {fmt_seconds(r.alt_s):>10} | {ratio:>8} | {r.note}"
        )
    return "\n".join(lines)


def machine() -> dict[str, str]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "date": time.strftime("%Y-%m-%d"),
    }


def write_json(rows: list[Row], path: Path) -> None:
    payload = {"machine": machine(), "rows": [{**asdict(r), "ratio": r.ratio} for r in rows]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
