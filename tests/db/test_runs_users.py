"""Model versions, runs (and how they end), users."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys

import pytest

from db import InspectionRepo, ModelRepo, RunRepo, UserRepo
from db.owner import Owner, this_process
from db.schema import Run
from inspector.core.auth import Role
from tests.conftest import signed


def ended_process() -> Owner:
    """The owner of a run whose process really ran and has ended."""
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return Owner(socket.gethostname(), proc.pid, started)


def orphan_run(sessions, run_id: int) -> None:
    """Give a run the owner of an ended process, as after a crash."""
    owner = ended_process()
    with sessions() as s, s.begin():
        run = s.get(Run, run_id)
        run.host, run.pid, run.process_started = owner.host, owner.pid, owner.started


def test_model_versions_are_one_per_content(sessions):
    with sessions() as s, s.begin():
        a = ModelRepo.get_or_create(s, "tiny", "/a/tiny.pt", "11" * 32, ["scratch", "dent"])
        b = ModelRepo.get_or_create(s, "renamed", "/b/tiny.pt", "11" * 32, ["x"])
        c = ModelRepo.get_or_create(s, "big", "/a/big.pt", "22" * 32, ["scratch"])
    assert a == b and a.id != c.id and a.classes == ("scratch", "dent")
    with sessions() as s:
        assert [m.name for m in ModelRepo.list(s)] == ["tiny", "big"]
        assert ModelRepo.by_sha256(s, "22" * 32) == c and ModelRepo.get(s, a.id) == a
    with sessions() as s, pytest.raises(ValueError, match="sha256"):
        ModelRepo.get_or_create(s, "bad", "x", "abc", [])


def test_runs_start_and_end(sessions, run_id):
    with sessions() as s, s.begin():
        run = RunRepo.get(s, run_id)
        assert run is not None and run.ended_at is None and run.recipe == {"conf": 0.5}
        ended = RunRepo.end(s, run_id, "error: camera lost")
        again = RunRepo.end(s, run_id, "finished")  # an ended run keeps its end
    assert ended.end_reason == "error: camera lost" and ended.ended_at is not None
    assert again.end_reason == "error: camera lost"


@pytest.mark.parametrize("reason", ["done", "error: ", "", "Finished"])
def test_bad_end_reasons(sessions, run_id, reason):
    with sessions() as s, pytest.raises(ValueError, match="end reason"):
        RunRepo.end(s, run_id, reason)


def test_ending_an_unknown_run(sessions):
    with sessions() as s, pytest.raises(LookupError):
        RunRepo.end(s, 12345, "finished")


def test_close_interrupted_ends_open_runs_at_their_last_inspection(sessions, run_id, mk):
    with sessions() as s, s.begin():
        model_id = RunRepo.get(s, run_id).model_id
        gone = ended_process()
        empty = RunRepo.start(s, "cam", "{}", "r", model_id, owner=gone).id
        done = RunRepo.start(s, "cam", "{}", "r", model_id, owner=gone).id
        RunRepo.end(s, done, "finished")
        InspectionRepo.add_many(s, run_id, [(mk.inspection(q), None) for q in (1, 5, 3)])
    orphan_run(sessions, run_id)
    with sessions() as s, s.begin():
        assert sorted(RunRepo.close_interrupted(s)) == sorted([run_id, empty])
    with sessions() as s, s.begin():
        assert RunRepo.close_interrupted(s) == []
        runs = {r.id: r for r in RunRepo.list(s)}
    assert runs[run_id].end_reason == "interrupted"
    assert runs[run_id].ended_at == mk.T0 + dt.timedelta(seconds=5)
    assert runs[empty].end_reason == "interrupted" and runs[empty].ended_at == runs[empty].started_at
    assert runs[done].end_reason == "finished"
    assert list(runs) == sorted(runs, reverse=True), "newest first"


def test_close_interrupted_can_spare_other_stations(sessions, run_id):
    orphan_run(sessions, run_id)
    with sessions() as s, s.begin():
        assert RunRepo.close_interrupted(s, station="line-2") == []
        assert RunRepo.close_interrupted(s, station="line-1") == [run_id]


def test_close_interrupted_spares_runs_whose_process_still_runs(sessions, run_id):
    """Another live process (a real one), this process, another host: none of their runs is closed. A reused
    process id (same pid, another start time) and an ended process are."""
    psutil = pytest.importorskip("psutil")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_owner = Owner(socket.gethostname(), live.pid, psutil.Process(live.pid).create_time())
        reused = Owner(socket.gethostname(), live.pid, live_owner.started - 3600)
        with sessions() as s, s.begin():
            model_id = RunRepo.get(s, run_id).model_id
            ids = {name: RunRepo.start(s, "cam", "{}", "r", model_id, owner=o).id
                   for name, o in [("live", live_owner), ("me", this_process()), ("reused", reused),
                                   ("ended", ended_process()),
                                   ("elsewhere", Owner("another-host.example", 1, 0.0))]}
        with sessions() as s, s.begin():
            closed = RunRepo.close_interrupted(s)
        assert sorted(closed) == sorted([ids["reused"], ids["ended"]])
        live.kill()
        live.wait()
        with sessions() as s, s.begin():
            assert RunRepo.close_interrupted(s) == [ids["live"]]
    finally:
        live.kill()
        live.wait()


def test_users(sessions):
    now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    boss = signed("boss", Role.ADMIN)
    with sessions() as s, s.begin():
        UserRepo.add(s, None, "boss", "admin", "scrypt$000")
        UserRepo.add(s, boss, "anna", "qc", "scrypt$abc")
        UserRepo.add(s, boss, "otto", "operator", "scrypt$def")
        with pytest.raises(ValueError, match="exists"):
            UserRepo.add(s, boss, "anna", "admin", "x")
        with pytest.raises(ValueError, match="role"):
            UserRepo.add(s, boss, "eve", "root", "x")
        for _ in range(2):
            u = UserRepo.record_failure(s, "anna", max_attempts=3, now=now)
        assert u.failed_attempts == 2 and u.locked_until is None
        u = UserRepo.record_failure(s, "anna", max_attempts=3, lock_for=dt.timedelta(minutes=5), now=now)
        assert u.locked_until == now + dt.timedelta(minutes=5)
        assert u.locked(now) and not u.locked(now + dt.timedelta(hours=1))
    with sessions() as s, s.begin():
        u = UserRepo.record_success(s, "anna")
        assert (u.failed_attempts, u.locked_until) == (0, None)
        assert UserRepo.set_role(s, boss, "otto", "admin").role == "admin"
        assert UserRepo.set_password(s, boss, "otto", "new").password_hash == "new"
        assert [x.name for x in UserRepo.list(s)] == ["anna", "boss", "otto"]
        assert UserRepo.get(s, "nobody") is None
        assert "scrypt" not in repr(UserRepo.get(s, "anna")), "the hash stays out of logs"
        with pytest.raises(LookupError):
            UserRepo.record_failure(s, "nobody")
