"""The upload worker: a fresh interpreter that parses and saves a file, reporting rows or a clear error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from server.uploads import start_upload
from storage.datasets import DatasetStore

ROOT = Path(__file__).resolve().parents[2]
RECORDING = "usdm_BTCUSDT_ETHUSDT_recording_20251216.csv"


def test_a_real_recording_is_saved_and_listed(data_dir, tmp_path):
    db = tmp_path / "u.sqlite"
    job = start_upload([(RECORDING, (data_dir / RECORDING).read_bytes())], "rec", db).wait(300)
    assert job.state == "done", job.message
    assert job.rows == 44_967 and job.symbols == ["BTCUSDT", "ETHUSDT"]
    assert 0 < job.peak_rss < job.memory_cap
    listing = DatasetStore(db).list()
    assert listing["name"].tolist() == ["rec"] and int(listing["rows"].iloc[0]) == 44_967


def test_a_broken_file_is_a_message_and_saves_nothing(tmp_path):
    db = tmp_path / "u.sqlite"
    job = start_upload([("bad.csv", b"time,price,qty\nnot a time,1,2\n")], "bad", db).wait(300)
    assert job.state == "error" and job.message.startswith("bad.csv") and "Traceback" not in job.message
    assert DatasetStore(db).list().empty


def test_a_nul_byte_in_a_name_is_a_message(tmp_path):
    job = start_upload([("a\x00b.csv", b"time,price,qty\n")], "x\x00y", tmp_path / "u.sqlite").wait(60)
    assert job.state == "error" and "NUL" in job.message
    assert not list(tmp_path.glob("alphastream-upload-*")), "the temporary copy is removed"


def test_the_worker_does_not_re_import_the_servers_main_module(tmp_path, data_dir):
    """multiprocessing's spawn re-imports ``__main__`` (``app.py``: Streamlit, Plotly, SciPy) into the worker."""
    marker = tmp_path / "main-imported-again"
    script = tmp_path / "server_main.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        if __name__ != "__main__":
            Path({str(marker)!r}).write_text(__name__)
        else:
            from server.uploads import start_upload
            job = start_upload([({RECORDING!r}, Path({str(data_dir / RECORDING)!r}).read_bytes())], "rec",
                               Path({str(tmp_path / "m.sqlite")!r})).wait(300)
            print(job.state, job.rows, job.message)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.startswith("done 44967"), out.stdout + out.stderr
    assert not marker.exists(), f"the worker imported the server's main module as {marker.read_text()!r}"


def test_two_files_are_one_dataset_and_a_third_adds_its_leg(data_dir, tmp_path):
    """The legs of a pair, one file each, uploaded together; a later file adds its leg to the dataset."""
    db = tmp_path / "u.sqlite"
    multi = data_dir / "multi" / "usdm_1m"
    eth, btc, sol = (next(multi.glob(f"{s}_1m_*.csv")) for s in ("ETHUSDT", "BTCUSDT", "SOLUSDT"))
    job = start_upload([(p.name, p.read_bytes()) for p in (eth, btc)], "perps", db).wait(300)
    assert job.state == "done", job.message
    assert job.symbols == ["BTCUSDT", "ETHUSDT"] and job.kind == "bars" and job.native_ms == 60_000
    assert job.rows == sum(len(p.read_text().splitlines()) - 1 for p in (eth, btc))
    job = start_upload([(sol.name, sol.read_bytes())], "perps", db, mode="add").wait(300)
    assert job.state == "done", job.message
    assert job.symbols == ["SOLUSDT"] and job.dataset_symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    info = DatasetStore(db).info("perps")
    assert info["symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    # ticks added to this bars dataset: a message, the dataset unchanged
    job = start_upload([(RECORDING, (data_dir / RECORDING).read_bytes())], "perps", db, mode="add").wait(300)
    assert job.state == "error" and "holds bars" in job.message
    assert DatasetStore(db).info("perps")["symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert not list(tmp_path.glob("alphastream-upload-*")), "temporary copies are removed"
