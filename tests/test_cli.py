"""`inspector run` end to end, as a user runs it: real processes, real SQLite files, real images."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspector.core.images import RUN_MARK
from tests.conftest import trust_models

pytestmark = pytest.mark.model


def inspector(*args, timeout=180, **kw):
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), **kw)


@pytest.fixture(scope="module")
def parts(tmp_path_factory, synth_data):
    folder = tmp_path_factory.mktemp("parts")
    for f in sorted((synth_data / "images").glob("*.jpg"))[:12]:
        shutil.copy(f, folder)
    (folder / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    return folder


def rows(db: Path, sql: str):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_run_records_every_image_and_prints_json(tmp_path, parts, tiny_model):
    db = tmp_path / "a.db"
    trust_models(f"sqlite:///{db}", tiny_model)
    r = inspector("run", "--source", str(parts), "--model", str(tiny_model), "--db", f"sqlite:///{db}", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 13 and summary["not_inspected"] == 1
    assert summary["pass"] + summary["fail"] + summary["review"] == 12
    assert sum(1 for line in r.stdout.splitlines() if line.startswith("#")) == 13
    assert rows(db, "select count(*) from inspections")[0][0] == 13
    (reason,) = rows(db, "select reasons from inspections where verdict='NOT_INSPECTED'")[0]
    assert "zz_corrupt.jpg" in reason
    paths = [p for (p,) in rows(db, "select image_path from inspections where image_path is not null")]
    assert len(paths) == 12 and all((tmp_path / p).is_file() for p in paths)
    assert rows(db, "pragma journal_mode")[0][0] == "wal"
    assert rows(db, "select end_reason from runs")[0][0] == "finished"


@pytest.mark.parametrize("args, fragment", [
    (["--source", "no/such/folder"], "source not found"),
    (["--model", "{junk}"], "not in the model registry"),
    (["--model", "{missing}"], "model file not found"),
    (["--config", "{badconfig}"], "recipe.fail_conf = 3"),
    (["--db", "sqlite:///{ro}/x/y.db"], "database"),
    (["--db", "mysql+nothing://x"], "database"),
    (["--max-frames", "0"], "--max-frames"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, parts, tiny_model, args, fragment):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4000))
    bad = tmp_path / "bad.toml"
    bad.write_text("[recipe]\nfail_conf = 3\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "x").write_text("a file where a folder should be")
    subst = {"{junk}": str(junk), "{missing}": str(tmp_path / "none.pt"), "{badconfig}": str(bad), "{ro}": str(ro)}
    args = [subst.get(a, a).replace("{ro}", str(ro)) for a in args]
    base = {"--source": str(parts), "--model": str(tiny_model),
            "--db": trust_models(f"sqlite:///{tmp_path / 'ok.db'}", tiny_model)}
    for i in range(0, len(args) - 1, 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    r = inspector("run", *flat)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    err_lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(err_lines) == 1 and fragment in err_lines[0], r.stderr


def test_sigkill_mid_run_leaves_a_sound_database(tmp_path, parts, tiny_model):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(30):
        for f in sorted(parts.glob("part_*.jpg")):
            shutil.copy(f, src / f"{i:03d}_{f.name}")
    db = tmp_path / "k.db"
    trust_models(f"sqlite:///{db}", tiny_model)
    cmd = [sys.executable, "-m", "inspector.cli", "run", "--source", str(src), "--model", str(tiny_model),
           "--db", f"sqlite:///{db}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    reported = []
    deadline = time.time() + 120
    while len(reported) < 40 and time.time() < deadline:
        line = p.stdout.readline()
        if line.startswith("#"):
            reported.append(line.split()[1])
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert len(reported) >= 40
    assert rows(db, "pragma integrity_check")[0][0] == "ok"
    names = {Path(n).name for (n,) in rows(db, "select frame_name from inspections")}
    assert set(reported) <= names, "a verdict that was reported is missing from the database"
    for (path,) in rows(db, "select image_path from inspections where image_path is not null"):
        assert (tmp_path / path).is_file(), path
    # the next start closes the interrupted run and removes images that no row names
    r = inspector("run", "--source", str(parts), "--model", str(tiny_model), "--db", f"sqlite:///{db}",
                  "--max-frames", "2")
    assert r.returncode == 0, r.stderr
    assert rows(db, "select end_reason from runs order by id")[0][0] == "interrupted"
    named = {p for (p,) in rows(db, "select image_path from inspections where image_path is not null")}
    on_disk = {f.relative_to(tmp_path).as_posix() for f in (tmp_path / "k-images").rglob("*")
               if f.is_file() and f.name != RUN_MARK}  # a run folder's mark is not an image
    assert on_disk == named


def test_camera_run_reports_reconnects_and_stalls_per_hour(tmp_path, tiny_model, monkeypatch, capsys):
    """A camera that drops once and hangs once: the run goes on, and the summary gives the watchdog's
    counts and rates and the gaps (a fake camera stands in for the absent hardware)."""
    import inspector.sources.opening as sources
    from inspector.cli import main
    from inspector.sources.live import LiveSource
    from tests.fakes import FakeCameraDevice

    # the camera hangs until the run has counted the stall (never a fixed hang the consumer may sleep through
    # while it is still judging the pictures queued before it, as on a loaded machine)
    device = FakeCameraDevice([["frame"] * 5 + ["drop"], ["frame"] * 3 + ["hang"] + ["frame"] * 200])
    monkeypatch.setattr(sources, "opencv_opener", lambda target, cfg: device)
    begin_gap = LiveSource._begin_gap

    def release_on_stall(self, why):
        begin_gap(self, why)
        if why.startswith("camera stall"):
            for cam in device.cameras:
                cam.unhang.set()
    monkeypatch.setattr(LiveSource, "_begin_gap", release_on_stall)
    cfg = tmp_path / "cam.toml"
    cfg.write_text("[camera]\nread_timeout_s = 0.5\nreconnect_initial_s = 0.05\n")
    rc = main(["run", "--source", "0", "--model", str(tiny_model), "--db",
               trust_models(f"sqlite:///{tmp_path / 'c.db'}", tiny_model),
               "--config", str(cfg), "--max-frames", "20", "--json", "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    summary = json.loads(out[-1])
    assert summary["frames"] == 20 and summary["camera_reconnects"] == 1 and summary["camera_stalls"] >= 1
    assert summary["camera_reconnects_per_hour"] > 0 and summary["camera_stalls_per_hour"] > 0
    # the drop and the stall are gaps of a free-running camera: events on record, never parts (nor PASS)
    assert summary["camera_gaps"] >= 2 and summary["camera_gap_s"] > 0 and summary["not_inspected"] == 0
    assert any(line.startswith("camera: 1 reconnect, ") and "/h" in line and "gaps" in line for line in out)
