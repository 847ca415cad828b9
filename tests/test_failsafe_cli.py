"""`inspector run`, `report` and `audit verify` when storage misbehaves, as a user meets it: several real processes
on one SQLite file, a file locked by another program, bad database addresses, a full disk at start-up, a
PostgreSQL password that must never be printed."""

from __future__ import annotations

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

from tests.conftest import trust_models
from tests.db.conftest import private_pg  # noqa: F401 - the fixture
from tests.test_cli import inspector
from tests.test_storage_faults import small_disk  # noqa: F401 - the fixture: a real small file system

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def parts(tmp_path_factory, synth_data):
    folder = tmp_path_factory.mktemp("parts")
    for f in sorted((synth_data / "images").glob("*.jpg"))[:8]:
        shutil.copy(f, folder)
    return folder


BAD_URLS = ["postgresql://u:s3cretpw@127.0.0.1:notaport/db", "postgresql://u:s3cretpw@[::1/db",
            "postgresql://u:s3cretpw@127.0.0.1:1/db"]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("command", [["run", "--max-frames", "2"], ["report", "--out", "r.pdf"], ["audit", "verify"]])
def test_a_bad_database_address_is_one_sentence_exit_2_and_no_password(url, command, parts, tiny_model, tmp_path):
    extra = ["--source", str(parts), "--model", str(tiny_model)] if command[0] == "run" else []
    r = inspector(*command, *extra, "--db", url, cwd=tmp_path, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out and "s3cretpw" not in out
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "u:***@" in errors[0], out


def test_the_run_summary_never_prints_the_database_password(parts, tiny_model, tmp_path):
    """The real PostgreSQL test server: the summary line and --json name the database with its password masked."""
    from tests.db.conftest import backend_url

    gen = backend_url("postgresql", tmp_path)
    url = next(gen)
    try:
        password = __import__("sqlalchemy").engine.make_url(url).password
        assert password
        trust_models(url, tiny_model)
        r = inspector("run", "--source", str(parts), "--model", str(tiny_model), "--db", url, "--json", "--quiet")
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        assert f":{password}@" not in r.stdout + r.stderr
        assert ":***@" in summary["db"] and summary["outbox"] == 0
        assert "***@" in r.stdout.splitlines()[-2]
    finally:
        gen.close()


def test_several_runs_on_one_sqlite_file_all_end_cleanly(parts, tiny_model, tmp_path):
    """A long looping run and short runs started beside it, on one file: no 'database is locked', no traceback,
    and none marks the long run, still alive, interrupted; the long run ends 'stopped'."""
    db = tmp_path / "two.db"
    common = ["--model", str(tiny_model), "--db", f"sqlite:///{db}"]
    trust_models(f"sqlite:///{db}", tiny_model)
    long = subprocess.Popen([sys.executable, "-m", "inspector.cli", "run", "--source", str(parts), "--loop",
                             "--quiet", *common], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not db.exists() or _count(db, "inspections") < 5):
            assert long.poll() is None, long.communicate()[1]
            time.sleep(0.3)
        for _ in range(3):
            r = inspector("run", "--source", str(parts), "--max-frames", "5", "--quiet", *common)
            assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
            assert long.poll() is None, "the long run died while the short ones ran"
        runs = _rows(db, "select id, end_reason from runs order by id")
        assert runs[0][1] is None, "a short run closed the long, live run"
        assert [reason for _, reason in runs[1:]] == ["finished"] * 3
    finally:
        long.send_signal(signal.SIGTERM)
        out, err = long.communicate(timeout=60)
    assert long.returncode == 0 and "Traceback" not in err, err
    assert _rows(db, "select end_reason from runs order by id limit 1")[0][0] == "stopped"


def test_a_database_locked_for_25_s_mid_run_is_one_sentence_and_the_run_is_closed(parts, tiny_model, tmp_path):
    """Another program takes the file while a run writes and keeps it 25 s: the run stops with one sentence (after
    retrying for 20 s), no traceback, exit 2, and its end is still recorded once the file is free again."""
    db = tmp_path / "locked.db"
    trust_models(f"sqlite:///{db}", tiny_model)
    run = subprocess.Popen([sys.executable, "-m", "inspector.cli", "run", "--source", str(parts), "--loop", "--quiet",
                            "--model", str(tiny_model), "--db", f"sqlite:///{db}"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not db.exists() or _count(db, "inspections") < 5):
            assert run.poll() is None, run.communicate()[1]
            time.sleep(0.3)
        holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], "
                                   "isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); "
                                   "time.sleep(25)", str(db)], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        out, err = run.communicate(timeout=120)
        holder.wait(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "locked" in errors[0], err
    (reason,) = _rows(db, "select end_reason from runs")[0]
    assert reason is not None and reason.startswith("error: ") and "locked" in reason, "the run was left open"


@pytest.mark.parametrize("free_kb", [8, 40])
def test_a_full_disk_at_start_up_is_one_sentence(free_kb, parts, tiny_model, small_disk):  # noqa: F811
    """The disk holding the database has (almost) no room left when a run starts: one sentence, exit 2."""
    db = small_disk / "full.db"
    url = f"sqlite:///{db}"
    trust_models(url, tiny_model)
    assert inspector("run", "--source", str(parts), "--max-frames", "1", "--quiet", "--model", str(tiny_model),
                     "--db", url).returncode == 0
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill it up to the last few blocks
        while shutil.disk_usage(small_disk).free > free_kb * 1024:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    r = inspector("run", "--source", str(parts), "--max-frames", "2", "--quiet", "--model", str(tiny_model),
                  "--db", url)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "full" in errors[0], r.stderr


def _rows(db: Path, sql: str):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _count(db: Path, table: str) -> int:
    try:
        return _rows(db, f"select count(*) from {table}")[0][0]
    except sqlite3.OperationalError:
        return 0


def test_a_station_keeps_inspecting_while_postgresql_is_down(private_pg, parts, tiny_model, tmp_path):  # noqa: F811
    """The whole station on a real private PostgreSQL server that is stopped after the first parts and started
    again: the parts in between wait in the outbox (shown in the figures), go to the server in order once it is
    back, each exactly once, with its image on disk; the run ends 'finished'."""
    import threading

    from inspector.core.config import Config
    from station import Station, StationSpec

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        shutil.copy(sorted(parts.glob("*.jpg"))[i % 8], folder / f"{i:03d}.jpg")
    cfg = Config()
    cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"data_dir": tmp_path / "data"}),
                                 "model": cfg.model.model_copy(update={"path": tiny_model, "backend": "ultralytics"})})
    backlog: list[int] = []
    state = {"stopped": False}
    station: Station | None = None

    def committed(items) -> None:
        if not state["stopped"]:
            state["stopped"] = True
            private_pg.stop("immediate")
            threading.Timer(4.0, private_pg.start).start()
        time.sleep(0.15)  # the line's pace: the outage spans many parts
        if station is not None:
            backlog.append(station.backlog())

    trust_models(private_pg.url, tiny_model)
    station = Station(StationSpec(str(folder), private_pg.url, cfg), on_committed=committed)
    station.start()
    assert station.runner.join(timeout=180) and station.runner.error is None, station.runner.error
    assert max(backlog) > 0, "nothing went to the outbox while the server was down"
    time.sleep(4.5)  # the server is back
    station.finish("finished")
    assert station.backlog() == 0
    from sqlalchemy import create_engine, text

    eng = create_engine(private_pg.url.replace("postgresql://", "postgresql+psycopg2://"))
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT seq, image_path FROM inspections WHERE run_id = :r ORDER BY id"),
                            {"r": station.run_id}).all()
        end = conn.execute(text("SELECT end_reason FROM runs WHERE id = :r"), {"r": station.run_id}).scalar()
    eng.dispose()
    assert [r.seq for r in rows] == list(range(40)) and end == "finished"
    assert all((tmp_path / "data" / r.image_path).is_file() for r in rows if r.image_path)
