"""The review tab driven by the keyboard, over a real SQLite database with real stored images.

Reviews go through ``ReviewRepo.add`` on the tab's pool; these tests read the database back with SQL.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from inspector.core.auth import STATION_OPERATOR, Role
from tests.conftest import signed
from tests.reports.conftest import build_qc_db
from ui.review.model import FINAL
from ui.review.service import Database
from ui.review.tab import ReviewTab

PASSWORD = "correct horse"


@pytest.fixture
def qc(tmp_path):
    return build_qc_db(tmp_path, n=24, seed=4)


@pytest.fixture
def open_tab(qtbot, qc, tmp_path):
    from ui.theme import apply_theme

    tabs = []

    def make() -> ReviewTab:
        apply_theme(QApplication.instance())
        tab = ReviewTab(Database(qc.url, tmp_path))
        qtbot.addWidget(tab)
        tab.resize(1500, 900)
        tab.show()
        tab.activateWindow()
        qtbot.waitUntil(lambda: tab.idle and tab.detail.shown is not None, timeout=10_000)
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.shutdown()


def add_user(qc, name: str, role: Role) -> None:
    """Users made beforehand through the accounts module (an admin first, as the rules want)."""
    from db import open_database, session_factory
    from db.accounts import create_user, has_users

    engine = open_database(qc.url)
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        if not has_users(s):
            create_user(s, None, "root-admin", Role.ADMIN, PASSWORD)
        create_user(s, signed("root-admin", Role.ADMIN), name, role, PASSWORD)
    engine.dispose()


def key(qtbot, tab: ReviewTab, k, text: str = "") -> None:
    """One key to the tab, as the reviewer types it (focus on the table), then wait for the pool."""
    qtbot.waitUntil(tab.isActiveWindow, timeout=5_000)
    target = QApplication.focusWidget() or tab.table
    qtbot.keyClick(target, k)
    qtbot.waitUntil(lambda: tab.idle, timeout=10_000)


def type_into_focus(qtbot, text: str) -> None:
    qtbot.keyClicks(QApplication.focusWidget(), text)


def wait_dialog(qtbot, get):
    qtbot.waitUntil(lambda: get() is not None and get().isVisible(), timeout=10_000)
    dlg = get()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None and dlg.isAncestorOf(QApplication.focusWidget()),
                    timeout=5_000)
    return dlg


def reviews(qc) -> list[tuple]:
    return qc.sql("SELECT inspection_id, reviewer, action, old_verdict, new_verdict, reason, detail FROM reviews "
                  "ORDER BY id")


def snapshot(qc) -> tuple[list[tuple], list[tuple]]:
    return qc.sql("SELECT * FROM inspections ORDER BY id"), qc.sql("SELECT * FROM detections ORDER BY id")


def go_to(qtbot, tab: ReviewTab, inspection_id: int) -> None:
    """J or K until the row is selected (the table is newest first) and its detail is shown."""
    target = tab.model.index_of(inspection_id)
    assert target is not None
    for _ in range(len(tab.model.rows)):
        if tab.table.currentIndex().row() == target:
            break
        key(qtbot, tab, Qt.Key.Key_J if tab.table.currentIndex().row() < target else Qt.Key.Key_K)
    qtbot.waitUntil(lambda: tab.shown_current() is not None and tab.shown_current().row.id == inspection_id)


def final_cell(tab: ReviewTab, inspection_id: int) -> str:
    return tab.model.data(tab.model.index(tab.model.index_of(inspection_id), FINAL))


def test_review_flow_by_keyboard(qtbot, qc, open_tab):
    before = snapshot(qc)
    old_reviews = reviews(qc)
    tab = open_tab()
    rows = tab.model.rows
    assert [r.id for r in rows] == [qc.ids[s] for s in sorted(qc.ids, reverse=True)]  # newest first
    assert tab.table.currentIndex().row() == 0

    # J/K and Down/Up move through the table and the detail follows
    key(qtbot, tab, Qt.Key.Key_J)
    key(qtbot, tab, Qt.Key.Key_J)
    assert tab.table.currentIndex().row() == 2
    key(qtbot, tab, Qt.Key.Key_K)
    key(qtbot, tab, Qt.Key.Key_Up)
    key(qtbot, tab, Qt.Key.Key_Down)
    assert tab.table.currentIndex().row() == 1
    qtbot.waitUntil(lambda: tab.shown_current() is not None and tab.shown_current().row.id == rows[1].id)

    unreviewed = [q for q in sorted(qc.ids, reverse=True) if q not in qc.reviewed_seqs]
    fails = [q for q in unreviewed if qc.machine[q] == "FAIL"]
    passes = [q for q in unreviewed if qc.machine[q] == "PASS"]
    two_boxes = next((q for q in fails if len(qc.boxes[q]) == 2), fails[-1])
    confirm_seq, pass_seq = [q for q in fails if q != two_boxes][:2]
    fail_seq = passes[0]

    # C, not signed in: the first admin is created in the login dialog, by keys alone; the confirm follows
    go_to(qtbot, tab, qc.ids[confirm_seq])
    key(qtbot, tab, Qt.Key.Key_C)
    dlg = wait_dialog(qtbot, lambda: tab.login)
    assert dlg.first_user
    type_into_focus(qtbot, "eva-admin")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    type_into_focus(qtbot, PASSWORD)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    type_into_focus(qtbot, PASSWORD)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible() and tab.idle, timeout=10_000)
    assert tab.actor.name == "eva-admin" and tab.actor.role == Role.ADMIN
    assert "Signed in as eva-admin (admin)" in tab.user.text()
    assert qc.sql("SELECT name, role FROM users") == [("eva-admin", "admin")]

    # F: override to FAIL with a reason typed in the dialog and Enter
    go_to(qtbot, tab, qc.ids[fail_seq])
    key(qtbot, tab, Qt.Key.Key_F)
    dlg = wait_dialog(qtbot, lambda: tab.dialog)
    type_into_focus(qtbot, "burr on the rim")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible() and tab.idle, timeout=10_000)
    assert final_cell(tab, qc.ids[fail_seq]).startswith("FAIL")

    # P: override to PASS
    go_to(qtbot, tab, qc.ids[pass_seq])
    key(qtbot, tab, Qt.Key.Key_P)
    dlg = wait_dialog(qtbot, lambda: tab.dialog)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)  # an empty reason is refused
    assert dlg.isVisible() and "reason" in dlg.error.text()
    type_into_focus(qtbot, "reflection, not a defect")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible() and tab.idle, timeout=10_000)
    assert final_cell(tab, qc.ids[pass_seq]).startswith("PASS")
    assert "Override" in tab.detail.history.text() and "reflection, not a defect" in tab.detail.history.text()

    # X: the second box (picked with 2) is a false detection
    go_to(qtbot, tab, qc.ids[two_boxes])
    n_boxes = len(qc.det_ids[two_boxes])
    key(qtbot, tab, Qt.Key.Key_1 if n_boxes == 1 else Qt.Key.Key_2)
    picked = qc.det_ids[two_boxes][0 if n_boxes == 1 else 1]
    assert tab.detail.selected_detection() == picked
    key(qtbot, tab, Qt.Key.Key_X)
    cell = tab.detail.detections.item(0 if n_boxes == 1 else 1, 4)
    assert cell.text() == "✗ false" and "eva-admin" in cell.toolTip()
    assert f"box {1 if n_boxes == 1 else 2} (" in tab.detail.history.text()

    # D: draw a box with the mouse, pick the class by keys
    go_to(qtbot, tab, qc.ids[confirm_seq])
    key(qtbot, tab, Qt.Key.Key_D)
    canvas = tab.detail.canvas
    assert canvas.drawing
    a, b = canvas.to_screen(60, 70).toPoint(), canvas.to_screen(140, 130).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseMove(canvas, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)
    dlg = wait_dialog(qtbot, lambda: tab.dialog)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Down)
    label = dlg.label()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible() and tab.idle, timeout=10_000)
    drawn = [bx for bx in canvas.boxes if bx.kind == "missed"]
    assert len(drawn) == 1 and label in drawn[0].text

    new = reviews(qc)[len(old_reviews):]
    actions = [(iid, who, act, old, newv, reason) for iid, who, act, old, newv, reason, _ in new]
    assert actions == [
        (qc.ids[confirm_seq], "eva-admin", "confirm", "FAIL", "FAIL", ""),
        (qc.ids[fail_seq], "eva-admin", "override", "PASS", "FAIL", "burr on the rim"),
        (qc.ids[pass_seq], "eva-admin", "override", "FAIL", "PASS", "reflection, not a defect"),
        (qc.ids[two_boxes], "eva-admin", "false_detection", "FAIL", "FAIL", ""),
        (qc.ids[confirm_seq], "eva-admin", "missed_defect", "FAIL", "FAIL", ""),
    ]
    import json

    assert json.loads(new[3][6]) == {"detection_id": picked}
    box = json.loads(new[4][6])
    assert box["label"] == label
    for k, want in (("x1", 60), ("y1", 70), ("x2", 140), ("y2", 130)):  # pixels of the original image
        assert abs(box[k] - want) <= 2, (k, box)
    assert snapshot(qc) == before  # the inspections themselves are never edited
    assert final_cell(tab, qc.ids[fail_seq]).startswith("FAIL") and final_cell(tab, qc.ids[confirm_seq]) == "FAIL"
    assert tab.model.rows[tab.model.index_of(qc.ids[pass_seq])].reviewed


def test_operator_gets_the_login_prompt_and_cancel_changes_nothing(qtbot, qc, open_tab):
    add_user(qc, "qc-otto", Role.QC)
    before, old = snapshot(qc), reviews(qc)
    tab = open_tab()
    assert tab.actor == STATION_OPERATOR
    key(qtbot, tab, Qt.Key.Key_C)
    dlg = wait_dialog(qtbot, lambda: tab.login)
    assert not dlg.first_user  # users exist: a sign-in, not the first admin
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not dlg.isVisible())
    assert tab.actor == STATION_OPERATOR and tab.idle
    assert reviews(qc) == old and snapshot(qc) == before


def test_wrong_password_is_shown_in_the_dialog_then_qc_signs_in(qtbot, qc, open_tab):
    add_user(qc, "qc-otto", Role.QC)
    tab = open_tab()
    old = reviews(qc)
    key(qtbot, tab, Qt.Key.Key_C)
    dlg = wait_dialog(qtbot, lambda: tab.login)
    type_into_focus(qtbot, "qc-otto")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    type_into_focus(qtbot, "not the password")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.busy and "wrong user name or password" in dlg.error.text().lower(),
                    timeout=10_000)
    assert dlg.isVisible() and tab.actor == STATION_OPERATOR and reviews(qc) == old
    qtbot.keyClicks(dlg.password, PASSWORD)  # the wrong one is selected: typing replaces it
    qtbot.keyClick(dlg.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible() and tab.idle, timeout=10_000)
    assert tab.actor.name == "qc-otto" and tab.actor.role == Role.QC
    assert [r[1:5] for r in reviews(qc)[len(old):]] == [("qc-otto", "confirm", tab.model.rows[0].final_verdict.value,
                                                          tab.model.rows[0].final_verdict.value)]
    # sign out: the station's operator again
    tab.sign_button.click()
    assert tab.actor == STATION_OPERATOR and "not signed in" in tab.user.text()


def test_an_operator_user_is_refused_with_a_message(qtbot, qc, open_tab):
    add_user(qc, "op-ole", Role.OPERATOR)
    tab = open_tab()
    before, old = snapshot(qc), reviews(qc)
    key(qtbot, tab, Qt.Key.Key_C)
    dlg = wait_dialog(qtbot, lambda: tab.login)
    qtbot.keyClicks(dlg.name, "op-ole")
    qtbot.keyClicks(dlg.password, PASSWORD)
    qtbot.keyClick(dlg.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dlg.isVisible() and tab.idle, timeout=10_000)
    assert tab.actor.role == Role.OPERATOR
    assert "may not review" in tab.error.message and "Traceback" not in tab.error.message
    assert reviews(qc) == old and snapshot(qc) == before


def test_boxes_zoom_and_image_view(qtbot, open_tab):
    tab = open_tab()
    canvas = tab.detail.canvas
    assert canvas.pixmap is not None and canvas.show_boxes
    key(qtbot, tab, Qt.Key.Key_B)
    assert not canvas.show_boxes
    key(qtbot, tab, Qt.Key.Key_B)
    key(qtbot, tab, Qt.Key.Key_Plus)
    key(qtbot, tab, Qt.Key.Key_Plus)
    assert canvas.zoom == pytest.approx(1.5625)
    centre = canvas.rect().center()
    before = canvas.pan
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(canvas, centre + QPoint(40, 25))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre + QPoint(40, 25))
    assert (canvas.pan - before).x() == pytest.approx(40) and (canvas.pan - before).y() == pytest.approx(25)
    key(qtbot, tab, Qt.Key.Key_0)
    assert canvas.zoom == 1.0 and canvas.pan.x() == 0


def test_export_for_training(qtbot, qc, open_tab, tmp_path):

    tab = open_tab()
    out = tmp_path / "datasets"
    out.mkdir()
    (out / "older-set").mkdir()  # not empty: the export goes to a new sub-folder
    tab.export_training(out)
    dlg = wait_dialog(qtbot, lambda: tab.login)  # the station's operator is asked to sign in first
    dlg.reject()
    assert not tab.jobbar.running
    tab.set_actor(signed("qc-mia", Role.QC))
    tab.export_training(out)
    assert tab.jobbar.running
    qtbot.waitUntil(lambda: not tab.jobbar.running, timeout=30_000)
    made = [p for p in out.iterdir() if p.name != "older-set"]
    assert len(made) == 1 and tab.jobbar.folder == made[0], tab.jobbar.text.text()
    assert (made[0] / "classes.txt").read_text().split() == list(qc.sql("SELECT classes FROM model_versions")[0][0]
                                                                  .strip("[]").replace('"', "").split(","))
    exported = {int(p.stem.removeprefix("insp")) for p in (made[0] / "images").iterdir()}
    reviewed = {qc.ids[q] for q in qc.reviewed_seqs}
    assert exported and exported <= reviewed  # only reviewed parts (those with a final PASS/FAIL and a box)
    assert f"Data set written to {made[0]}: {len(exported)} images" in tab.jobbar.text.text()


def test_the_windows_writes_wait_out_a_lock_and_a_save_that_fails_says_not_saved(qtbot, qc, open_tab, monkeypatch):
    """The line's writer holds the file: the first administrator is still created (retried with back-off); a review
    that cannot be saved at all is 'Not saved' with one sentence, never 'Cannot load' nor SQL."""
    from pathlib import Path

    import db.writes
    from tests.db.conftest import hold_lock
    from ui.review.service import Accounts

    path = Path(qc.url.removeprefix("sqlite:///"))
    holder = hold_lock(path, 1.5)
    actor = Accounts(Database(qc.url, path.parent)).create_first_admin("first-admin", PASSWORD)
    holder.join()
    assert actor.role == Role.ADMIN

    tab = open_tab()
    tab.set_actor(actor)
    monkeypatch.setattr(db.writes, "LOCK_WAIT_S", 0.5)
    before = reviews(qc)
    holder = hold_lock(path, 4)
    key(qtbot, tab, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: tab.error.message != "", timeout=10_000)
    holder.join()
    msg = tab.error.message
    assert msg.startswith("Not saved:") and "locked" in msg and "Cannot load" not in msg, msg
    assert "INSERT" not in msg and "[SQL" not in msg
    assert reviews(qc) == before
