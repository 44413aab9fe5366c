"""AlphaStream headless CLI: load files or Binance history, compute the dashboard's analytics, write CSVs.

Examples::

    python cli.py load ETHUSDT_1m.csv BTCUSDT_1m.csv --dataset spot-1m
    python cli.py download BTCUSDT ETHUSDT --start 2026-05-01 --end 2026-05-03 --dataset may
    python cli.py analyze --dataset spot-1m --y ETHUSDT --x BTCUSDT --timeframe 1m --window 120 --out out/
    python cli.py datasets

``analyze`` writes exactly what the dashboard exports for the same inputs
(analytics, minute stats, backtest trades and equity) using the same code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import analytics
from config import ConfigError, load_settings
from ingest.files import FileFormatError, load_bytes, merge_loaded
from ingest.history import HistoryError, download_trades
from storage.datasets import DatasetStore
from ui.pipeline import BAR_SECONDS, dataset_pair_table, export_name, to_csv


def cmd_load(args: argparse.Namespace, store: DatasetStore) -> int:
    loaded = []
    for path in args.files:
        item = load_bytes(Path(path).name, Path(path).read_bytes(), args.symbol)
        print(f"{path}: {item.report.summary()}")
        loaded.append(item)
    merged = merge_loaded(loaded)
    rows = store.save(args.dataset, merged.kind, merged.frames, source=", ".join(args.files), detail=merged.report.summary())
    print(f"saved {rows:,} rows as dataset '{args.dataset}' ({', '.join(sorted(merged.frames))})")
    return 0


def cmd_download(args: argparse.Namespace, store: DatasetStore) -> int:
    settings = load_settings()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    frames = download_trades(settings.history_url, args.symbols, start, end, settings.history_cache_dir,
                             progress=lambda f, name: print(f"[{f:.0%}] {name}", file=sys.stderr))
    rows = store.save(args.dataset, "ticks", frames, source=settings.history_url, detail=f"{args.start}..{args.end} aggTrades")
    print(f"saved {rows:,} rows as dataset '{args.dataset}'")
    return 0


def cmd_analyze(args: argparse.Namespace, store: DatasetStore) -> int:
    params = analytics.PairParams(window=args.window, method=args.method, log_prices=not args.raw_prices,
                                  kalman_delta=args.kalman_delta, kalman_obs_var=args.kalman_ve, huber_epsilon=args.huber_eps,
                                  entry=args.entry, exit=args.exit)
    table = dataset_pair_table(store, args.dataset, args.y.upper(), args.x.upper(), args.timeframe, params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pair, tf = f"{args.y.upper()}-{args.x.upper()}", args.timeframe
    files = {export_name("analytics", pair, tf, table.index): to_csv(table)}
    if tf in ("tick", "1s", "1m"):
        ms = analytics.minute_stats(table)
        files[export_name("minute_stats", pair, tf, ms.index)] = to_csv(ms, "minute")
    res = analytics.backtest(table["price_y"], table["price_x"], table["zscore"], table, entry=args.entry, exit=args.exit,
                             fee_bps=args.fee_bps, notional=args.notional, price_space="raw" if args.raw_prices else "log",
                             bar_seconds=BAR_SECONDS[tf])
    files[export_name("backtest_trades", pair, tf, table.index)] = to_csv(res.trades.set_index("entry_time"), "entry_time")
    files[export_name("backtest_equity", pair, tf, table.index)] = to_csv(res.equity)
    for name, text in files.items():
        (out / name).write_text(text)
        print(out / name)
    print({k: round(v, 6) for k, v in res.summary.items()})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python cli.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="SQLite file (default: ALPHASTREAM_DB_PATH)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("load", help="load files into a named dataset")
    p.add_argument("files", nargs="+")
    p.add_argument("--dataset", required=True)
    p.add_argument("--symbol", help="symbol when neither a column nor the file name says")
    p = sub.add_parser("download", help="download data.binance.vision daily aggTrades (sha256-verified)")
    p.add_argument("symbols", nargs="+")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--dataset", required=True)
    p = sub.add_parser("analyze", help="compute the pair analytics + backtest and write CSVs")
    p.add_argument("--dataset", required=True)
    p.add_argument("--y", required=True)
    p.add_argument("--x", required=True)
    p.add_argument("--timeframe", default="1m", choices=("1s", "1m", "5m"))
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--method", default="OLS", choices=analytics.HEDGE_METHODS)
    p.add_argument("--raw-prices", action="store_true", help="regress raw instead of log prices")
    p.add_argument("--kalman-delta", type=float, default=1e-4)
    p.add_argument("--kalman-ve", type=float, default=1e-6)
    p.add_argument("--huber-eps", type=float, default=1.345)
    p.add_argument("--entry", type=float, default=2.0)
    p.add_argument("--exit", type=float, default=0.0)
    p.add_argument("--fee-bps", type=float, default=4.0)
    p.add_argument("--notional", type=float, default=10_000.0)
    p.add_argument("--out", default="exports")
    sub.add_parser("datasets", help="list datasets")
    args = parser.parse_args(argv)
    try:
        db = Path(args.db) if args.db else load_settings().db_path
        store = DatasetStore(db)
        if args.command == "datasets":
            print(store.list().to_string(index=False))
            return 0
        return {"load": cmd_load, "download": cmd_download, "analyze": cmd_analyze}[args.command](args, store)
    except (ConfigError, FileFormatError, HistoryError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
