"""Reviews: appended, never editing the inspection; the latest one gives the final verdict; each is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from db import AuditRepo, InspectionRepo, ReviewRepo
from inspector.core.types import Verdict
from tests.conftest import QC, signed, staff


@pytest.fixture
def fail_id(sessions, run_id, mk) -> int:
    with sessions() as s, s.begin():
        staff(s)
        return InspectionRepo.add(s, run_id, mk.inspection(7, Verdict.FAIL, ("scratch",)), "img/7.jpg")


def raw_row(engine, iid: int) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT * FROM inspections WHERE id = :i"), {"i": iid}).one())


def test_reviews_never_touch_the_inspection_and_the_latest_wins(engine, sessions, fail_id):
    before = raw_row(engine, fail_id)
    drawn = {"box": {"label": "dent", "x1": 1, "y1": 2, "x2": 3, "y2": 4}}
    steps = [("override", "PASS", "scratch is dust", {}),
             ("false_detection", None, "", {"detection_id": 1}),
             ("missed_defect", "FAIL", "dent at the edge", drawn),
             ("confirm", None, "", {})]
    made = []
    for action, new, reason, detail in steps:
        with sessions() as s, s.begin():
            made.append(ReviewRepo.add(s, fail_id, QC("qc-anna"), action, new, reason, detail))
    assert raw_row(engine, fail_id) == before
    assert [(r.old_verdict.value, r.new_verdict.value) for r in made] == [
        ("FAIL", "PASS"), ("PASS", "PASS"), ("PASS", "FAIL"), ("FAIL", "FAIL")]
    assert made[2].detail == drawn
    with sessions() as s:
        detail = InspectionRepo.get(s, fail_id)
        audit = [e for e in AuditRepo.list(s) if e.action.startswith("review.")]
        assert ReviewRepo.final_verdict(s, fail_id) is Verdict.FAIL
    assert detail is not None and detail.row.machine_verdict is Verdict.FAIL and detail.row.reviewed
    assert [r.action for r in detail.reviews] == ["override", "false_detection", "missed_defect", "confirm"]
    assert [e.action for e in audit] == ["review.confirm", "review.missed_defect", "review.false_detection",
                                         "review.override"]
    assert audit[-1].actor == "qc-anna" and audit[-1].target == f"inspection:{fail_id}"
    assert audit[-1].detail["reason"] == "scratch is dust" and audit[-1].detail["new_verdict"] == "PASS"


@pytest.mark.parametrize("action, new, reason, error", [
    ("override", "PASS", "", "reason for an override"),
    ("override", "PASS", "   ", "reason for an override"),
    ("override", None, "why not", "new verdict of an override"),
    ("confirm", "PASS", "", "keep the verdict"),
    ("approve", "PASS", "ok", "review action"),
    ("override", "GOOD", "ok", "expected a verdict"),
])
def test_bad_reviews_are_refused_and_leave_nothing(sessions, fail_id, action, new, reason, error):
    with sessions() as s, s.begin(), pytest.raises(ValueError, match=error):
        ReviewRepo.add(s, fail_id, QC("qc-anna"), action, new, reason)
    with sessions() as s:
        assert ReviewRepo.for_inspection(s, fail_id) == []
        assert [e for e in AuditRepo.list(s) if e.action.startswith("review.")] == []


def test_unknown_inspection_and_missing_reviewer(sessions, fail_id):
    with sessions() as s, s.begin():
        with pytest.raises(LookupError, match="no inspection"):
            ReviewRepo.add(s, fail_id + 99, QC("qc"), "confirm")
        with pytest.raises(ValueError, match="reviewing Actor"):
            ReviewRepo.add(s, fail_id, " ", "confirm")


def test_role_is_checked_at_the_database_boundary(sessions, fail_id):
    from db import UserRepo
    from inspector.core.auth import STATION_OPERATOR, Role
    from inspector.core.errors import PermissionDenied

    with sessions() as s, s.begin():
        UserRepo.add(s, signed("root-admin", Role.ADMIN), "otto", "operator", "scrypt$test")
    with sessions() as s, s.begin():
        with pytest.raises(PermissionDenied, match="review"):
            ReviewRepo.add(s, fail_id, signed("otto", Role.OPERATOR), "confirm")
        with pytest.raises(PermissionDenied, match="not signed in"):
            ReviewRepo.add(s, fail_id, STATION_OPERATOR, "override", "PASS", "looks fine")
        with pytest.raises(PermissionDenied, match="not a user"):
            ReviewRepo.add(s, fail_id, signed("station-operator", Role.QC), "override", "PASS", "looks fine")
        assert ReviewRepo.for_inspection(s, fail_id) == []


@pytest.mark.parametrize("claim, error", [
    (("mallory", "admin"), "not a user"),  # issue 12.6: absent from users, claiming ADMIN
    (("otto", "admin"), "is operator on this station"),  # a user claiming a role they do not have
    (("otto", "qc"), "is operator on this station"),
])
def test_a_claimed_role_counts_for_nothing(sessions, fail_id, claim, error):
    from db import UserRepo
    from inspector.core.auth import Role
    from inspector.core.errors import PermissionDenied

    with sessions() as s, s.begin():
        UserRepo.add(s, signed("root-admin", Role.ADMIN), "otto", "operator", "scrypt$test")
    with sessions() as s, s.begin(), pytest.raises(PermissionDenied, match=error):
        ReviewRepo.add(s, fail_id, signed(claim[0], Role(claim[1])), "override", "PASS", "looks fine")
    with sessions() as s:
        assert ReviewRepo.final_verdict(s, fail_id) is Verdict.FAIL


def test_a_role_raised_in_the_table_is_refused(engine, sessions, fail_id):
    """update users set role='admin' behind Inspector's back: the broken seal refuses the account."""
    from db import UserRepo
    from inspector.core.auth import Role
    from inspector.core.errors import PermissionDenied

    with sessions() as s, s.begin():
        UserRepo.add(s, signed("root-admin", Role.ADMIN), "otto", "operator", "scrypt$test")
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET role = 'qc' WHERE name = 'otto'"))
    with sessions() as s, s.begin(), pytest.raises(PermissionDenied, match="changed outside Inspector"):
        ReviewRepo.add(s, fail_id, signed("otto", Role.QC), "override", "PASS", "looks fine")


def test_a_failed_transaction_keeps_neither_review_nor_audit(sessions, fail_id):
    with sessions() as s:
        entries = AuditRepo.verify(s).entries
    with pytest.raises(RuntimeError), sessions() as s, s.begin():
        ReviewRepo.add(s, fail_id, QC("qc"), "override", "PASS", "fine")
        raise RuntimeError("the caller changed its mind")
    with sessions() as s:
        assert ReviewRepo.for_inspection(s, fail_id) == [] and AuditRepo.verify(s).entries == entries
