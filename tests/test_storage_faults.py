"""A full disk, a read-only image folder, a locked database: a clear message, nothing corrupted."""

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from inspector.core.errors import StorageError
from inspector.core.images import RUN_MARK
from tests.conftest import trust_models

pytestmark = pytest.mark.model


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system (tmpfs), where this machine allows mounting one."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1024k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root on Linux): " + r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _folder(tmp_path, synth_data, n=60):
    src = tmp_path / "parts"
    src.mkdir()
    imgs = sorted((synth_data / "images").glob("*.jpg"))
    for i in range(n):
        shutil.copy(imgs[i % len(imgs)], src / f"{i:03d}.jpg")
    return src


def _station(tmp_path, src, model, data_dir):
    from inspector.core.config import Config
    from station import Station, StationSpec

    cfg = Config()
    cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"data_dir": data_dir}),
                                 "model": cfg.model.model_copy(update={"path": model, "backend": "ultralytics"})})
    return Station(StationSpec(str(src), trust_models(f"sqlite:///{tmp_path / 'f.db'}", model), cfg))


def _check_sound(db: Path, data_dir: Path):
    con = sqlite3.connect(db)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    paths = [p for (p,) in con.execute("select image_path from inspections where image_path is not null")]
    con.close()
    for p in paths:
        assert (data_dir / p).is_file()
    on_disk = {f.relative_to(data_dir).as_posix() for f in data_dir.rglob("*")
               if f.is_file() and f.name != RUN_MARK}  # a run folder's mark is not an image
    assert on_disk == set(paths), "an image without its row, or a half-written file, was left behind"
    return len(paths)


def test_full_disk_stops_the_run_with_a_clear_message(tmp_path, small_disk, synth_data, tiny_model):
    st = _station(tmp_path, _folder(tmp_path, synth_data), tiny_model, small_disk)
    st.start()
    assert st.runner.join(timeout=120)
    st.finish(f"error: {st.runner.error}")
    err = st.runner.error
    assert isinstance(err, StorageError)
    assert "full" in str(err) and "MB free" in str(err) and "free at least" in str(err)
    kept = _check_sound(tmp_path / "f.db", small_disk)
    assert 0 < kept < 60


def test_read_only_image_folder(tmp_path, small_disk, synth_data, tiny_model):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    st = _station(tmp_path, _folder(tmp_path, synth_data, 5), tiny_model, small_disk)
    st.start()
    assert st.runner.join(timeout=120)
    st.finish(f"error: {st.runner.error}")
    assert isinstance(st.runner.error, StorageError) and "read-only" in str(st.runner.error)
    assert _check_sound(tmp_path / "f.db", small_disk) == 0


def test_cli_full_disk_exit_2_no_traceback(tmp_path, small_disk, synth_data, tiny_model):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{small_disk.as_posix()}"\n[model]\nbackend = "ultralytics"\n')
    db = trust_models(f"sqlite:///{tmp_path / 'c.db'}", tiny_model)
    r = subprocess.run([sys.executable, "-m", "inspector.cli", "run", "--source", str(_folder(tmp_path, synth_data)),
                        "--model", str(tiny_model), "--db", db, "--config", str(cfg),
                        "--quiet"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "full" in r.stderr


def test_locked_database_retries_then_says_so(tmp_path):
    from db import open_database

    db = tmp_path / "l.db"
    open_database(f"sqlite:///{db}").dispose()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("begin exclusive")
    t0 = time.monotonic()
    released = threading.Event()
    try:
        from db import ModelRepo, RunRepo, session_factory

        with pytest.raises(StorageError, match="locked"):
            engine = open_database(f"sqlite:///{db}", lock_wait_s=1.0, busy_timeout_ms=200)
            sessions = session_factory(engine)
            with sessions.begin() as s:
                m = ModelRepo.get_or_create(s, "m", "m.pt", "b" * 64, [])
                RunRepo.start(s, "x", "{}", "d", m.id, "s", "part")
    finally:
        holder.execute("rollback")
        holder.close()
        released.set()
    assert time.monotonic() - t0 >= 0.2, "it should have retried before giving up"
