"""``python -m benchmarks [--quick] [--only NAME] [--json PATH]``."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Row, machine, render, write_json

SUITES = ["benchmarks.bench_analytics", "benchmarks.bench_storage", "benchmarks.bench_ingest", "benchmarks.bench_files", "benchmarks.bench_app",
          "benchmarks.bench_postgres", "benchmarks.bench_research"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs (smoke run)")
    parser.add_argument("--only", default="", help="run benchmarks whose name contains this text")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for mod_name in SUITES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue
            raise
        for bench in mod.SUITE:
            if args.only and args.only not in bench.__name__:
                continue
            print(f"running {bench.__name__} ...", file=sys.stderr, flush=True)
            rows.extend(bench(args.quick))
    print(machine())
    print(render(rows))
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
