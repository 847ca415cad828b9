"""The line's memory in the database (SQLite and PostgreSQL): the parts a station answered, read back at start
so a repeat after a restart gets the same inspection; and the seal over a triggered part's id and trigger."""

from __future__ import annotations

import dataclasses
import datetime as dt

from db import AuditRepo, InspectionRepo, ModelRepo, RunRepo
from db.repositories.parts import answered_parts
from inspector.core.types import Trigger, Verdict


def _run(sessions, station: str) -> int:
    with sessions() as s, s.begin():
        model = ModelRepo.get_or_create(s, "tiny", "/models/tiny.pt", "ab" * 32, ["scratch", "dent", "hole"])
        return RunRepo.start(s, "folder:parts", "{}", "recipe-a", model.id, station, "part").id


def _add(sessions, mk, run_id: int, seq: int, part_id: str | None, verdict=Verdict.FAIL, labels=("scratch",)) -> int:
    insp = mk.inspection(seq, verdict, labels)
    if part_id is not None:
        insp = dataclasses.replace(insp, trigger=Trigger(part_id, 1.0e9 + seq, {"lot": "L1"}, "opcua"))
    with sessions() as s, s.begin():
        return InspectionRepo.add(s, run_id, insp, None)


def test_a_stations_answered_parts_newest_first_one_per_part_within_the_window(sessions, mk):
    first, later, other = _run(sessions, "cell-1"), _run(sessions, "cell-1"), _run(sessions, "cell-2")
    old = _add(sessions, mk, first, 1, "P1")  # T0 + 1 s
    a = _add(sessions, mk, first, 2, "P2", Verdict.PASS, ())
    _add(sessions, mk, first, 3, None)  # free-running: no part to remember
    b = _add(sessions, mk, later, 10, "P1", Verdict.FAIL, ("scratch", "dent"))  # the same part in a later run
    _add(sessions, mk, other, 11, "P3")  # another station's part
    with sessions() as s:
        got = answered_parts(s, "cell-1", mk.T0, 100)
        assert [(p.part_id, p.inspection_id) for p in got] == [("P1", b), ("P2", a)] and old not in {a, b}
        p1 = got[0]
        assert (p1.verdict, p1.reasons, p1.recipe, p1.seq) == ("FAIL", ("because 10",), "recipe-a", 10)
        assert [d[0] for d in p1.defects] == ["scratch", "dent"] and p1.defects[0][2:] == (1.0, 2.0, 11.0, 12.0)
        assert got[1].defects == ()
        assert [p.part_id for p in answered_parts(s, "cell-1", mk.T0 + dt.timedelta(seconds=5), 100)] == ["P1"]
        assert len(answered_parts(s, "cell-1", mk.T0, 1)) == 1


def test_a_part_id_changed_behind_inspectors_back_breaks_the_seal(db_url, engine, sessions, mk):
    run = _run(sessions, "cell-1")
    iid = _add(sessions, mk, run, 1, "P1")
    free = _add(sessions, mk, run, 2, None)
    with sessions() as s, s.begin():
        assert AuditRepo.verify(s).ok
    mk.raw_execute(db_url, engine, f"update inspections set part_id = 'P9' where id = {iid}")
    mk.raw_execute(db_url, engine, f"update inspections set part_id = 'P1' where id = {free}")  # now "triggered"
    with sessions() as s, s.begin():
        problems = AuditRepo.verify(s).problems
    assert any(p.startswith(f"inspection {iid}: ") for p in problems)
    assert any(p.startswith(f"inspection {free}: ") for p in problems)


def test_the_repeat_window_counts_back_from_now_and_zero_means_this_run_only(sessions, mk):
    from station.line import remembered

    run = _run(sessions, "cell-1")
    iid = _add(sessions, mk, run, 1, "P1")  # recorded at T0 (2024): long ago
    assert remembered(sessions, "cell-1", 0) == [] and remembered(sessions, "cell-1", 24) == []
    [res] = remembered(sessions, "cell-1", 24 * 366 * 30)
    assert (res.part_id, res.inspection_id, res.verdict, res.stored) == ("P1", iid, "FAIL", "database")
    assert res.defects == ({"class": "scratch", "confidence": 0.9, "box": [1.0, 2.0, 11.0, 12.0]},)
