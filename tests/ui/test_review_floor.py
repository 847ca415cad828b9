"""The review screen keeps the data honest, with real widgets over a real SQLite file: a REVIEW part needs
a decision, C moves on, no-op overrides and second false marks are refused before they are saved, a drawn
box shows in the detections table, the list states its total."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from inspector.core.auth import Role
from tests.conftest import signed
from tests.reports.conftest import build_qc_db
from tests.ui.test_review import add_user, go_to, key, open_tab, reviews  # noqa: F401 - open_tab: a fixture


@pytest.fixture
def qc(tmp_path):
    """More parts than the review tests' database: REVIEW parts nobody reviewed yet are among them."""
    return build_qc_db(tmp_path, n=48, seed=11)


def signed_in(qc, tab) -> None:  # noqa: F811
    add_user(qc, "qc-otto", Role.QC)
    tab.set_actor(signed("qc-otto", Role.QC))


def unreviewed(qc, verdict: str) -> list[int]:  # noqa: F811
    return [q for q in sorted(qc.ids, reverse=True) if q not in qc.reviewed_seqs and qc.machine[q] == verdict]


def test_review_parts_need_a_decision_and_c_moves_on(qtbot, qc, open_tab):  # noqa: F811
    tab = open_tab()
    signed_in(qc, tab)
    assert tab.page_label.text().endswith(f"of {len(qc.ids)}")  # "rows 1–48 of 48"
    before = reviews(qc)
    review_seq = unreviewed(qc, "REVIEW")[0]
    go_to(qtbot, tab, qc.ids[review_seq])
    key(qtbot, tab, Qt.Key.Key_C)
    assert reviews(qc) == before and "needs a decision" in tab.status.text()
    fail_seq = unreviewed(qc, "FAIL")[0]
    go_to(qtbot, tab, qc.ids[fail_seq])
    row = tab.table.currentIndex().row()
    key(qtbot, tab, Qt.Key.Key_F)  # already FAIL: nothing to override, no dialog
    assert tab.dialog is None and "already" in tab.status.text()
    key(qtbot, tab, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: tab.table.currentIndex().row() == row + 1, timeout=5_000)  # on to the next part
    new = reviews(qc)[len(before):]
    assert [(r[0], r[2]) for r in new] == [(qc.ids[fail_seq], "confirm")]


def test_a_box_is_marked_false_once_and_a_drawn_box_is_listed(qtbot, qc, open_tab):  # noqa: F811
    tab = open_tab()
    signed_in(qc, tab)
    seq = next(q for q in unreviewed(qc, "FAIL") if len(qc.det_ids[q]) == 1)
    go_to(qtbot, tab, qc.ids[seq])
    key(qtbot, tab, Qt.Key.Key_1)
    key(qtbot, tab, Qt.Key.Key_X)
    assert "No box is left" in tab.status.text()  # the part still says FAIL: QC is told what to do
    n = len(reviews(qc))
    key(qtbot, tab, Qt.Key.Key_1)
    key(qtbot, tab, Qt.Key.Key_X)
    assert len(reviews(qc)) == n and "already marked" in tab.status.text()
    tab._submit("missed_defect", detail={"label": "dent", "x1": 10, "y1": 12, "x2": 40, "y2": 44})
    qtbot.waitUntil(lambda: tab.idle and tab.detail.detections.rowCount() == 2, timeout=10_000)
    t = tab.detail.detections
    assert (t.item(1, 1).text(), t.item(1, 4).text()) == ("dent", "+ drawn")
    assert t.item(1, 3).text() == "10,12 – 40,44" and "qc-otto" in t.item(1, 4).toolTip()


def test_u_undoes_ones_own_last_review_as_a_new_record(qtbot, qc, open_tab):  # noqa: F811
    tab = open_tab()
    signed_in(qc, tab)
    seq = unreviewed(qc, "FAIL")[0]
    go_to(qtbot, tab, qc.ids[seq])
    key(qtbot, tab, Qt.Key.Key_1)
    key(qtbot, tab, Qt.Key.Key_X)
    assert tab.detail.detections.item(0, 4).text() == "✗ false"
    n = len(reviews(qc))
    key(qtbot, tab, Qt.Key.Key_U)
    assert len(reviews(qc)) == n + 1  # appended, nothing edited or deleted
    assert tab.detail.detections.item(0, 4).text() == ""  # the box stands again
    assert "Undid your last review" in tab.status.text() and "undid review" in tab.detail.history.text()


def test_the_class_picker_does_not_cover_the_drawn_box(qtbot, qc, open_tab):  # noqa: F811
    from PySide6.QtCore import QPoint, QRect

    tab = open_tab()
    tab.resize(1000, 640)  # a panel PC: the image sits in the middle, where a dialog opens by default
    tab.split.setSizes([560, 440])
    signed_in(qc, tab)
    go_to(qtbot, tab, qc.ids[unreviewed(qc, "FAIL")[0]])
    key(qtbot, tab, Qt.Key.Key_D)
    canvas = tab.detail.canvas
    w, h = canvas.image_size  # a large defect: most of the part
    a, b = canvas.to_screen(w * 0.05, h * 0.05).toPoint(), canvas.to_screen(w * 0.95, h * 0.95).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(canvas, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)
    qtbot.waitUntil(lambda: tab.dialog is not None and tab.dialog.isVisible(), timeout=5_000)
    box = QRect(canvas.mapToGlobal(a), canvas.mapToGlobal(b)).normalized()
    assert not tab.dialog.frameGeometry().intersects(box)
    tab.dialog.reject()
