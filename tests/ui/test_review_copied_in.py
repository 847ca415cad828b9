"""Issue 24: the review screen shows a review copied in from another database as what it is, never as the verdict:
the table's final verdict and its reviewed mark leave it out, the history lists it as "review not from this
database: ignored"."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from db import InspectionRepo, ModelRepo, ReviewRepo, RunRepo, open_database, session_factory
from db.schema import Review
from inspector.core.types import Detection, Detections, Inspection, Verdict
from tests.conftest import QC, staff
from ui.review.detail import REFUSED_TEXT, DetailPanel
from ui.review.model import FINAL, InspectionTableModel
from ui.review.service import Shown

T0 = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)


def _station(url: str, override: bool) -> tuple[int, list[dict]]:
    """A FAIL part (and, with ``override``, QC's override of it to PASS); its id and the reviews' rows."""
    engine = open_database(url)
    try:
        sessions = session_factory(engine)
        with sessions() as s, s.begin():
            staff(s)
            mv = ModelRepo.get_or_create(s, "parts", "/m/parts.pt", "ef" * 32, ["scratch"])
            run = RunRepo.start(s, "folder:parts", "{}", "default", mv.id, "line-1", "part").id
            boxes = Detections((Detection(0, "scratch", 0.9, 1.0, 2.0, 11.0, 12.0),), 64, 48, 3.0, "ef" * 32)
            part = InspectionRepo.add_many(s, run, [(Inspection(0, "folder", Verdict.FAIL, ("scratch",), boxes, T0,
                                                                 5.0, "p0.png", "ef" * 32), None)])[0]
            if override:
                ReviewRepo.add(s, part, QC(), "override", "PASS", "looked fine")
        with engine.connect() as c:
            return part, [dict(r._mapping) for r in c.execute(select(Review.__table__))]
    finally:
        engine.dispose()


def test_a_review_copied_in_is_listed_as_ignored_and_not_shown_as_the_verdict(qtbot, tmp_path):
    part, _ = _station(f"sqlite:///{tmp_path / 'live.db'}", override=False)
    other, copied = _station(f"sqlite:///{tmp_path / 'throwaway.db'}", override=True)
    assert other == part and copied
    engine = open_database(f"sqlite:///{tmp_path / 'live.db'}")
    try:
        with engine.begin() as c:
            c.execute(insert(Review.__table__).values(**copied[0]))
        with session_factory(engine)() as s:
            rows = InspectionRepo.page(s)
            detail = InspectionRepo.get(s, part)
    finally:
        engine.dispose()
    model = InspectionTableModel()
    model.set_rows(rows)
    assert model.data(model.index(0, FINAL)).startswith("FAIL") and not rows[0].reviewed
    panel = DetailPanel()
    qtbot.addWidget(panel)
    assert detail is not None
    panel.show_part(Shown(detail, None, "no picture"))
    assert REFUSED_TEXT in panel.history.text() and "looked fine" not in panel.history.text()
    assert "PASS" not in panel.final.text()


def test_signing_out_in_the_review_tab_ends_the_session(qtbot, tmp_path):
    """Issue 24: "Sign out" dropped the session in the window only; the token still worked for 12 h."""
    import pytest

    from db import TrustRepo
    from db.accounts import create_user, sign_in
    from inspector.core.auth import STATION_OPERATOR, Role
    from inspector.core.errors import PermissionDenied
    from ui.review.service import Database
    from ui.review.tab import ReviewTab

    url = f"sqlite:///{tmp_path / 'station.db'}"
    engine = open_database(url)
    try:
        sessions = session_factory(engine)
        with sessions.begin() as s:
            create_user(s, None, "boss", Role.ADMIN, "password1")
        boss = sign_in(sessions, "boss", "password1")
        tab = ReviewTab(Database(url, tmp_path))
        qtbot.addWidget(tab)
        qtbot.waitUntil(lambda: tab.idle, timeout=10_000)
        tab.set_actor(boss)
        tab.toggle_sign_in()
        assert tab.actor == STATION_OPERATOR
        qtbot.waitUntil(lambda: tab.idle, timeout=10_000)
        with sessions.begin() as s, pytest.raises(PermissionDenied, match="was ended"):
            TrustRepo.add(s, boss, "model", "12" * 32, "kept-token.onnx")
    finally:
        tab.db.close()
        engine.dispose()
