"""Inspection records: insert, page newest first with a keyset, filter, count."""

from __future__ import annotations

import datetime as dt

import pytest

from db import InspectionFilter, InspectionRepo, ReviewRepo, RunRepo, VerdictCounts, open_database, session_factory
from inspector.core.types import Verdict
from tests.conftest import QC, staff

P, F, R, N = Verdict.PASS, Verdict.FAIL, Verdict.REVIEW, Verdict.NOT_INSPECTED

# seq: (machine verdict, labels)
PARTS = {
    0: (P, ()), 1: (F, ("scratch",)), 2: (P, ()), 3: (F, ("scratch", "scratch", "dent")), 4: (R, ("hole",)),
    5: (N, ()), 6: (P, ()), 7: (F, ("dent",)), 8: (P, ()), 9: (R, ("scratch",)),
}
# reviews, in order: (seq, action, new verdict)
REVIEWS = [(1, "override", P), (4, "override", F), (4, "override", P), (7, "confirm", None), (9, "override", P)]
FINAL = {0: P, 1: P, 2: P, 3: F, 4: P, 5: N, 6: P, 7: F, 8: P, 9: P}


def seed(sessions, run_id, mk) -> dict[int, int]:
    """The ten parts above, stored and reviewed; seq -> id."""
    with sessions() as s, s.begin():
        stored = InspectionRepo.add_many(s, run_id, [(mk.inspection(q, v, lb), f"img/{q}.jpg" if q % 2 else None)
                                                     for q, (v, lb) in PARTS.items()])
        by_seq = dict(zip(PARTS, stored, strict=True))
        staff(s)
        for seq, action, new in REVIEWS:
            ReviewRepo.add(s, by_seq[seq], QC("qc-anna"), action, new, reason="looked again")
    return by_seq


@pytest.fixture(scope="module")
def shared(module_db_url, mk):
    """(sessions, run id, seq -> id) of the ten reviewed parts, for the tests that only read."""
    engine = open_database(module_db_url)
    sessions = session_factory(engine)
    run_id = mk.start_run(sessions)
    yield sessions, run_id, seed(sessions, run_id, mk)
    engine.dispose()


def seqs(rows) -> list[int]:
    return [r.seq for r in rows]


def test_add_and_read_back_one(sessions, run_id, mk):
    insp = mk.inspection(3, F, ("scratch", "dent"))
    with sessions() as s, s.begin():
        iid = InspectionRepo.add(s, run_id, insp, "2024-03-01/run/0000003_fail.jpg")
    with sessions() as s:
        detail = InspectionRepo.get(s, iid)
        assert InspectionRepo.get(s, 10_000) is None
    assert detail is not None
    row = detail.row
    assert (row.id, row.run_id, row.seq, row.machine_verdict, row.final_verdict) == (iid, run_id, 3, F, F)
    assert row.created_at == insp.started_at and row.created_at.tzinfo is not None
    assert row.reasons == insp.reasons and row.latency_ms == 4.5 and row.frame_name == "part_0003.png"
    assert row.image_path == "2024-03-01/run/0000003_fail.jpg" and row.model_sha256 == "ab" * 32
    assert not row.reviewed and row.labels == (("dent", 1), ("scratch", 1)) and row.labels_summary == "dent, scratch"
    assert [(d.label, d.cls, d.x2) for d in detail.detections] == [("scratch", 0, 11.0), ("dent", 0, 11.0)]
    assert detail.reviews == () and detail.run.id == run_id
    assert detail.model is not None and detail.model.classes == ("scratch", "dent", "hole")


def test_add_many_returns_ids_in_order(sessions, run_id, mk):
    items = [(mk.inspection(q, P if q % 3 else F, ("dent",) * (q % 3 == 0)), None) for q in range(1200)]
    with sessions() as s, s.begin():
        got = InspectionRepo.add_many(s, run_id, items)
    assert len(got) == 1200 and got == sorted(got)
    with sessions() as s:
        rows = InspectionRepo.rows(s, [got[0], got[3], got[1199]])
        assert InspectionRepo.last_seq(s, run_id) == 1199
        assert InspectionRepo.counts(s, run_id=run_id) == VerdictCounts(1200, 800, 400, 0, 0)
    assert seqs(rows) == [0, 3, 1199] and rows[1].labels == (("dent", 1),)


def test_newest_page_and_summaries(shared):
    sessions, _, ids = shared
    with sessions() as s:
        rows = InspectionRepo.page(s, limit=4)
    assert seqs(rows) == [9, 8, 7, 6]
    assert [(r.machine_verdict, r.final_verdict, r.reviewed) for r in rows] == [
        (R, P, True), (P, P, False), (F, F, True), (P, P, False)]
    with sessions() as s:
        three = InspectionRepo.rows(s, [ids[3]])[0]
    assert three.labels == (("dent", 1), ("scratch", 2)) and three.labels_summary == "dent, scratch x2"
    assert three.detection_count == 3


@pytest.mark.parametrize("flt, expected", [
    (InspectionFilter(), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
    (InspectionFilter(verdict=P), [9, 8, 6, 4, 2, 1, 0]),
    (InspectionFilter(final_verdict="FAIL"), [7, 3]),
    (InspectionFilter(verdict=N), [5]),
    (InspectionFilter(verdict=R), []),
    (InspectionFilter(machine_verdict=F), [7, 3, 1]),
    (InspectionFilter(machine_verdict=R), [9, 4]),
    (InspectionFilter(machine_verdict=F, final_verdict=P), [1]),   # the model said FAIL, QC said PASS
    (InspectionFilter(machine_verdict=F, final_verdict=F), [7, 3]),
    (InspectionFilter(machine_verdict=R, verdict=P), [9, 4]),
    (InspectionFilter(reviewed=True), [9, 7, 4, 1]),
    (InspectionFilter(reviewed=False), [8, 6, 5, 3, 2, 0]),
    (InspectionFilter(reviewed=False, verdict=P), [8, 6, 2, 0]),
    (InspectionFilter(reviewed=True, verdict=F), [7]),
    (InspectionFilter(label="scratch"), [9, 3, 1]),
    (InspectionFilter(label="dent", verdict=F), [7, 3]),
    (InspectionFilter(label="scratch", reviewed=False), [3]),
    (InspectionFilter(label="hole", reviewed=True), [4]),
    (InspectionFilter(label="crack"), []),
    (InspectionFilter(since=dt.datetime(2024, 3, 1, 8, 0, 3, tzinfo=dt.timezone.utc),
                      until=dt.datetime(2024, 3, 1, 8, 0, 7, tzinfo=dt.timezone.utc)), [6, 5, 4, 3]),
    (InspectionFilter(since=dt.datetime(2024, 3, 1, 8, 0, 3), verdict=F, label="dent"), [7, 3]),  # naive = UTC
    (InspectionFilter(since=dt.datetime(2024, 3, 1, 8, 0, 2, tzinfo=dt.timezone.utc), reviewed=True), [9, 7, 4]),
])
def test_filters(shared, flt, expected):
    sessions = shared[0]
    with sessions() as s:
        assert seqs(InspectionRepo.page(s, flt, limit=100)) == expected


@pytest.mark.parametrize("flt_run", [True, False])
def test_run_filter(sessions, run_id, mk, flt_run):
    seed(sessions, run_id, mk)
    with sessions() as s, s.begin():
        other = RunRepo.start(s, "cam", "{}", "r", RunRepo.get(s, run_id).model_id).id
        InspectionRepo.add_many(s, other, [(mk.inspection(100 + q, F, ("scratch",), seconds=q + 0.5), None)
                                           for q in range(10)])
    with sessions() as s:
        rows = InspectionRepo.page(s, InspectionFilter(run_id=run_id if flt_run else other, verdict=F, label="scratch"))
        pages = InspectionRepo.page(s, InspectionFilter(run_id=run_id if flt_run else other, reviewed=True))
    assert seqs(rows) == ([3] if flt_run else list(range(109, 99, -1)))
    assert seqs(pages) == ([9, 7, 4, 1] if flt_run else [])


def test_keyset_pages_are_stable_while_new_rows_arrive(sessions, run_id, mk):
    # 30 parts, some at the same instant (the id breaks the tie)
    with sessions() as s, s.begin():
        InspectionRepo.add_many(s, run_id, [(mk.inspection(q, F if q % 4 == 0 else P, seconds=q // 2), None)
                                            for q in range(30)])
    seen = []
    after = None
    with sessions() as s:
        while True:
            rows = InspectionRepo.page(s, InspectionFilter(), limit=7, after=after)
            if not rows:
                break
            seen += seqs(rows)
            after = rows[-1].cursor
            with sessions() as w, w.begin():  # newer parts arrive between pages
                InspectionRepo.add(w, run_id, mk.inspection(1000 + len(seen), seconds=10_000 + len(seen)), None)
    assert seen == list(range(29, -1, -1))
    with sessions() as s:
        fails = []
        after = None
        while rows := InspectionRepo.page(s, InspectionFilter(machine_verdict=F), limit=3, after=after):
            fails += seqs(rows)
            after = rows[-1].cursor
    assert fails == [28, 24, 20, 16, 12, 8, 4, 0]


def test_iterate_walks_everything(shared):
    sessions = shared[0]
    with sessions() as s:
        assert seqs(InspectionRepo.iterate(s, InspectionFilter(verdict=P), batch=2)) == [9, 8, 6, 4, 2, 1, 0]


def test_counts_use_final_verdicts(shared):
    sessions, run_id, _ = shared
    with sessions() as s:
        everything = InspectionRepo.counts(s)
        later = InspectionRepo.counts(s, since=dt.datetime(2024, 3, 1, 8, 0, 4, tzinfo=dt.timezone.utc))
        mine = InspectionRepo.counts(s, run_id=run_id)
        none = InspectionRepo.counts(s, run_id=run_id + 1)
    assert everything == VerdictCounts(inspected=10, pass_=7, fail=2, review=0, not_inspected=1)
    assert everything.yield_pct == pytest.approx(7 / 9 * 100)
    assert later == VerdictCounts(inspected=6, pass_=4, fail=1, review=0, not_inspected=1)
    assert mine == everything and none == VerdictCounts() and none.yield_pct is None


def test_image_paths_and_last_seq(shared):
    sessions, run_id, _ = shared
    with sessions() as s:
        assert InspectionRepo.image_paths(s) == {f"img/{q}.jpg" for q in (1, 3, 5, 7, 9)}
        assert InspectionRepo.last_seq(s, run_id) == 9
        assert InspectionRepo.last_seq(s, run_id + 1) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"verdict": "MAYBE"}, "expected a verdict"),
    ({"verdict": "PASS", "final_verdict": "FAIL"}, "agree"),
    ({"since": dt.datetime(2024, 2, 1), "until": dt.datetime(2024, 1, 1)}, "until >= since"),
])
def test_bad_filters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InspectionFilter(**kwargs)


def test_bad_page_size(sessions):
    with sessions() as s, pytest.raises(ValueError, match="page size"):
        InspectionRepo.page(s, limit=0)
