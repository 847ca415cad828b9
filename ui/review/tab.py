"""The "Review" tab: the inspections table (paged, filtered), the detail view and the QC's review actions.

Keyboard first: J/K (or Down/Up) next/previous, C confirm, P/F override to PASS/FAIL (with a reason),
X the selected box is a false detection, D draw a missed defect, B boxes on/off, +/-/0 zoom, 1-9 pick a
box, ] / [ older/newer page, R refresh, U (or Ctrl+Z) undo your last review of the part (a new record).
Every query and review runs on a one-thread pool,
in order; a review appends to the reviews table and never edits the inspection.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, QRect, Qt, QThreadPool, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from db import InspectionDetail, InspectionFilter, InspectionRow, PageCursor
from inspector.core.auth import STATION_OPERATOR, Actor, require
from inspector.core.errors import InspectorError, PermissionDenied
from inspector.core.types import Verdict
from ui import theme
from ui.elided import ElidedLabel
from ui.live_view import ErrorBanner
from ui.login_dialog import LoginDialog
from ui.review import service
from ui.review.detail import DetailPanel, drawn_reviews, false_ids
from ui.review.dialogs import ClassDialog, ReasonDialog
from ui.review.filters import FilterBar
from ui.review.model import COLUMNS, DEFECTS, PART, InspectionTableModel
from ui.review.progress import JobBar, ProgressRelay
from ui.review.service import Accounts, Database, Shown
from ui.workers import CountedJobs, operator_message, run_job

log = logging.getLogger(__name__)

PAGE_SIZE = 100
TABLE_WIDTH = 620  # the review table's columns, all visible
DETAIL_MIN_WIDTH = 340
HINT = "J/K next/previous · [ ] pages · 1-9 pick a box · +/- or wheel zoom · drag to pan · R refresh"
ACTION_DONE = {"confirm": "Confirmed", "override": "Overridden", "false_detection": "Marked a false detection on",
               "missed_defect": "Added a missed defect to", "undo": "Undid your last review of"}


class PageTable(QTableView):
    """Down on the last row and Up on the first ask for the next/previous page."""

    past_end = Signal(int)  # +1 or -1

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        row, n = self.currentIndex().row(), self.model().rowCount()
        if e.key() == Qt.Key.Key_Down and e.modifiers() == Qt.KeyboardModifier.NoModifier and row == n - 1:
            self.past_end.emit(1)
            return
        if e.key() == Qt.Key.Key_Up and e.modifiers() == Qt.KeyboardModifier.NoModifier and row == 0:
            self.past_end.emit(-1)
            return
        super().keyPressEvent(e)


def _button(text: str, tip: str, slot: Callable[[], Any]) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the table
    b.clicked.connect(lambda _=False: slot())
    return b


class ReviewTab(QWidget):
    actor_changed = Signal(object)  # Actor
    message = Signal(str)  # what the last action did, for the status line

    def __init__(self, db: Database, pool: QThreadPool | None = None, jobs: QThreadPool | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.accounts = Accounts(db)
        self.pool = pool or QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # reads and reviews run in the order asked
        self.jobs = jobs or QThreadPool(self)
        self.jobs.setMaxThreadCount(1)  # long exports, apart from the reads
        self.actor: Actor = STATION_OPERATOR
        self.login: LoginDialog | None = None
        self._login_pending = False
        self.dialog: Any = None  # the reason or class dialog open now
        self.recent_reasons: list[str] = []
        self._jobs = CountedJobs(self.pool)
        self.loaded = False
        self._filter = InspectionFilter()
        self._starts: list[PageCursor | None] = [None]  # the cursor each page visited so far starts after
        self.page_index = 0
        self.total: int | None = None  # rows the filter matches, once counted
        self.has_next = False
        self._page_token = 0
        self._select: str | int = "first"
        self._detail_wanted: int | None = None
        self._detail_busy = False
        self._build()
        self._shortcuts()
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.error = ErrorBanner()
        self.filters = FilterBar()
        self.filters.changed.connect(self._filters_changed)
        self.model = InspectionTableModel(self)
        t = self.table = PageTable()
        t.setModel(self.model)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setAlternatingRowColors(True)
        t.setShowGrid(False)
        t.setWordWrap(False)
        t.verticalHeader().hide()
        t.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)  # narrow screens scroll to a column
        t.verticalHeader().setDefaultSectionSize(28)
        h = t.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(DEFECTS, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(PART, QHeaderView.ResizeMode.Interactive)  # file names vary: elided, not wide
        h.resizeSection(PART, 120)
        t.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        h.setHighlightSections(False)
        t.setStyleSheet(f"QTableView {{ background: #0f1113; alternate-background-color: #15181c; border: 1px solid "
                        f"{theme.PANEL_EDGE}; selection-background-color: #2a4a7a; }}"
                        f"QHeaderView::section {{ background: {theme.PANEL}; color: {theme.MUTED}; padding: 5px; "
                        f"border: none; border-bottom: 1px solid {theme.PANEL_EDGE}; }}")
        t.selectionModel().currentRowChanged.connect(self._current_changed)
        t.past_end.connect(lambda d: self.next_row() if d > 0 else self.previous_row())

        self.newer = _button("◀ Newer", "Newer page ([)", self.previous_page)
        self.older = _button("Older ▶", "Older page (])", self.next_page)
        self.refresh_button = _button("Refresh", "Reload from the newest part (R)", self.refresh)
        self.page_label = QLabel("")
        self.page_label.setStyleSheet(f"color: {theme.MUTED};")
        paging = QHBoxLayout()
        paging.addWidget(self.newer)
        paging.addWidget(self.page_label, 1, Qt.AlignmentFlag.AlignCenter)
        paging.addWidget(self.older)
        paging.addSpacing(12)
        paging.addWidget(self.refresh_button)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.filters)
        ll.addWidget(t, 1)
        ll.addLayout(paging)

        self.detail = DetailPanel()
        self.detail.canvas.box_drawn.connect(self._box_drawn)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        split.setSizes([900, 660])  # in proportion: the table keeps its verdict columns on a 1024 px screen
        self.split = split

        self.buttons = {
            "confirm": _button("Confirm  C", "Confirm the verdict (C)", self.confirm),
            "pass": _button("Pass  P", "Override to PASS, with a reason (P)", lambda: self.override(Verdict.PASS)),
            "fail": _button("Fail  F", "Override to FAIL, with a reason (F)", lambda: self.override(Verdict.FAIL)),
            "false": _button("False detection  X", "The selected box is not a defect (X; 1-9 picks a box)",
                             self.false_detection),
            "missed": _button("Missed defect  D", "Draw a box around a defect the model missed (D)",
                              self.missed_defect),
            "boxes": _button("Boxes  B", "Show or hide the boxes (B)", self.detail.canvas.toggle_boxes),
            "undo": _button("Undo  U", "Take back your last review of this part, with a new record (U)", self.undo),
        }
        # an anomaly model's heat map over the picture (H); greyed for a part without one (a detector's)
        self.heat_box = QCheckBox("Heat map  H")
        self.heat_box.setToolTip("Draw the anomaly model's heat map over the picture (H). A detector gives none.")
        self.heat_box.setChecked(self.detail.canvas.show_heat)
        self.heat_box.setEnabled(False)
        self.heat_box.toggled.connect(self.detail.canvas.set_show_heat)
        self.detail.heat_changed.connect(self.heat_box.setEnabled)
        self.export_button = _button("Export for training…", "The reviewed parts as a YOLO data set",
                                     self.export_training)
        self.user = QLabel("")
        self.sign_button = _button("Sign in", "Sign in as a QC user", self.toggle_sign_in)
        self.status = ElidedLabel(HINT)
        self.status.setStyleSheet(f"color: {theme.MUTED};")
        bar = QFrame()
        bar.setObjectName("panel")
        rows = QVBoxLayout(bar)  # two rows: the actions, then who acts and what happened (fits 1024 px)
        rows.setContentsMargins(10, 6, 10, 6)
        rows.setSpacing(4)
        bl = QHBoxLayout()
        for key in ("confirm", "pass", "fail", "false", "missed", "boxes"):
            bl.addWidget(self.buttons[key])
        bl.addStretch(1)
        bl.addWidget(self.export_button)
        who = QHBoxLayout()
        who.addWidget(self.buttons["undo"])
        who.addWidget(self.heat_box)  # on the second row: the first fills 1024 px already
        who.addWidget(self.status, 1)
        who.addWidget(self.user)
        who.addWidget(self.sign_button)
        rows.addLayout(bl)
        rows.addLayout(who)
        self.jobbar = JobBar()

        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(8)
        lay.addWidget(self.error)
        lay.addWidget(split, 1)
        lay.addWidget(bar)
        lay.addWidget(self.jobbar)
        self._show_actor()
        self._show_paging()

    def _shortcuts(self) -> None:
        keys: list[tuple[str, Callable[[], Any]]] = [
            ("J", self.next_row), ("K", self.previous_row), ("C", self.confirm),
            ("P", lambda: self.override(Verdict.PASS)), ("F", lambda: self.override(Verdict.FAIL)),
            ("X", self.false_detection), ("D", self.missed_defect), ("B", self.detail.canvas.toggle_boxes),
            ("H", self.heat_box.toggle),
            ("+", lambda: self.detail.canvas.zoom_by(1.25)), ("=", lambda: self.detail.canvas.zoom_by(1.25)),
            ("-", lambda: self.detail.canvas.zoom_by(0.8)), ("0", self.detail.canvas.reset_view),
            ("Esc", lambda: self.detail.canvas.set_drawing(False)), ("R", self.refresh),
            ("]", self.next_page), ("[", self.previous_page), ("U", self.undo), ("Ctrl+Z", self.undo),
        ]
        keys += [(str(n), lambda n=n: self.detail.select_nth(n)) for n in range(1, 10)]
        self.shortcuts = {}
        for seq, slot in keys:
            s = QShortcut(QKeySequence(seq), self)
            s.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            s.activated.connect(slot)
            self.shortcuts[seq] = s

    # loading ------------------------------------------------------------------------------------
    def showEvent(self, e: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(e)
        if not self.loaded:
            self.loaded = True
            total = self.split.width()  # the table gets what its verdict columns need on a narrow screen
            left = max(int(total * 0.55), min(TABLE_WIDTH, total - DETAIL_MIN_WIDTH))
            self.split.setSizes([left, total - left])
            self.refresh()
            self.table.setFocus()
        elif self.page_index == 0 and self.idle:
            self.refresh()  # back from the live screen: the newest parts, the selection kept

    @property
    def idle(self) -> bool:
        """No query, review or sign-in check in flight (tests wait for it)."""
        return self._jobs.in_flight == 0 and not self._detail_busy

    def refresh(self) -> None:
        """The filter's choices and the newest page again (new parts arrive while a run goes on)."""
        self.refresh_choices()
        keep = self.current_row()
        self._starts = [None]
        self.load_page(0, keep.id if keep is not None else "first")

    def refresh_choices(self) -> None:
        """The runs and classes to filter by again (a run started on the live screen shows without Refresh)."""
        db = self.db
        self._jobs.run(lambda: service.choices(db), self.filters.set_choices, self._show_failure, "review choices")

    def _filters_changed(self) -> None:
        self._starts = [None]
        self.load_page(0, "first")

    def load_page(self, index: int, select: str | int = "first") -> None:
        try:
            self._filter = self.filters.value()
        except ValueError as e:
            self.error.show_error(str(e))
            return
        self._page_token += 1
        token, f, after, db = self._page_token, self._filter, self._starts[index], self.db
        self._select = select
        self.page_label.setText("Loading…")
        self._jobs.run(lambda: service.page(db, f, PAGE_SIZE + 1, after),
                  lambda rows: self._page_loaded(token, index, rows), self._show_failure, "review page")
        if index == 0:  # the total, once per filter (and refresh): "rows 1–100 of 6,508"
            self.total = None
            self._jobs.run(lambda: service.count(db, f), lambda n: self._counted(token, n), self._show_failure,
                           "review count")

    def _counted(self, token: int, n: int) -> None:
        if token == self._page_token:
            self.total = n
            self._show_paging()

    def _page_loaded(self, token: int, index: int, rows: list[InspectionRow]) -> None:
        if token != self._page_token:
            return  # a newer request (filter change, next page) is on its way
        if self.error.message.startswith("Cannot load"):
            self.error.clear()
        self.page_index = index
        del self._starts[index + 1:]
        self.has_next = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        if self.has_next:
            self._starts.append(rows[-1].cursor)
        self.model.set_rows(rows)
        self._show_paging()
        if not rows:
            self.detail.clear("No inspection matches the filters" if index == 0 else "No more inspections")
            return
        select = self._select
        i = len(rows) - 1 if select == "last" else 0
        if isinstance(select, int) and not isinstance(select, bool):
            i = self.model.index_of(select) or 0
        self.select_row(i)

    def _show_paging(self) -> None:
        n = self.model.rowCount()
        first = self.page_index * PAGE_SIZE
        of = f" of {self.total:,}" if self.total is not None else ""
        self.page_label.setText(f"Page {self.page_index + 1} · rows {first + 1:,}–{first + n:,}{of}" if n
                                else f"Page {self.page_index + 1} · no rows")
        self.newer.setEnabled(self.page_index > 0)
        self.older.setEnabled(self.has_next)

    def next_page(self, select: str = "first") -> None:
        if self.has_next:
            self.load_page(self.page_index + 1, select)

    def previous_page(self, select: str = "first") -> None:
        if self.page_index > 0:
            self.load_page(self.page_index - 1, select)

    # rows and the detail ------------------------------------------------------------------------
    def current_row(self) -> InspectionRow | None:
        return self.model.row_at(self.table.currentIndex().row())

    def select_row(self, i: int) -> None:
        idx = self.model.index(i, 0)
        self.table.setCurrentIndex(idx)
        self.table.scrollTo(idx)

    def next_row(self) -> None:
        i = self.table.currentIndex().row()
        if i + 1 < self.model.rowCount():
            self.select_row(i + 1)
        elif self.has_next:
            self.next_page("first")

    def previous_row(self) -> None:
        i = self.table.currentIndex().row()
        if i > 0:
            self.select_row(i - 1)
        elif self.page_index > 0:
            self.previous_page("last")

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.row_at(current.row())
        if row is not None:
            self._want_detail(row.id)

    def _want_detail(self, inspection_id: int) -> None:
        """Load one detail at a time; while one loads, only the latest wish waits (fast J/K skips the rest)."""
        self._detail_wanted = inspection_id
        if self._detail_busy:
            return
        self._detail_busy = True
        db = self.db
        run_job(self.pool, lambda: service.show(db, inspection_id), self._detail_loaded, self._detail_failed,
                "review detail")

    def _detail_loaded(self, shown: Shown) -> None:
        self._detail_busy = False
        self.model.replace_row(shown.detail.row)  # someone may have reviewed it meanwhile
        if self._detail_wanted == shown.detail.row.id:
            self.detail.show_part(shown)
        elif self._detail_wanted is not None:
            self._want_detail(self._detail_wanted)

    def _detail_failed(self, e: BaseException) -> None:
        self._detail_busy = False
        self._show_failure(e)
        wanted, self._detail_wanted = self._detail_wanted, None
        if wanted is not None and (self.detail.shown is None or self.detail.shown.detail.row.id != wanted):
            self.detail.clear("This inspection cannot be shown")

    def shown_current(self) -> InspectionDetail | None:
        """The detail on screen, if it is the selected row's (not while another loads)."""
        row, shown = self.current_row(), self.detail.shown
        if row is None or shown is None or shown.detail.row.id != row.id:
            return None
        return shown.detail

    # who acts -----------------------------------------------------------------------------------
    def _show_actor(self) -> None:
        if self.actor == STATION_OPERATOR:
            self.user.setText("Station operator · not signed in")
            self.user.setStyleSheet(f"color: {theme.MUTED};")
            self.sign_button.setText("Sign in")
        else:
            self.user.setText(f"Signed in as {self.actor.name} ({self.actor.role.value})")
            self.user.setStyleSheet(f"color: {theme.TEXT};")
            self.sign_button.setText("Sign out")

    def set_actor(self, actor: Actor) -> None:
        self.actor = actor
        self._show_actor()
        self.actor_changed.emit(actor)

    def toggle_sign_in(self) -> None:
        if self.actor != STATION_OPERATOR:
            actor, db = self.actor, self.db
            self.set_actor(STATION_OPERATOR)
            self._say("Signed out.")
            self._jobs.run(lambda: service.sign_out(db, actor), lambda _ended: None, self._show_failure, "sign out")
        else:
            self.ask_login(lambda: None, "")

    def with_reviewer(self, then: Callable[[], None], why: str) -> None:
        """Run ``then`` as a signed-in user: the station's operator is asked to sign in first."""
        if self.actor != STATION_OPERATOR:
            then()
        else:
            self.ask_login(then, why)

    def ask_login(self, then: Callable[[], None], why: str) -> None:
        if self._login_pending or (self.login is not None and self.login.isVisible()):
            return
        self._login_pending = True

        def failed(e: BaseException) -> None:
            self._login_pending = False
            self._show_failure(e)

        self._jobs.run(self.accounts.has_users, lambda exists: self._open_login(not exists, then, why), failed,
                  "has users")

    def _open_login(self, first_user: bool, then: Callable[[], None], why: str) -> None:
        self._login_pending = False
        dlg = LoginDialog(self.accounts, self.pool, first_user, why, self)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.signed_in.connect(self.set_actor)
        dlg.accepted.connect(then)
        dlg.finished.connect(self._dialog_closed)
        self.login = dlg
        dlg.open()

    def _dialog_closed(self, _result: int = 0) -> None:
        """Keys go back to the table (not every window manager gives the focus back to the window)."""
        self.window().activateWindow()
        self.table.setFocus()

    # review actions -----------------------------------------------------------------------------
    def confirm(self) -> None:
        if not self._needs_part():
            return
        d = self.shown_current()
        if d is not None and d.row.final_verdict == Verdict.REVIEW:
            self._say("A REVIEW part needs a decision: P to pass it or F to fail it, with a reason.")
            return
        self.with_reviewer(lambda: self._submit("confirm"), "Confirming a verdict needs a QC user.")

    def override(self, verdict: Verdict) -> None:
        if not self._needs_part():
            return
        d = self.shown_current()
        if d is not None and d.row.final_verdict == verdict:
            self._say(f"This part is already {theme.verdict_label(verdict)}: nothing to change.")
            return
        self.with_reviewer(lambda: self._ask_reason(verdict), "Changing a verdict needs a QC user.")

    def false_detection(self) -> None:
        d = self.shown_current() if self._needs_part() else None
        if d is None:
            return
        chosen = self.detail.selected_detection()
        if chosen is None:
            open_ones = [b.id for b in d.detections if b.id not in false_ids(d)]
            if len(d.detections) == 0:
                self._say("This part has no box to reject; use D to add a missed defect.")
                return
            if len(open_ones) != 1:
                self._say("Pick the box first: 1-9 or a click on it, then X.")
                return
            chosen = open_ones[0]
        if chosen in false_ids(d):
            self._say("This box is already marked as a false detection.")
            return
        detection_id = chosen
        self.with_reviewer(lambda: self._submit("false_detection", detail={"detection_id": detection_id}),
                           "Marking a false detection needs a QC user.")

    def missed_defect(self) -> None:
        d = self.shown_current() if self._needs_part() else None
        if d is None:
            return
        if self.detail.canvas.image_size is None:
            self._say("There is no stored image to draw on.")
            return
        self.with_reviewer(lambda: self.detail.canvas.set_drawing(True), "Adding a missed defect needs a QC user.")

    def undo(self) -> None:
        """Your last review of this part is taken back by a new, appended record (nothing is edited)."""
        d = self.shown_current() if self._needs_part() else None
        if d is None:
            return
        if not d.counted_reviews:
            self._say("This part has no review to undo.")
            return
        iid = d.row.id

        def submit() -> None:
            actor, db = self.actor, self.db
            self._say("Saving…")
            self._jobs.run(lambda: service.undo(db, iid, actor), lambda found: self._reviewed("undo", found),
                           self._review_failed, "review undo")

        self.with_reviewer(submit, "Undoing a review needs the QC user who made it.")

    def _needs_part(self) -> bool:
        if self.shown_current() is None:
            self._say("Select an inspection first." if self.current_row() is None else "Loading the part…")
            return False
        return True

    def _ask_reason(self, verdict: Verdict) -> None:
        d = self.shown_current()
        if d is None:
            return
        dlg = ReasonDialog(verdict, d.row.final_verdict, self.recent_reasons, self)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        inspection_id = d.row.id
        dlg.accepted.connect(lambda: self._submit("override", verdict, dlg.text(), inspection_id=inspection_id))
        dlg.finished.connect(self._dialog_closed)
        self.dialog = dlg
        dlg.open()

    def _box_drawn(self, x1: float, y1: float, x2: float, y2: float) -> None:
        d = self.shown_current()
        if d is None:
            return
        classes = list(d.model.classes) if d.model is not None and d.model.classes else []
        for b in d.detections:
            if b.label not in classes:
                classes.append(b.label)
        classes += [c for c in self.filters_labels() if c not in classes]
        if not classes:
            self._say("The model names no classes; the box cannot be labelled.")
            return
        dlg = ClassDialog(classes, self)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        inspection_id = d.row.id

        def chosen() -> None:
            label = dlg.label()
            if label:
                self._submit("missed_defect", detail={"label": label, "x1": x1, "y1": y1, "x2": x2, "y2": y2},
                             inspection_id=inspection_id)

        dlg.accepted.connect(chosen)
        dlg.finished.connect(self._dialog_closed)
        self.dialog = dlg
        dlg.open()
        self._beside_box(dlg, x1, y1, x2, y2)

    def _beside_box(self, dlg: QWidget, x1: float, y1: float, x2: float, y2: float) -> None:
        """The class picker over the table, not over the box just drawn (the reviewer sees what they label)."""
        canvas = self.detail.canvas
        box = QRect(canvas.mapToGlobal(canvas.to_screen(x1, y1).toPoint()),
                    canvas.mapToGlobal(canvas.to_screen(x2, y2).toPoint())).normalized()
        spot = self.table.mapToGlobal(QPoint(10, 10))
        dlg.move(spot)
        if dlg.frameGeometry().intersects(box):  # a table narrower than the dialog: go below the box instead
            dlg.move(spot.x(), box.bottom() + 10)

    def filters_labels(self) -> list[str]:
        combo = self.filters.label
        return [combo.itemData(i) for i in range(1, combo.count())]

    def _submit(self, action: str, verdict: Verdict | None = None, reason: str = "",
                detail: dict[str, Any] | None = None, inspection_id: int | None = None) -> None:
        if inspection_id is None:
            d = self.shown_current()
            if d is None:
                self._say("Select an inspection first.")
                return
            inspection_id = d.row.id
        if reason and reason not in self.recent_reasons:
            self.recent_reasons.insert(0, reason)
            del self.recent_reasons[20:]
        actor, db, iid = self.actor, self.db, inspection_id
        self._say("Saving…")
        self._jobs.run(lambda: service.review(db, iid, actor, action, verdict, reason, detail),
                  lambda found: self._reviewed(action, found), self._review_failed, f"review {action}")

    def _reviewed(self, action: str, found: InspectionDetail) -> None:
        row = found.row
        self.model.replace_row(row)
        shown = self.detail.shown
        if shown is not None and shown.detail.row.id == row.id:
            self.detail.show_part(Shown(found, shown.image, shown.note), keep_view=True)
        self.error.clear()
        now = theme.verdict_label(row.final_verdict)
        said = f"{ACTION_DONE[action]} {theme.part_name(row.run_id, row.seq)}: now {now}."
        if action == "false_detection" and row.final_verdict != Verdict.PASS and found.detections and \
                len(false_ids(found)) == len(found.detections) and not drawn_reviews(found):
            said += " No box is left: P to pass the part, or D to draw the defect (the export needs one)."
        self._say(said)
        if action == "confirm" and shown is not None and shown.detail.row.id == row.id:
            self.next_row()  # C: confirmed, on to the next part

    def _review_failed(self, e: BaseException) -> None:
        self._say("")
        if isinstance(e, PermissionDenied):
            self.error.show_error(f"Not saved: {e} Sign in as a QC user to review.")
        elif isinstance(e, (ValueError, LookupError)):
            self.error.show_error(f"Not saved: {e}")
        else:
            self.error.show_error(f"Not saved: {operator_message(e)}")

    # export for training ------------------------------------------------------------------------
    def export_training(self, folder: Path | None = None) -> None:
        """The reviewed parts of the filter's period as a YOLO data set, in a new sub-folder of ``folder``."""
        if self.jobbar.running:
            return
        self.with_reviewer(lambda: self._export_to(folder), "Exporting training data needs a QC user.")

    def _export_to(self, folder: Path | None) -> None:
        try:
            require(self.actor, "export")
        except PermissionDenied as e:
            self.error.show_error(f"Not exported: {e}")
            return
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Folder for the training data set", str(Path.home()))
            if not chosen:
                return
            folder = Path(chosen)
        parent, f, db = Path(folder), self._filter, self.db
        cancel = self.jobbar.start(f"Exporting the reviewed parts to {parent}…")
        relay = ProgressRelay(self)
        relay.progress.connect(self.jobbar.set_progress)

        def work() -> tuple[Path, Any]:
            from station.reports import export_dataset

            out = parent  # a folder that holds something already gets a new, dated sub-folder
            if out.exists() and any(out.iterdir()):
                out = out / f"inspector-dataset-{dt.datetime.now():%Y%m%d-%H%M%S}"
            return out, export_dataset(db.sessions(), out, db.image_root, since=f.since, until=f.until,
                                       reviewed_only=True, progress=relay, cancel=cancel)

        def done(result: tuple[Path, Any]) -> None:
            out, summary = result
            relay.deleteLater()
            self.jobbar.finish(f"Data set written to {out}: {summary.text()}.", out)

        def failed(e: BaseException) -> None:
            relay.deleteLater()
            self.jobbar.fail(operator_message(e))

        run_job(self.jobs, work, done, failed, "export data set")

    # messages and closing -----------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.status.setText(text or HINT)
        self.status.setToolTip(text)
        if text:
            self.message.emit(text)

    def _show_failure(self, e: BaseException) -> None:
        if isinstance(e, (InspectorError, OSError)):
            self.error.show_error(operator_message(e))
        else:
            self.error.show_error(f"Cannot load the inspections: {operator_message(e)}")

    def shutdown(self) -> None:
        """Stop an export and wait for the pools, then close the database (the application is quitting)."""
        if self.jobbar.cancel_event is not None:
            self.jobbar.cancel_event.set()
        self.pool.waitForDone(10_000)
        self.jobs.waitForDone(10_000)
        self.db.close()


__all__ = ["COLUMNS", "PAGE_SIZE", "ReviewTab"]
