"""The headless CLI's research commands on real 1-minute bars (a dataset loaded by the CLI itself)."""

from __future__ import annotations

import pandas as pd

import cli

FILES = ("BTCUSDT_1m_20250504_20250603.csv", "ETHUSDT_1m_20250504_20250615.csv", "SOLUSDT_1m_20250504_20250603.csv")


def test_walkforward_scan_and_basket_commands(tmp_path, data_dir, capsys):
    db = str(tmp_path / "cli.sqlite")
    paths = []
    for name in FILES:  # the first 8,000 minutes of each file keep the test short
        path = tmp_path / name
        pd.read_csv(data_dir / "multi" / "usdm_1m" / name).head(8000).to_csv(path, index=False)
        paths.append(str(path))
    assert cli.main(["--db", db, "load", *paths, "--dataset", "m3"]) == 0
    out = tmp_path / "wf"
    assert cli.main(["--db", db, "walkforward", "--dataset", "m3", "--y", "ETHUSDT", "--x", "BTCUSDT", "--formation", "2000",
                     "--trading", "1000", "--windows", "60,240", "--entries", "2", "--exits", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    folds = pd.read_csv(next(out.glob("alphastream_walkforward_folds_*.csv")))
    assert len(folds) == 6 and set(folds["window"]) <= {60, 240}
    equity = pd.read_csv(next(out.glob("alphastream_walkforward_equity_*.csv")))
    assert len(equity) == 6000  # trading windows only
    assert "deflated_sharpe" in printed.out and "100%" in printed.err
    assert cli.main(["--db", db, "scan", "--dataset", "m3", "--formation-bars", "2000"]) == 0
    assert "3 pairs scanned" in capsys.readouterr().out
    assert cli.main(["--db", db, "basket", "--dataset", "m3", "--symbols", "ETHUSDT", "BTCUSDT", "SOLUSDT"]) == 0
    text = capsys.readouterr().out
    assert "rank (trace, 95 %)" in text and "out of sample from" in text
    assert cli.main(["--db", db, "walkforward", "--dataset", "m3", "--y", "ETHUSDT", "--x", "BTCUSDT", "--formation", "9000"]) == 2
    assert "cannot hold one formation" in capsys.readouterr().err
