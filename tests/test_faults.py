"""Faults found from outside that lost parts (issue 25): file names of any bytes, a copied database, the small
items (signals at start-up, a camera index, a camera password, a run that does not exist, a missing folder, a
stale ``.part`` file, a cut stream, a read-only copy), and a record that blocks instead of failing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inspector.core.names import name_bytes, readable, shown
from inspector.sources.opening import FolderSource
from tests.db.conftest import private_pg  # noqa: F401 - the fixture
from tests.timing import loose

POSIX = os.name == "posix"


def _cli(*args: str, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), **kw)


# --- 1. file names of any bytes ------------------------------------------------------------------------------

@pytest.mark.skipif(not POSIX, reason="a file name of arbitrary bytes exists on POSIX file systems only")
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_a_name_of_any_bytes_is_utf8_text_that_gives_its_bytes_back(raw):
    text = shown(os.fsdecode(raw))
    text.encode("utf-8")  # no surrogate left: a seal, SQLite and PostgreSQL take it
    assert name_bytes(text) == raw
    assert readable(text) == text  # the database's last guard leaves a shown name as it is


@pytest.mark.parametrize(("raw", "text"), [(b"part_01.jpg", "part_01.jpg"), (b"caf\xc3\xa9.jpg", "café.jpg"),
                                           (b"part\xff\xfe.jpg", "part\\xff\\xfe.jpg"),
                                           (b"a\nb.jpg", "a\\x0ab.jpg"), (b"back\\slash.jpg", "back\\\\slash.jpg")])
def test_readable_forms(raw, text):
    if not POSIX and raw != raw.decode("utf-8", "ignore").encode():
        pytest.skip("bytes that are not UTF-8 make no file name here")
    assert shown(os.fsdecode(raw)) == text


@pytest.mark.skipif(not POSIX, reason="a file name of arbitrary bytes exists on POSIX file systems only")
def test_a_folder_source_reads_a_non_utf8_name_as_a_part_with_its_bytes_kept(tmp_path, part_image):
    ok, data = cv2.imencode(".jpg", part_image)
    raw = os.fsencode(tmp_path) + b"/part\xff\xfe.jpg"
    with open(raw, "wb") as f:
        f.write(data.tobytes())
    frame = FolderSource(tmp_path).read()
    assert frame is not None and frame.ok and frame.error is None
    frame.name.encode("utf-8")
    assert "part\\xff\\xfe.jpg" in frame.name
    assert name_bytes(frame.name) == os.fsencode(Path(os.fsdecode(raw)).resolve())


@pytest.mark.skipif(not POSIX, reason="a file name of arbitrary bytes exists on POSIX file systems only")
def test_a_non_utf8_file_name_does_not_end_the_folder_run(tmp_path, part_image):
    """Before: the seal encoded the name, a traceback, exit 1, the rest of the folder not read."""
    folder = tmp_path / "parts"
    folder.mkdir()
    ok, data = cv2.imencode(".jpg", part_image)
    names = [b"a_first.jpg", b"m_\xff\xfe.jpg", b"m_\xc3(.png", b"z_last.jpg"]
    for n in names:
        with open(os.fsencode(folder) + b"/" + n, "wb") as f:
            f.write(data.tobytes() if n.endswith(b".jpg") else b"not a png")
    db = tmp_path / "n.db"
    r = _cli("run", "--source", str(folder), "--db", f"sqlite:///{db}", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stdout + r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 4, summary
    con = sqlite3.connect(db)
    stored = [row[0] for row in con.execute("SELECT frame_name FROM inspections ORDER BY seq")]
    con.close()
    assert sorted(name_bytes(s).rsplit(b"/", 1)[1] for s in stored) == sorted(names)
    assert "m_\\xff\\xfe.jpg" in r.stdout  # the readable form on screen
    v = _cli("audit", "verify", "--db", f"sqlite:///{db}")
    assert v.returncode == 0, v.stdout + v.stderr  # the seals cover the names as recorded


# --- 2. a copied database has its own identity -----------------------------------------------------------------

def _namespace(url: str) -> str:
    from db import open_database, session_factory
    from station import image_namespace

    engine = open_database(url)
    try:
        return image_namespace(session_factory(engine), "images", "line-1")
    finally:
        engine.dispose()


def test_a_copied_sqlite_file_gets_its_own_identity_and_a_moved_one_keeps_its_own(tmp_path):
    import shutil

    a = tmp_path / "a.db"
    ns_a = _namespace(f"sqlite:///{a}")
    assert _namespace(f"sqlite:///{a}") == ns_a, "reopened: the same identity"
    b = tmp_path / "copy" / "a.db"
    b.parent.mkdir()
    shutil.copy(a, b)
    ns_b = _namespace(f"sqlite:///{b}")
    assert ns_b != ns_a, "a copy writes its own image folder"
    assert _namespace(f"sqlite:///{b}") == ns_b and _namespace(f"sqlite:///{a}") == ns_a
    con = sqlite3.connect(b)
    assert con.execute("SELECT value FROM database_info WHERE key = 'copied_from'").fetchone()[0] in ns_a
    con.close()
    moved = tmp_path / "moved.db"
    a.rename(moved)
    assert _namespace(f"sqlite:///{moved}") == ns_a, "a file moved (same inode) is the same database"
    shutil.copy(moved, a)  # a backup copied back in place of the original: another file
    assert _namespace(f"sqlite:///{a}") not in (ns_a, ns_b)


def test_a_createdb_copy_of_a_postgresql_database_gets_its_own_identity(private_pg):  # noqa: F811
    from sqlalchemy import create_engine, text

    admin = create_engine(private_pg.url.replace("postgresql://", "postgresql+psycopg2://"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text("CREATE DATABASE orig"))
    url = private_pg.url.rsplit("/", 1)[0]
    ns = _namespace(f"{url}/orig")
    with admin.connect() as c:
        c.execute(text("CREATE DATABASE twin TEMPLATE orig"))  # what createdb -T does
    admin.dispose()
    assert _namespace(f"{url}/twin") != ns
    assert _namespace(f"{url}/orig") == ns


def test_crash_clean_up_deletes_only_files_its_own_run_proves_it_wrote(tmp_path):
    """The copy's clean-up removed 17 of the original's pictures: two databases with one identity (as before
    this fix, or any other way) and one run number; the clean-up of one leaves the other's files."""
    import datetime as dt

    import numpy as np

    from db import DbWriter, ModelRepo, RunRepo, open_database, session_factory
    from db.schema import Run
    from inspector.core.images import ImageStore
    from inspector.core.types import Inspection, Verdict
    from station import image_namespace, reconcile
    from station.records import run_proof

    def insp(q: int, day: int) -> Inspection:
        return Inspection(seq=q, source="s", verdict=Verdict.NOT_INSPECTED, reasons=("r",), detections=None,
                          started_at=dt.datetime(2026, 11, day, 8, tzinfo=dt.timezone.utc), latency_ms=1.0,
                          frame_name=f"p{q}", image=np.full((8, 8, 3), q, np.uint8))

    engine = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    sessions = session_factory(engine)
    base = tmp_path / "data"
    ns = image_namespace(sessions, "images", "line-1")
    with sessions.begin() as s:
        m = ModelRepo.get_or_create(s, "m", "m.pt", "a" * 64, ["scratch"])
        run = RunRepo.start(s, "s", "{}", "default", m.id, "line-1", "part")
    # another database's run 1 wrote into this same namespace the day before (its rows are elsewhere)
    other = ImageStore(base, ns, run_tag="run-1", proof=run_proof(ns, 1, run.started_at - dt.timedelta(days=1)))
    theirs = [base / str(other.save(insp(q, 29))) for q in range(3)]
    unmarked = base / ns / "2026-11-28" / "run-1" / "0000001_fail.jpg"  # a folder with no mark at all
    unmarked.parent.mkdir(parents=True)
    unmarked.write_bytes(b"a part")
    ours = ImageStore(base, ns, run_tag="run-1", proof=run_proof(ns, run.id, run.started_at))
    DbWriter(sessions, run.id, ours).write_batch([insp(q, 30) for q in range(2)])
    stray = base / str(ours.save(insp(7, 30)))  # written, its row never committed (a crash)
    with sessions.begin() as s:
        s.get(Run, run.id).pid = 2 ** 22 + 7  # the run's process is gone
    reconcile(sessions, base, ns, "line-1")
    engine.dispose()
    assert not stray.exists(), "its own orphan is removed"
    assert all(p.is_file() for p in theirs), "the other database's files, named by no row here, are kept"
    assert unmarked.is_file(), "a folder nothing proves this database wrote is kept"


# --- 3. the smaller items --------------------------------------------------------------------------------------

def _start_run(tmp_path: Path, *extra: str, **popen) -> tuple[subprocess.Popen, Path]:
    db = tmp_path / "s.db"
    env = dict(os.environ, INSPECTOR_HOME=str(tmp_path / "home"))
    p = subprocess.Popen([sys.executable, "-m", "inspector.cli", "run", "--db", f"sqlite:///{db}", "--quiet", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen)
    return p, db


def _as_a_background_job() -> None:
    """What a shell does to a job started with ``&``: SIGINT ignored, inherited by the program."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _runs(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT id, end_reason FROM runs").fetchall()
    except sqlite3.OperationalError:  # no table yet
        return []
    finally:
        con.close()


def _wait_for(cond, timeout: float = 120) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(not POSIX, reason="POSIX signals")
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_the_moment_the_run_row_exists_closes_the_run(tmp_path, signame):
    """Before: SIGTERM while starting exited 143 with the run left open, Ctrl+C raised in the middle of the
    start-up (or was lost); now the stop is kept, the station is closed as soon as it stands, the run 'stopped'."""
    import signal

    p, db = _start_run(tmp_path, "--loop")
    try:
        assert _wait_for(lambda: bool(_runs(db))), "the run never started"
        p.send_signal(getattr(signal, signame))
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert [r[1] for r in _runs(db)] == ["stopped"]


@pytest.mark.skipif(not POSIX, reason="POSIX signals")
@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_while_the_command_starts_is_one_line_and_leaves_no_open_run(tmp_path, signame, code):
    import signal

    p, db = _start_run(tmp_path, "--loop")
    try:
        assert _wait_for(lambda: (tmp_path / "home" / "logs" / "inspector.log").exists())
        p.send_signal(getattr(signal, signame))
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert "Traceback" not in err, err[-2000:]
    runs = _runs(db)
    if runs:  # the signal came after the run row: closed, exit 0
        assert p.returncode == 0 and [r[1] for r in runs] == ["stopped"], (p.returncode, runs, err[-2000:])
    else:
        assert p.returncode == code, err[-2000:]


@pytest.mark.skipif(not POSIX, reason="POSIX signals")
def test_ctrl_c_is_not_lost_by_a_process_that_inherited_it_ignored(tmp_path):
    """Before: SIGINT sent to a background job while it started was ignored until the run's own handler came,
    and the run went on (one for 10 minutes)."""
    import signal

    p, db = _start_run(tmp_path, "--loop", preexec_fn=_as_a_background_job)
    try:
        assert _wait_for(lambda: (tmp_path / "home" / "logs" / "inspector.log").exists())
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    runs = _runs(db)
    assert "Traceback" not in err, err[-2000:]
    assert p.returncode == (0 if runs else 130), (p.returncode, runs, err[-2000:])
    assert all(r[1] == "stopped" for r in runs), runs


def test_a_camera_index_too_large_is_one_sentence(tmp_path):
    """Before: OpenCV's int overflowed on the opener thread, a thread traceback."""
    r = _cli("run", "--source", "9" * 30, "--db", f"sqlite:///{tmp_path / 'c.db'}", timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert [line for line in r.stderr.splitlines() if line.startswith("error: ")] == [
        next(line for line in r.stderr.splitlines() if "too large" in line)]


def test_a_camera_password_is_never_printed_nor_logged(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "home"
    r = subprocess.run([sys.executable, "-m", "inspector.cli", "run", "--source",
                        f"rtsp://admin:hunter2pw@127.0.0.1:{port}/live", "--db", f"sqlite:///{tmp_path / 'c.db'}"],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, INSPECTOR_HOME=str(home)))
    assert r.returncode == 2, r.stderr[-2000:]
    assert "rtsp://admin:***@127.0.0.1" in r.stderr
    inspector_lines = [x for x in r.stderr.splitlines() if x.startswith(("error:", "WARNING:", "ERROR:"))]
    assert not [x for x in inspector_lines if "hunter2pw" in x], inspector_lines
    assert "hunter2pw" not in (home / "logs" / "inspector.log").read_text()


def test_without_password():
    from inspector.core.names import without_password

    assert without_password("rtsp://u:p@h:554/x?a=1") == "rtsp://u:***@h:554/x?a=1"
    assert without_password("http://h/x") == "http://h/x"
    assert without_password("rtsp://u:p@w@[::1/x") == "rtsp://***@[::1/x"


def test_a_report_of_a_run_that_does_not_exist_is_refused(tmp_path):
    """Before: an empty report, exit 0."""
    db = tmp_path / "r.db"
    r = _cli("run", "--source", str(_folder_of_parts(tmp_path, 2)), "--db", f"sqlite:///{db}", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "r.csv"
    r = _cli("report", "--run", "99999", "--out", str(out), "--db", f"sqlite:///{db}")
    assert r.returncode == 2 and "--run 99999: no such run" in r.stderr and "runs are 1 to 1" in r.stderr, r.stderr
    assert not out.exists()
    assert _cli("report", "--run", "1", "--out", str(out), "--db", f"sqlite:///{db}").returncode == 0


def _folder_of_parts(tmp_path: Path, n: int) -> Path:
    import numpy as np

    from inspector.sources.synth import render_part

    folder = tmp_path / "parts"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        cv2.imwrite(str(folder / f"p{i}.jpg"), render_part(rng, defective=i % 2 == 1).image)
    return folder


def test_a_database_in_a_folder_that_does_not_exist_is_refused(tmp_path):
    """Before: the folders were made silently (an unmounted share's mount point filled on the local disk)."""
    db = tmp_path / "share" / "line-1" / "x.db"
    r = _cli("run", "--source", str(_folder_of_parts(tmp_path, 1)), "--db", f"sqlite:///{db}", timeout=120)
    assert r.returncode == 2 and "folder that does not exist" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "share").exists()


@pytest.mark.skipif(not __import__("shutil").which("ffmpeg"), reason="ffmpeg is not installed (CI installs it)")
def test_a_transport_stream_cut_mid_packet_ends_as_cut_not_finished(tmp_path):
    """Before: 'finished', exit 0, after 29 of 60 frames."""
    import numpy as np

    from inspector.sources.synth import render_part

    png = tmp_path / "p.png"
    cv2.imwrite(str(png), render_part(np.random.default_rng(2), defective=False).image)
    whole = tmp_path / "whole.ts"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", str(png), "-t", "2.4", "-r", "25",
                    "-c:v", "mpeg2video", "-q:v", "4", "-g", "12", str(whole)], check=True, timeout=120)
    data = whole.read_bytes()
    assert len(data) % 188 == 0
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[:(len(data) // 188 // 2) * 188 + 100])  # half, then 100 bytes into a packet
    db = f"sqlite:///{tmp_path / 'v.db'}"
    r = _cli("run", "--source", str(cut), "--db", db, "--json", "--quiet")
    assert r.returncode == 3, (r.returncode, r.stderr[-2000:])
    assert "cut short" in r.stderr and "Traceback" not in r.stderr
    con = sqlite3.connect(tmp_path / "v.db")
    (reason,) = con.execute("SELECT end_reason FROM runs").fetchone()
    con.close()
    assert reason.startswith("error: ") and "cut short" in reason
    r = _cli("run", "--source", str(whole), "--db", db, "--json", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.fixture
def ro_disk(tmp_path):
    """A real file system that can be made read-only (tmpfs, remounted ro): root cannot write it either."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root on Linux): " + r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_read_only_copy_of_a_database_can_be_reported_on_and_verified(ro_disk, tmp_path):
    """Before: opening it tried to take the write lock and set WAL mode, and failed."""
    db = ro_disk / "copy.db"
    r = _cli("run", "--source", str(_folder_of_parts(tmp_path, 3)), "--db", f"sqlite:///{db}", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    subprocess.run(["mount", "-o", "remount,ro", str(ro_disk)], check=True)
    out = tmp_path / "r.csv"
    r = _cli("report", "--out", str(out), "--db", f"sqlite:///{db}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(out.read_text().splitlines()) == 4  # a header and the three parts
    v = _cli("audit", "verify", "--db", f"sqlite:///{db}")
    assert v.returncode == 0 and "audit log OK" in v.stdout, v.stdout + v.stderr


def test_a_stale_part_file_is_reported_while_its_folder_is_read_only_and_removed_once_it_is_not(ro_disk, tmp_path,
                                                                                                 caplog):
    """Before: left forever (the run that left it was closed, and nothing looked again)."""
    import datetime as dt

    import numpy as np

    from db import ModelRepo, RunRepo, open_database, session_factory
    from inspector.core.images import ImageStore
    from inspector.core.types import Inspection, Verdict
    from station import image_namespace, reconcile
    from station.records import run_proof

    engine = open_database(f"sqlite:///{tmp_path / 'p.db'}")
    sessions = session_factory(engine)
    ns = image_namespace(sessions, "images", "line-1")
    with sessions.begin() as s:
        m = ModelRepo.get_or_create(s, "m", "m.pt", "a" * 64, ["scratch"])
        run = RunRepo.start(s, "s", "{}", "default", m.id, "line-1", "part")
        RunRepo.end(s, run.id, "finished")
    store = ImageStore(ro_disk, ns, run_tag=f"run-{run.id}", proof=run_proof(ns, run.id, run.started_at))
    kept = ro_disk / str(store.save(Inspection(
        seq=0, source="s", verdict=Verdict.NOT_INSPECTED, reasons=("r",), detections=None,
        started_at=dt.datetime.now(dt.timezone.utc), latency_ms=1.0, image=np.zeros((8, 8, 3), np.uint8))))
    stale = kept.with_name("0000001_pass.jpg.part")
    stale.write_bytes(b"half")
    subprocess.run(["mount", "-o", "remount,ro", str(ro_disk)], check=True)
    with caplog.at_level("WARNING"):
        reconcile(sessions, ro_disk, ns, "line-1")
    assert stale.exists() and "cannot be removed" in caplog.text and "0000001_pass.jpg.part" in caplog.text
    subprocess.run(["mount", "-o", "remount,rw", str(ro_disk)], check=True)
    reconcile(sessions, ro_disk, ns, "line-1")
    engine.dispose()
    assert not stale.exists() and kept.is_file()


# --- 4. the record never blocks the line unseen ----------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _LiveStream:
    """A real ffmpeg serving ``seconds`` of parts at ``fps`` over HTTP in real time (``-re``) to one client: a
    live camera that sends each picture once, whether the line takes it or not."""

    def __init__(self, tmp_path: Path, seconds: float, fps: int = 10) -> None:
        import numpy as np

        from inspector.sources.synth import render_part

        rng = np.random.default_rng(4)
        frames = tmp_path / "frames"
        frames.mkdir()
        for i in range(int(seconds * fps)):
            cv2.imwrite(str(frames / f"{i:05d}.png"), render_part(rng, defective=i % 3 == 0).image)
        self.sent = int(seconds * fps)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/live.ts"
        self.proc = subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-re", "-framerate", str(fps), "-i", str(frames / "%05d.png"),
             "-c:v", "mpeg2video", "-q:v", "3", "-g", str(fps), "-f", "mpegts", "-listen", "1", self.url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _live_run(tmp_path: Path, url: str, db_url: str, deadline_s: float, *extra: str) -> subprocess.Popen:
    from inspector.core.config import CameraConfig, Config, StorageConfig, to_toml

    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml(Config(camera=CameraConfig(max_reconnects=1, reconnect_initial_s=0.2, read_timeout_s=3,
                                                      open_timeout_s=20),
                                  storage=StorageConfig(write_deadline_s=deadline_s))))
    return subprocess.Popen([sys.executable, "-m", "inspector.cli", "run", "--source", url, "--db", db_url,
                             "--config", str(cfg), "--json", "--quiet", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, INSPECTOR_HOME=str(tmp_path / "h")))


needs_ffmpeg = pytest.mark.skipif(not __import__("shutil").which("ffmpeg"), reason="ffmpeg is not installed")


@needs_ffmpeg
@pytest.mark.skipif(not POSIX, reason="POSIX processes")
def test_a_sqlite_file_locked_by_another_program_is_shown_and_every_picture_is_counted(tmp_path):
    """Before: 308 sent, 228 recorded, skipped, camera_gaps and not_inspected 0: pictures vanished unseen."""
    db = tmp_path / "lock.db"
    stream = _LiveStream(tmp_path, seconds=24)
    try:
        p = _live_run(tmp_path, stream.url, f"sqlite:///{db}", 1.0)
        try:
            def recorded() -> int:
                try:
                    c = sqlite3.connect(db, timeout=1)
                    try:
                        return c.execute("SELECT count(*) FROM inspections").fetchone()[0]
                    finally:
                        c.close()
                except sqlite3.Error:
                    return 0

            assert _wait_for(lambda: recorded() >= 10, 120), "no parts recorded"
            holder = subprocess.Popen([sys.executable, "-c", (
                "import sqlite3, sys, time\n"
                f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
                "c.execute('BEGIN EXCLUSIVE')\nprint('held', flush=True)\ntime.sleep(8)\nc.execute('ROLLBACK')\n")],
                stdout=subprocess.PIPE, text=True)  # another program holds the write lock for 8 s
            assert holder.stdout.readline().strip() == "held"
            holder.wait(60)
            out, err = p.communicate(timeout=180)
        finally:
            p.kill()
    finally:
        stream.close()
    assert p.returncode == 3, err[-3000:]  # the stream ended: the camera gave up, all that was read is on record
    summary = json.loads(out.strip().splitlines()[-1])
    assert "has not taken the records for 1 s" in err and "takes records again" in err, err[-3000:]
    assert summary["camera_dropped"] > 0 and summary["camera_dropped_s"] > 0, summary
    accounted = summary["frames"] + summary["camera_dropped"]
    assert stream.sent - 6 <= accounted <= stream.sent, (stream.sent, summary)


def _server_pids(server) -> list[int]:
    """The private PostgreSQL server's processes: the postmaster (its pid file) and its children."""
    main = int((server.data / "postmaster.pid").read_text().split()[0])
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == main:
                    kids.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return [main, *kids]


class _Hung:
    """Every process of the server stopped (SIGSTOP), as in a network partition: connections stay open, nothing
    answers, no TCP time-out fires; resumed by ``resume`` (SIGCONT)."""

    def __init__(self, server) -> None:
        import signal

        self.pids = _server_pids(server)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:  # a backend that ended since it was listed: nothing left to stop
                pass

    def resume(self) -> None:
        import signal

        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def _pg_count(url: str, sql: str) -> int:
    import psycopg2

    try:
        con = psycopg2.connect(url, connect_timeout=2)
    except psycopg2.Error:
        return 0
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return int(cur.fetchone()[0])
    except psycopg2.Error:
        return 0
    finally:
        con.close()


@needs_ffmpeg
@pytest.mark.skipif(not POSIX, reason="POSIX signals")
def test_a_hung_postgresql_server_sends_parts_to_the_outbox_and_nothing_is_lost(private_pg, tmp_path):  # noqa: F811
    """Before: the station froze for the whole stop with no verdict and no outbox use; 605 sent, 345 recorded."""
    stream = _LiveStream(tmp_path, seconds=50, fps=5)
    try:
        p = _live_run(tmp_path, stream.url, private_pg.url, 1.0)
        try:
            assert _wait_for(lambda: _pg_count(private_pg.url, "SELECT count(*) FROM inspections") >= 10, 120)
            hung = _Hung(private_pg)
            try:
                import time

                time.sleep(10)
            finally:
                hung.resume()
            out, err = p.communicate(timeout=240)
        finally:
            p.kill()
    finally:
        stream.close()
    assert p.returncode == 3, err[-3000:]  # the stream ended: the camera gave up; what was read is on record
    summary = json.loads(out.strip().splitlines()[-1])
    assert "records go to the outbox" in err, err[-3000:]
    rows = _pg_count(private_pg.url, "SELECT count(*) FROM inspections")
    uids = _pg_count(private_pg.url, "SELECT count(DISTINCT uid) FROM inspections")
    assert rows == uids == summary["frames"], (rows, uids, summary)  # each part once, none lost
    accounted = summary["frames"] + summary["camera_dropped"]
    assert stream.sent - 6 <= accounted <= stream.sent, (stream.sent, summary)
    import re

    forwarded = sum(int(n) for n in re.findall(r"forwarded (\d+) waiting record", err))
    assert forwarded >= 15, err[-3000:]  # the line went on through the 10 s stop (5 pictures/s), into the outbox


@needs_ffmpeg
@pytest.mark.skipif(not POSIX, reason="POSIX signals")
def test_sigterm_stops_in_bounded_time_while_postgresql_hangs(private_pg, tmp_path):  # noqa: F811
    """Before: SIGTERM was ignored until the server resumed."""
    import signal
    import time

    stream = _LiveStream(tmp_path, seconds=60, fps=5)
    hung = None
    try:
        p = _live_run(tmp_path, stream.url, private_pg.url, 1.0)
        try:
            assert _wait_for(lambda: _pg_count(private_pg.url, "SELECT count(*) FROM inspections") >= 5, 120)
            hung = _Hung(private_pg)
            time.sleep(3)
            p.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            out, err = p.communicate(timeout=90)
            took = time.monotonic() - t0
        finally:
            p.kill()
    finally:
        if hung is not None:
            hung.resume()
        stream.close()
    assert p.returncode == 0, err[-3000:]
    assert took < 45, took  # the outbox's last forward waits up to 15 s; nothing waits for the server
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["outbox"] > 0, summary  # what the server did not take waits on this station's disk


# --- 5. decoders that accept damage: structural checks per format ----------------------------------------------

def _encoded(ext: str, params=()) -> bytes:
    import numpy as np

    from inspector.sources.synth import render_part

    ok, buf = cv2.imencode(ext, render_part(np.random.default_rng(9), defective=True).image, list(params))
    assert ok
    return buf.tobytes()


def test_every_single_bit_flip_in_a_png_is_seen_by_its_structure_alone():
    """Without the decoder's complaints (a windowed process has no stderr to hear them), the CRCs decide."""
    import random

    from inspector.sources.structure import format_problem

    data = _encoded(".png")
    assert format_problem(data) is None
    r = random.Random(5)
    for _ in range(200):
        b = bytearray(data)
        pos = r.randrange(8, len(b))  # past the signature (a damaged signature is no PNG at all)
        b[pos] ^= 1 << r.randrange(8)
        assert format_problem(bytes(b)), pos


@pytest.mark.parametrize(("what", "damage", "fragment"), [
    ("RIFF size", lambda b: b[:4] + (len(b) + 100).to_bytes(4, "little") + b[8:], "RIFF header declares"),
    ("cut", lambda b: b[:len(b) * 2 // 3], "RIFF header declares"),
    ("start code", lambda b: b.replace(b"\x9d\x01\x2a", b"\x9d\x01\x2b", 1), "start code"),
    ("frame tag", lambda b: b[:20] + bytes([b[20] | 1]) + b[21:], "not a shown key frame"),
])
def test_a_webp_with_a_damaged_structure_is_not_judged(what, damage, fragment):
    from inspector.sources.decoding import decode_bytes
    from inspector.sources.structure import format_problem

    data = _encoded(".webp", (cv2.IMWRITE_WEBP_QUALITY, 90))
    assert data[12:16] == b"VP8 " and format_problem(data) is None
    bad = damage(data)
    assert fragment in (format_problem(bad) or ""), what
    img, err = decode_bytes(bad, "x.webp")
    assert img is None and err.startswith("image incomplete: x.webp: WebP")


def test_a_tiff_whose_directory_points_outside_the_file_is_not_judged():
    from inspector.sources.structure import format_problem

    data = _encoded(".tiff")
    assert format_problem(data) is None
    e = "<" if data[:2] == b"II" else ">"
    import struct

    assert "outside the file" in format_problem(data[:4] + struct.pack(e + "I", len(data) + 10) + data[8:])
    assert format_problem(data[:len(data) - 50])  # cut short: its directory (at the end here) is outside


def test_a_database_call_past_its_deadline_is_refused_and_the_next_is_refused_at_once_until_it_returns(caplog):
    import threading
    import time

    from db.sink import Deadline, WriteBlocked

    d = Deadline(0.2, "the database X")
    release = threading.Event()
    with pytest.raises(WriteBlocked, match="has not answered for 0.2 s"):
        d.call(lambda: release.wait(10))
    t0 = time.monotonic()
    with pytest.raises(WriteBlocked, match="an earlier write"):
        d.call(lambda: 1)
    assert time.monotonic() - t0 < loose(0.1) and d.blocked_s() >= 0.0
    release.set()
    assert _wait_for(lambda: d.blocked_s() == 0.0 and d._since is None, 5)
    assert d.call(lambda: 2) == 2
    with caplog.at_level("WARNING"):
        assert d.call(lambda: time.sleep(0.5) or 3, keep_waiting=True) == 3
    assert "has not taken the records" in caplog.text and "takes records again" in caplog.text
