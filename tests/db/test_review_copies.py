"""Issue 24: a review copied in from another database (same data folder, same key), or an old override re-inserted
as the newest review, changes nothing people see before anyone runs ``audit verify``: the review table and its
filters, the verdict counts, the detail's history (listed as "not from this database"), the CSV report, the report's
figures and the export for training all leave it out. On the main of before, every one of them took it as the
part's final verdict."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from db import InspectionFilter, InspectionRepo, ReviewRepo, open_database, session_factory
from db.export import count_training_parts, iter_export_rows, iter_training_parts
from db.reporting import report_data
from db.schema import Review
from inspector.core.types import Verdict
from inspector.reports import write_csv
from tests.conftest import QC, staff
from tests.db.test_record_binding import rows as _rows


def _put(engine, model, values: dict) -> None:
    """Insert a row with its id, and move PostgreSQL's id sequence past it (as an attacker would)."""
    with engine.begin() as c:
        c.execute(insert(model.__table__).values(**values))
        if c.dialect.name == "postgresql":
            name = model.__tablename__
            c.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))


def _part(sessions, mk) -> int:
    run_id = mk.start_run(sessions)
    with sessions() as s, s.begin():
        staff(s)
        return InspectionRepo.add_many(s, run_id, [(mk.inspection(0, Verdict.FAIL, ("scratch",)), "p0.png")],
                                       recipe_sha256="ef" * 32)[0]


def _override_from_throwaway(tmp_path: Path, mk) -> dict:
    """A genuine override to PASS of the same part (same id, same time) in a throwaway database of this station."""
    other = open_database(f"sqlite:///{tmp_path / 'throwaway.db'}")
    try:
        sessions = session_factory(other)
        part = _part(sessions, mk)
        with sessions() as s, s.begin():
            ReviewRepo.add(s, part, QC(), "override", "PASS", "looked fine")
        return _rows(other, Review)[-1]
    finally:
        other.dispose()


@pytest.fixture(params=["copied from another database", "an old override replayed as newest"])
def forged(request, engine, sessions, mk, tmp_path) -> int:
    """A FAIL part whose newest stored review says PASS, put there behind Inspector's back."""
    part = _part(sessions, mk)
    if request.param.startswith("copied"):
        row = _override_from_throwaway(tmp_path, mk)
    else:
        with sessions() as s, s.begin():
            ReviewRepo.add(s, part, QC(), "override", "PASS", "looked fine")
            ReviewRepo.undo_last(s, part, QC())
        row = next(r for r in _rows(engine, Review) if r["action"] == "override" and r["new_verdict"] == "PASS")
    assert row["inspection_id"] == part
    _put(engine, Review, {**row, "id": max((r["id"] for r in _rows(engine, Review)), default=0) + 1})
    return part


def test_the_review_screen_ignores_it(sessions, forged):
    with sessions() as s:
        row = InspectionRepo.page(s)[0]
        assert row.id == forged and row.final_verdict == Verdict.FAIL
        assert InspectionRepo.page(s, InspectionFilter(verdict=Verdict.PASS)) == []
        assert [r.id for r in InspectionRepo.page(s, InspectionFilter(verdict=Verdict.FAIL))] == [forged]
        assert InspectionRepo.counts(s).fail == 1 and InspectionRepo.counts(s).pass_ == 0
        assert ReviewRepo.final_verdict(s, forged) == Verdict.FAIL
        detail = InspectionRepo.get(s, forged)
        assert detail is not None and detail.row.final_verdict == Verdict.FAIL
        assert detail.reviews[-1].new_verdict == Verdict.PASS and not detail.reviews[-1].counts  # listed, refused
        assert all(r.new_verdict != Verdict.PASS or r.id != detail.reviews[-1].id for r in detail.counted_reviews)
        assert not ReviewRepo.for_inspection(s, forged)[-1].counts


def test_the_csv_report_and_the_report_figures_ignore_it(sessions, forged, tmp_path):
    out = tmp_path / "r.csv"
    with sessions() as s, s.begin():
        write_csv(out, iter_export_rows(s))
        data = report_data(s)
    with open(out, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.DictReader(f))
    with sessions() as s:
        genuine = [r for r in ReviewRepo.for_inspection(s, forged) if r.counts]
    assert [(r["inspection_id"], r["final_verdict"], r["reviewed"]) for r in lines] == [
        (str(forged), "FAIL", "yes" if genuine else "no")]
    assert lines[0]["decision"] != "override PASS"
    assert data.totals.failed == 1 and data.totals.passed == 0 and data.escapes == 0
    assert data.overrides == len(genuine) and data.reviewed == (1 if genuine else 0)


def test_the_export_for_training_ignores_it(sessions, forged):
    with sessions() as s:
        parts = list(iter_training_parts(s))
        assert [(p.inspection_id, p.final_verdict) for p in parts] == [(forged, "FAIL")]
        assert all(step.new_verdict == "FAIL" for step in parts[0].reviews[-1:])  # an undo at most, never the copy
        assert count_training_parts(s, reviewed_only=True) == len(parts[0].reviews[-1:])


def test_a_genuine_review_after_it_still_counts(sessions, forged):
    with sessions() as s, s.begin():
        ReviewRepo.add(s, forged, QC("qc-ben"), "override", "PASS", "checked again: a reflection")
    with sessions() as s:
        assert InspectionRepo.page(s)[0].final_verdict == Verdict.PASS
        assert InspectionRepo.counts(s).pass_ == 1
        assert count_training_parts(s, reviewed_only=True) == 1
