"""SIGKILL at random moments of a run, ten times over one database: nothing reported is lost,
the file stays sound, every named image exists, and each next start reconciles."""

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from inspector.core.images import RUN_MARK
from tests.conftest import trust_models

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_ten_random_kills(tmp_path, synth_data, tiny_model):
    src = tmp_path / "line"
    src.mkdir()
    imgs = sorted((synth_data / "images").glob("*.jpg"))
    for i in range(5000):  # more than a run gets through before its kill (1,500 no longer were)
        shutil.copy(imgs[i % len(imgs)], src / f"{i:04d}.jpg")
    db = tmp_path / "k.db"
    trust_models(f"sqlite:///{db}", tiny_model)
    rng = random.Random(20261128)
    reported: set[str] = set()
    cmd = [sys.executable, "-m", "inspector.cli", "run", "--source", str(src), "--model", str(tiny_model.parent),
           "--db", f"sqlite:///{db}"]
    for attempt in range(10):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"))
        lines: list[str] = []
        reader = threading.Thread(target=lines.extend, args=(p.stdout,), daemon=True)
        reader.start()
        # the kill lands in a run under way, however loaded the machine: first the run reports a part (a bounded
        # poll), then it is killed at a random point of the following seconds
        end = time.monotonic() + 240
        while not any(ln.startswith("#") for ln in list(lines)):
            assert p.poll() is None, f"kill {attempt}: the run ended before it was killed"
            assert time.monotonic() < end, f"kill {attempt}: no part reported within 240 s"
            time.sleep(0.05)
        time.sleep(rng.uniform(1.0, 5.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
        reader.join(5)
        # only complete lines were reported; a line cut by the kill was never seen in full
        reported |= {f"{attempt}:{ln.split()[1]}" for ln in lines if ln.startswith("#") and ln.endswith("\n")}
        con = sqlite3.connect(db)
        try:
            assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
            last_run = con.execute("select max(id) from runs").fetchone()[0]
            stored = {f"{attempt}:{Path(name).name}" for (name,) in
                      con.execute("select frame_name from inspections where run_id = ?", (last_run,))}
            for (path,) in con.execute("select image_path from inspections where image_path is not null"):
                assert (tmp_path / path).is_file(), f"kill {attempt}: row names missing {path}"
        finally:
            con.close()
        missing = {r for r in reported if r.startswith(f"{attempt}:")} - stored
        assert not missing, f"kill {attempt}: reported but not stored: {sorted(missing)[:5]}"
    assert len(reported) > 50, "the kills came before anything was inspected: the test proves nothing"
    r = subprocess.run(cmd + ["--max-frames", "3"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    ends = [e for (e,) in con.execute("select end_reason from runs order by id")]
    named = {p for (p,) in con.execute("select image_path from inspections where image_path is not null")}
    con.close()
    # a kill during start-up (before the run row) leaves no run at all, which is also sound
    assert len(ends) >= 6, "most kills should land in the middle of a run"
    assert ends[:-1] == ["interrupted"] * (len(ends) - 1) and ends[-1] == "finished"
    on_disk = {f.relative_to(tmp_path).as_posix() for f in (tmp_path / "k-images").rglob("*")
               if f.is_file() and f.name != RUN_MARK}  # a run folder's mark is not an image
    assert on_disk == named
