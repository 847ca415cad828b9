"""A plant on a real PostgreSQL server (issue 30; ``.ci/run`` runs it: its private server comes from initdb/pg_ctl):
three stations, each with its own key, outbox and writer thread, judging at once while the server is stopped and
started again; every part arrives exactly once, every station's chain verifies from a PC with no private key, and a
row one station forged in another's name is reported."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from db import AuditRepo, DbWriter, ModelRepo, RunRepo, open_database, session_factory
from db.outbox import Outbox
from db.plant import attach_signer
from db.repositories.stations import StationRepo
from inspector.core.images import ImageStore
from inspector.core.signing import ensure_key_pair, read_public
from inspector.core.types import Verdict
from station import image_namespace

PARTS = 60
NAMES = ("s1", "s2", "s3")


def _station(url: str, name: str, home, base):
    engine = open_database(url)
    sessions = session_factory(engine)
    attach_signer(sessions, home, station=name)
    with sessions() as s, s.begin():
        model = ModelRepo.get_or_create(s, "m", "m.pt", "ab" * 32, ["scratch"])
        run_id = RunRepo.start(s, "synthetic", "{}", "r", model.id, name, "part").id
        AuditRepo.append(s, actor=f"station:{name}", action="run.start", target=f"run:{run_id}")
    ns = image_namespace(sessions, "images", name)
    writer = DbWriter(sessions, run_id, ImageStore(base, ns, run_tag=f"run-{run_id}"),
                      Outbox(base / f"{ns}.outbox" / "outbox.sqlite"), retry_every_s=0.3)
    return engine, sessions, run_id, writer


def test_three_stations_through_a_server_restart_each_row_once_and_a_forged_row_reported(private_pg, tmp_path, mk,
                                                                                         monkeypatch):
    url = private_pg.url
    homes = {n: tmp_path / n for n in NAMES}
    engine0 = open_database(url)
    with session_factory(engine0)() as s, s.begin():
        for n in NAMES:
            StationRepo.add(s, None, n, read_public(ensure_key_pair(homes[n])))
    stations = {n: _station(url, n, homes[n], tmp_path / f"data-{n}") for n in NAMES}
    peak = dict.fromkeys(NAMES, 0)
    errors: list[BaseException] = []
    stopped, started = threading.Event(), threading.Event()

    def line(name: str) -> None:
        _e, _s, _run, writer = stations[name]
        try:
            for q in range(PARTS):
                if q == 10 and name == "s1":
                    private_pg.stop("immediate")
                    stopped.set()
                    threading.Timer(3.0, lambda: (private_pg.start(), started.set())).start()
                writer.write_batch([mk.inspection(q, Verdict.FAIL if q % 4 == 0 else Verdict.PASS)])
                peak[name] = max(peak[name], writer.backlog())
                time.sleep(0.05)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=line, args=(n,)) for n in NAMES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert stopped.is_set() and started.wait(30)
    deadline = time.monotonic() + 60
    for n in NAMES:
        writer = stations[n][3]
        while not writer.forward(force=True):
            assert time.monotonic() < deadline, f"{n}: the outbox did not drain"
            time.sleep(0.5)
    assert any(peak.values()), "the outage was not seen: nothing went to an outbox"
    with engine0.connect() as conn:
        for n in NAMES:
            got = conn.execute(text("SELECT count(*), count(DISTINCT i.seq) FROM inspections i JOIN runs r ON "
                                    "r.id = i.run_id WHERE r.station = :n"), {"n": n}).one()
            assert tuple(got) == (PARTS, PARTS), f"{n}: rows, distinct = {tuple(got)}"
    (tmp_path / "pc4").mkdir()
    monkeypatch.setenv("INSPECTOR_HOME", str(tmp_path / "pc4"))  # no private key, no HMAC key file here
    with session_factory(engine0)() as s:
        rep = AuditRepo.verify(s)
    assert rep.ok, rep.problems
    assert len(rep.stations) == 3
    # s1's key writes a part into s2's run: signed, but in another station's name
    _e1, s1_sessions, _r1, _w1 = stations["s1"]
    from db import InspectionRepo

    with s1_sessions() as s, s.begin():
        InspectionRepo.add_many(s, stations["s2"][2], [(mk.inspection(999), None)])
    with session_factory(engine0)() as s:
        rep = AuditRepo.verify(s)
    assert not rep.ok
    assert any("signed with the key of station 's1' but claims station 's2'" in p for p in rep.problems), rep.problems
    for e, *_ in stations.values():
        e.dispose()
    engine0.dispose()
