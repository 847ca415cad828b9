"""Nothing lost: every write retried while the database is locked, one sentence (never SQL, parameters or a hash)
when it stays locked, images namespaced by database and station, and store-and-forward while a real PostgreSQL
server is stopped and started again mid-run."""

from __future__ import annotations

import logging
import re
import secrets
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from db import InspectionRepo, ModelRepo, RunRepo, open_database, session_factory
from db.accounts import create_user
from db.outbox import Outbox
from db.repositories.inspections import inspection_rows
from db.schema import Run
from db.sink import DbWriter
from db.writes import write
from inspector.core.auth import Role
from inspector.core.errors import StorageError
from inspector.core.images import ImageStore
from station import image_namespace, reconcile
from station.records import run_proof
from tests.conftest import signed
from tests.db.conftest import backend_url, hold_lock


@pytest.fixture
def lite(sqlite_url):
    engine = open_database(sqlite_url, busy_timeout_ms=100)
    yield sqlite_url, session_factory(engine), Path(sqlite_url.removeprefix("sqlite:///"))
    engine.dispose()


def test_a_write_waits_out_a_lock_held_for_a_while(lite):
    _url, sessions, path = lite
    t0 = time.monotonic()
    holder = hold_lock(path, 1.5)
    user, _ = write(sessions, lambda s: create_user(s, None, "anna", Role.ADMIN, "long enough pw 1"), "Adding anna",
                 wait_s=15)
    holder.join()
    assert user.name == "anna" and time.monotonic() - t0 >= 1.2


def test_a_lock_held_too_long_is_one_sentence_without_sql_or_the_password_hash(lite, caplog):
    _url, sessions, path = lite
    write(sessions, lambda s: create_user(s, None, "anna", Role.ADMIN, "long enough pw 1"), "Adding anna")
    caplog.set_level(logging.DEBUG)
    secret = secrets.token_urlsafe(16)  # not in any source line a traceback could show
    holder = hold_lock(path, 3)
    with pytest.raises(StorageError) as err:
        write(sessions, lambda s: create_user(s, signed("anna", Role.ADMIN), "bert", Role.ADMIN, secret), "Adding bert",
              wait_s=1)
    holder.join()
    msg = str(err.value)
    assert "locked" in msg and "\n" not in msg
    assert not any(w in msg for w in ("INSERT", "[SQL", "scrypt", "parameters")), msg
    hashes = [h for h in re.findall(r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]{8,}", caplog.text) if "AAAAAAAA" not in h]
    assert not hashes and secret not in caplog.text, "the log kept a password hash or a password"


def _two_databases(kind: str, tmp_path: Path):
    """Two empty databases of one kind: two SQLite files in one folder, or two PostgreSQL schemas."""
    a, b = backend_url(kind, tmp_path / "a"), backend_url(kind, tmp_path / "b")
    return a, b


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_databases_never_share_an_image_folder_and_clean_up_only_their_own(kind, tmp_path, mk):
    gens = _two_databases(kind, tmp_path)
    urls = [next(g) for g in gens]
    base = tmp_path / "images-base"  # one configured data folder for both, as on a plant PC
    try:
        spaces, files = [], []
        for url in urls:
            engine = open_database(url)
            sessions = session_factory(engine)
            ns = image_namespace(sessions, "images", "line 1/a")
            assert image_namespace(sessions, "images", "line 1/a") == ns, "the identity is stored, not remade"
            run_id = mk.start_run(sessions)
            with sessions() as s:
                started = s.get(Run, run_id).started_at
            store = ImageStore(base, ns, run_tag=f"run-{run_id}", proof=run_proof(ns, run_id, started))
            DbWriter(sessions, run_id, store).write_batch(
                [mk.inspection(q, image=np.full((8, 8, 3), q, np.uint8)) for q in range(3)])
            spaces.append((engine, sessions, ns, run_id))
            files.append({p for p in (base / ns).rglob("*.jpg")})
        assert spaces[0][2] != spaces[1][2] and spaces[0][3] == spaces[1][3] == 1, "same run number, two folders"
        # database A crashed mid-run: its run's process is gone, and it left an image no row names
        engine_a, sessions_a, ns_a, run_a = spaces[0]
        with sessions_a() as s, s.begin():
            s.get(Run, run_a).pid = 2 ** 22 + 7  # no such process
        stray = next(iter(files[0])).with_name("0000099_fail.jpg")
        stray.write_bytes(b"half a part")
        reconcile(sessions_a, base, ns_a, "line-1")
        assert not stray.exists(), "A's own orphan is removed"
        assert all(p.is_file() for p in files[0] | files[1]), "no file a row names was touched, in A or in B"
        for engine, *_ in spaces:
            engine.dispose()
    finally:
        for g in gens:
            g.close()


def test_an_existing_database_upgrades_and_gets_an_identity(sqlite_url, tmp_path):
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    from alembic import command

    from db.engine import make_engine
    from db.migrate import alembic_config

    engine = make_engine(sqlite_url)
    cfg = alembic_config(sqlite_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    engine.dispose()
    engine = open_database(sqlite_url)
    with engine.connect() as conn:
        db_id = conn.execute(text("SELECT value FROM database_info WHERE key = 'db_id'")).scalar()
    engine.dispose()
    assert db_id and len(db_id) == 32 and path.with_name(f"{path.name}.bak-0001").is_file()


def test_a_forward_whose_acknowledgement_was_lost_is_not_doubled(db_url, tmp_path, mk):
    engine = open_database(db_url)
    sessions = session_factory(engine)
    run_id = mk.start_run(sessions)
    entries = [inspection_rows(run_id, mk.inspection(q, labels=("scratch",)), None, f"{q:032x}") for q in range(6)]
    with sessions() as s, s.begin():  # the first three were committed, but the station never heard back
        InspectionRepo.add_rows(s, entries[:3])
    box = Outbox(tmp_path / "outbox.sqlite")
    box.put(run_id, entries)
    box.put_end(run_id, "stopped", mk.T0)
    assert box.size() == 7 and Outbox(box.path).size() == 7, "durable: a new process sees the same backlog"
    assert box.forward(sessions) == 7 and box.size() == 0
    with sessions() as s:
        seqs = [r.seq for r in InspectionRepo.page(s, limit=100)]
        run = RunRepo.get(s, run_id)
        boxes = s.execute(text("SELECT count(*) FROM detections")).scalar()
    engine.dispose()
    assert sorted(seqs) == list(range(6)), "every inspection once"
    assert boxes == 6 and run.end_reason == "stopped"


class Paced:
    """The runner's writer, slowed so that the server can be stopped while the run goes on; calls ``at(n)``
    before the n-th batch."""

    def __init__(self, inner: DbWriter, at) -> None:
        self.inner, self.at, self.n = inner, at, 0

    def write_batch(self, inspections):
        self.n += 1
        self.at(self.n)
        time.sleep(0.05)
        return self.inner.write_batch(inspections)


def test_postgres_stopped_and_started_mid_run_loses_nothing(private_pg, tmp_path):
    """A real server stopped (immediate, as in a power cut) and started again while the line runs: every part
    arrives once, in order, and every image a row names is on disk."""
    from inspector.core.config import RecipeConfig
    from inspector.inspection.pipeline import Pipeline
    from inspector.inspection.rules import Recipe
    from inspector.inspection.runner import Runner
    from inspector.sources.synthetic import SyntheticSource
    from tests.conftest import ScriptedDetector

    engine = open_database(private_pg.url)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        model = ModelRepo.get_or_create(s, "m", "m.pt", "ab" * 32, ["scratch"])
        run_id = RunRepo.start(s, "synthetic", "{}", "r", model.id, "line-1", "part").id
    base = tmp_path / "data"
    ns = image_namespace(sessions, "images", "line-1")
    writer = DbWriter(sessions, run_id, ImageStore(base, ns, run_tag=f"run-{run_id}"),
                      Outbox(base / f"{ns}.outbox" / "outbox.sqlite"), retry_every_s=0.3)
    seen_backlog = []

    def at(n: int) -> None:
        if n == 5:
            private_pg.stop("immediate")
        if 5 <= n:
            seen_backlog.append(writer.backlog())
        if n == 25:
            private_pg.start()

    n = 120
    script = [[("scratch", 0.9, (10, 10, 50, 40))], [], []]
    runner = Runner(SyntheticSource(n, seed=3), lambda: Pipeline(ScriptedDetector(script), Recipe(RecipeConfig())),
                    Paced(writer, at), batch_max=2)
    runner.start()
    assert runner.join(timeout=120)
    assert runner.error is None, runner.error
    assert max(seen_backlog) > 0, "the outage was not seen: nothing went to the outbox"
    assert writer.forward(force=True) and writer.backlog() == 0
    with sessions() as s:
        rows = s.execute(text("SELECT seq, image_path, uid FROM inspections ORDER BY id")).all()
    engine.dispose()
    assert [r.seq for r in rows] == list(range(n)), "every inspection once, in order"
    assert len({r.uid for r in rows}) == n
    missing = [r.image_path for r in rows if r.image_path and not (base / r.image_path).is_file()]
    assert not missing, f"rows name images that are not on disk: {missing[:3]}"


def test_the_size_cap_keeps_the_outbox_and_its_images_and_other_folders(sqlite_url, tmp_path, mk):
    """Records waiting for the server name images no row names yet: the size cap's orphan sweep keeps them, and
    it never looks outside this database's and station's own folder."""
    from db.retention import apply_retention

    engine = open_database(sqlite_url)
    sessions = session_factory(engine)
    run_id = mk.start_run(sessions)
    base = tmp_path / "data"
    ns = image_namespace(sessions, "images", "line-1")
    store = ImageStore(base, ns, run_tag=f"run-{run_id}")
    waiting = [store.save(mk.inspection(q, image=np.full((8, 8, 3), q, np.uint8))) for q in range(3)]
    box = Outbox(base / f"{ns}.outbox" / "outbox.sqlite")
    box.put(run_id, [inspection_rows(run_id, mk.inspection(q), p, f"{q:032x}") for q, p in enumerate(waiting)])
    other = base / "images" / "another-db" / "line-1" / "x.jpg"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another database's part")
    stray = base / ns / "stray.jpg"
    stray.write_bytes(b"orphan")
    rep = apply_retention(sessions, base, ns, cap_bytes=1, waiting=box.image_paths())
    engine.dispose()
    assert rep.orphans_removed == 1 and not stray.exists()
    assert all((base / p).is_file() for p in waiting) and box.path.is_file() and other.is_file()


def test_a_camera_password_never_reaches_the_runs_table_or_a_report(sessions, mk, tmp_path):
    """A run whose source was recorded with a password (before this version masked it) reads back masked."""
    from db.schema import Run as RunRow
    from station.reports import make_report

    run_id = mk.start_run(sessions)
    with sessions() as s, s.begin():
        s.get(RunRow, run_id).source = "rtsp://admin:hunter22@10.0.0.7/stream1"
        InspectionRepo.add_many(s, run_id, [(mk.inspection(0), None)])
    with sessions() as s:
        assert RunRepo.get(s, run_id).source == "rtsp://admin:***@10.0.0.7/stream1"
    out = tmp_path / "r.csv"
    make_report(sessions, "csv", out, image_root=tmp_path)
    assert "hunter22" not in out.read_text() and "admin:***@" in out.read_text()
