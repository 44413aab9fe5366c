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
    job = start_upload((data_dir / RECORDING).read_bytes(), RECORDING, "rec", db).wait(300)
    assert job.state == "done", job.message
    assert job.rows == 44_967 and job.symbols == ["BTCUSDT", "ETHUSDT"]
    assert 0 < job.peak_rss < job.memory_cap
    listing = DatasetStore(db).list()
    assert listing["name"].tolist() == ["rec"] and int(listing["rows"].iloc[0]) == 44_967


def test_a_broken_file_is_a_message_and_saves_nothing(tmp_path):
    db = tmp_path / "u.sqlite"
    job = start_upload(b"time,price,qty\nnot a time,1,2\n", "bad.csv", "bad", db).wait(300)
    assert job.state == "error" and job.message.startswith("bad.csv") and "Traceback" not in job.message
    assert DatasetStore(db).list().empty


def test_a_nul_byte_in_a_name_is_a_message(tmp_path):
    job = start_upload(b"time,price,qty\n", "a\x00b.csv", "x\x00y", tmp_path / "u.sqlite").wait(60)
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
            job = start_upload(Path({str(data_dir / RECORDING)!r}).read_bytes(), {RECORDING!r}, "rec",
                               Path({str(tmp_path / "m.sqlite")!r})).wait(300)
            print(job.state, job.rows, job.message)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.startswith("done 44967"), out.stdout + out.stderr
    assert not marker.exists(), f"the worker imported the server's main module as {marker.read_text()!r}"
