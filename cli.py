"""AlphaStream headless CLI: load files or Binance history, compute the dashboard's analytics and research, write CSVs.

Examples::

    python cli.py load ETHUSDT_1m.csv BTCUSDT_1m.csv --dataset spot-1m
    python cli.py download BTCUSDT ETHUSDT --start 2026-05-01 --end 2026-05-03 --dataset may
    python cli.py analyze --dataset spot-1m --y ETHUSDT --x BTCUSDT --timeframe 1m --window 120 --out out/
    python cli.py walkforward --dataset spot-1m --y ETHUSDT --x BTCUSDT --formation 5760 --trading 1440 --out out/
    python cli.py scan --dataset spot-1m --formation-bars 2000
    python cli.py basket --dataset spot-1m --symbols ETHUSDT BTCUSDT SOLUSDT
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
from pairs import DatasetBars, Timeframe, export_name, pair_frame, pair_table_of, to_csv
from storage.datasets import DatasetStore


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
    if (args.kalman_delta is None) != (args.kalman_ve is None):
        raise ValueError("give both --kalman-delta and --kalman-ve, or neither (maximum likelihood)")
    params = analytics.PairParams(window=args.window, z_window=args.z_window, method=args.method, log_prices=not args.raw_prices,
                                  kalman_delta=args.kalman_delta, kalman_obs_var=args.kalman_ve, huber_epsilon=args.huber_eps,
                                  entry=args.entry, exit=args.exit, stop=args.stop, formation_bars=args.formation_bars,
                                  exit_on=args.exit_on)
    tf = Timeframe.parse(args.timeframe)
    table = pair_table_of(DatasetBars(store, args.dataset), args.y.upper(), args.x.upper(), tf, params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pair = f"{args.y.upper()}-{args.x.upper()}"
    files = {export_name("analytics", pair, tf, table.index): to_csv(table)}
    if tf is not Timeframe.M5:
        ms = analytics.minute_stats(table)
        files[export_name("minute_stats", pair, tf, ms.index)] = to_csv(ms, "minute")
    diag = analytics.pair_diagnostics(table["price_y"], table["price_x"], params)
    print(f"{pair} {tf}: {diag.verdict} — {diag.describe()}")
    res = analytics.backtest(table, fee_bps=args.fee_bps, notional=args.notional, bar_seconds=tf.bar_seconds)
    files[export_name("backtest_trades", pair, tf, table.index)] = to_csv(res.trades.set_index("entry_time"), "entry_time")
    files[export_name("backtest_equity", pair, tf, table.index)] = to_csv(res.equity)
    for name, text in files.items():
        (out / name).write_text(text)
        print(out / name)
    print({k: round(v, 6) if isinstance(v, float) else v for k, v in res.summary.items()})
    return 0


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _closes(store: DatasetStore, dataset: str, symbols: list[str], timeframe: str):
    import pandas as pd

    closes = {s.upper(): store.bars(dataset, s.upper(), timeframe)["close"] for s in symbols}
    return pd.DataFrame(closes).sort_index()


def _dataset_symbols(store: DatasetStore, dataset: str) -> list[str]:
    info = store.info(dataset)
    if info is None:
        raise ValueError(f"no dataset named {dataset!r}")
    return list(info["symbols"])


def cmd_walkforward(args: argparse.Namespace, store: DatasetStore) -> int:
    params = analytics.PairParams(method=args.method, log_prices=not args.raw_prices, formation_bars=args.formation_bars)
    frame = pair_frame(DatasetBars(store, args.dataset), args.y.upper(), args.x.upper(), Timeframe.parse(args.timeframe),
                       params).frame[["close_y", "close_x"]].dropna()
    kalman = [(d, v) for d in _floats(args.kalman_deltas) for v in _floats(args.kalman_ves)] if args.method == "Kalman" and args.kalman_deltas else []
    grid = analytics.parameter_grid(params, windows=[int(w) for w in _floats(args.windows)], entries=_floats(args.entries),
                                    exits=_floats(args.exits), kalman=kalman)
    step = {"last": -1}

    def progress(done: int, total: int) -> None:
        pct = done * 100 // total
        if pct // 10 != step["last"]:
            step["last"] = pct // 10
            print(f"[{pct:3d}%] {done:,} of {total:,} backtests", file=sys.stderr)

    res = analytics.walk_forward(frame["close_y"], frame["close_x"], grid, args.formation, args.trading,
                                 costs=analytics.CostModel(fee_bps=args.fee_bps), notional=args.notional, progress=progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pair = f"{args.y.upper()}-{args.x.upper()}"
    for kind, frame_out, label in (("walkforward_folds", res.folds, "row"), ("walkforward_equity", res.equity, "timestamp"),
                                   ("walkforward_configs", res.configs, "row"), ("walkforward_trades", res.trades, "row")):
        path = out / export_name(kind, pair, args.timeframe, res.equity.index)
        path.write_text(to_csv(frame_out, label))
        print(path)
    cols = ["fold", "trading_start", "window", "entry", "exit", "formation_sharpe", "oos_pnl", "oos_trades"]
    if args.method == "Kalman":
        cols[2:3] = ["kalman_delta", "kalman_obs_var"]
    print(res.folds[cols].to_string(index=False))
    print({k: round(v, 6) if isinstance(v, float) else v for k, v in res.summary.items()})
    return 0


def cmd_scan(args: argparse.Namespace, store: DatasetStore) -> int:
    symbols = args.symbols or _dataset_symbols(store, args.dataset)
    closes = _closes(store, args.dataset, symbols, args.timeframe)
    scan = analytics.scan_universe(closes, args.formation_bars, q_level=args.q)
    print(scan.head(args.top).to_string(index=False))
    print(f"{len(scan):,} pairs scanned, {int(scan['flagged'].sum())} flagged (q < {args.q} and stable in both halves)")
    if args.out:
        Path(args.out).write_text(to_csv(scan, "row"))
        print(args.out)
    return 0


def cmd_basket(args: argparse.Namespace, store: DatasetStore) -> int:
    import numpy as np

    closes = _closes(store, args.dataset, args.symbols, args.timeframe).dropna()
    logp = np.log(closes)
    cut = args.formation_bars if args.formation_bars else int(len(logp) * 2 / 3)
    if not 100 <= cut < len(logp) - 10:
        raise ValueError(f"{len(logp):,} common bars: the formation window ({cut:,}) must leave bars to trade")
    fit = analytics.johansen(logp.iloc[:cut])
    for r in range(len(fit.trace)):
        print(f"rank <= {r}: trace {fit.trace[r]:.2f} (95 % {fit.trace_crit[r, 1]:.2f})  max-eig {fit.max_eig[r]:.2f} (95 % {fit.max_eig_crit[r, 1]:.2f})")
    print(f"rank (trace, 95 %): {fit.rank()}; weights: " + ", ".join(f"{k} {v:+.4f}" for k, v in fit.weights.items()))
    table = analytics.basket_table(logp, fit.weights, args.z_window)
    res = analytics.backtest_basket(table, entry=args.entry, exit=args.exit, costs=analytics.CostModel(fee_bps=args.fee_bps),
                                    start=logp.index[cut])
    print(f"out of sample from {logp.index[cut]}: " + str({k: round(v, 4) if isinstance(v, float) else v for k, v in res.summary.items()}))
    return 0


def _pair_arguments(p: argparse.ArgumentParser) -> None:
    """The dataset pair every pair command takes."""
    p.add_argument("--dataset", required=True)
    p.add_argument("--y", required=True)
    p.add_argument("--x", required=True)
    p.add_argument("--timeframe", default="1m", choices=("1s", "1m", "5m"))


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
    _pair_arguments(p)
    p.add_argument("--window", type=int, default=100, help="hedge window (bars)")
    p.add_argument("--z-window", type=int, default=None, help="z-score window (bars; default: --window)")
    p.add_argument("--formation-bars", type=int, default=2000, help="formation window of the cointegration test and Kalman fits")
    p.add_argument("--method", default="OLS", choices=analytics.HEDGE_METHODS)
    p.add_argument("--raw-prices", action="store_true", help="regress raw instead of log prices")
    p.add_argument("--kalman-delta", type=float, default=None, help="fixed Kalman δ (default: maximum likelihood)")
    p.add_argument("--kalman-ve", type=float, default=None, help="fixed Kalman Ve (default: maximum likelihood)")
    p.add_argument("--huber-eps", type=float, default=1.345)
    p.add_argument("--entry", type=float, default=2.0)
    p.add_argument("--exit", type=float, default=0.0)
    p.add_argument("--stop", type=float, default=None, help="stop at |z| >= this (default: none)")
    p.add_argument("--exit-on", default="held", choices=analytics.EXIT_RULES, help="judge exits on the held spread or the current z")
    p.add_argument("--fee-bps", type=float, default=4.0)
    p.add_argument("--notional", type=float, default=10_000.0)
    p.add_argument("--out", default="exports")
    p = sub.add_parser("walkforward", help="walk-forward parameter selection of a dataset pair (out-of-sample PnL, deflated Sharpe)")
    _pair_arguments(p)
    p.add_argument("--formation", type=int, default=5760, help="bars of each formation window (choice)")
    p.add_argument("--trading", type=int, default=1440, help="bars of each trading window (out of sample)")
    p.add_argument("--windows", default="60,120,240", help="hedge windows to try (comma separated)")
    p.add_argument("--entries", default="1.5,2,2.5")
    p.add_argument("--exits", default="0,0.5")
    p.add_argument("--method", default="OLS", choices=analytics.HEDGE_METHODS)
    p.add_argument("--kalman-deltas", default="", help="Kalman δ values to try (default: maximum likelihood)")
    p.add_argument("--kalman-ves", default="1e-5", help="Kalman Ve values to try with each δ")
    p.add_argument("--raw-prices", action="store_true")
    p.add_argument("--formation-bars", type=int, default=2000, help="Kalman fit window")
    p.add_argument("--fee-bps", type=float, default=4.0)
    p.add_argument("--notional", type=float, default=10_000.0)
    p.add_argument("--out", default="exports")
    p = sub.add_parser("scan", help="universe scan of a dataset's symbols (q-values, stability filter)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--symbols", nargs="*", help="default: every symbol of the dataset")
    p.add_argument("--timeframe", default="1m", choices=("1s", "1m", "5m"))
    p.add_argument("--formation-bars", type=int, default=2000)
    p.add_argument("--q", type=float, default=0.05)
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--out", help="CSV file for every pair")
    p = sub.add_parser("basket", help="Johansen basket of 3+ symbols, traded after its formation window")
    p.add_argument("--dataset", required=True)
    p.add_argument("--symbols", nargs="+", required=True)
    p.add_argument("--timeframe", default="1m", choices=("1s", "1m", "5m"))
    p.add_argument("--formation-bars", type=int, default=0, help="default: the first two thirds of the common bars")
    p.add_argument("--z-window", type=int, default=240)
    p.add_argument("--entry", type=float, default=2.0)
    p.add_argument("--exit", type=float, default=0.0)
    p.add_argument("--fee-bps", type=float, default=4.0)
    sub.add_parser("datasets", help="list datasets")
    args = parser.parse_args(argv)
    try:
        db = Path(args.db) if args.db else load_settings().db_path
        store = DatasetStore(db)
        if args.command == "datasets":
            print(store.list().to_string(index=False))
            return 0
        commands = {"load": cmd_load, "download": cmd_download, "analyze": cmd_analyze, "walkforward": cmd_walkforward,
                    "scan": cmd_scan, "basket": cmd_basket}
        return commands[args.command](args, store)
    except (ConfigError, FileFormatError, HistoryError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
