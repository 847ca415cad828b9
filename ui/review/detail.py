"""The detail of one inspection: image with boxes, detections with confidences, reasons, model, reviews."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from db import InspectionDetail
from inspector.core.reviewing import UNDOES, standing
from inspector.core.types import Verdict
from ui import theme
from ui.elided import ElidedLabel
from ui.review.canvas import CanvasBox, ReviewCanvas
from ui.review.model import verdict_colour
from ui.review.service import Shown, local_text

ACTION_TEXT = {"confirm": "Confirmed", "override": "Override", "false_detection": "False detection",
               "missed_defect": "Missed defect"}


def false_ids(d: InspectionDetail) -> dict[int, str]:
    """Detection id -> reviewer, for the boxes QC marked as false detections."""
    return {int(r.detail["detection_id"]): r.reviewer for r in standing(d.counted_reviews)
            if r.action == "false_detection" and "detection_id" in r.detail}


#: how a review whose seal does not bind it to this database is listed (issue 24)
REFUSED_TEXT = "review not from this database: ignored"


def drawn_reviews(d: InspectionDetail) -> list:
    """The reviews in which QC drew a missed defect (with a usable box), oldest first."""
    return [r for r in standing(d.counted_reviews)
            if r.action == "missed_defect" and {"label", "x1", "y1", "x2", "y2"} <= set(r.detail)]


def canvas_boxes(d: InspectionDetail) -> tuple[CanvasBox, ...]:
    """The model's boxes (greyed when QC rejected them) and the boxes QC drew for missed defects."""
    rejected = false_ids(d)
    classes = d.model.classes if d.model is not None else ()
    out = [CanvasBox(b.id, b.cls, f"{n}. {b.label} {b.confidence:.2f}" + (" ✗" if b.id in rejected else ""),
                     b.x1, b.y1, b.x2, b.y2, "false" if b.id in rejected else "machine")
           for n, b in enumerate(d.detections, 1)]
    for r in drawn_reviews(d):
        label = str(r.detail["label"])
        cls = classes.index(label) if label in classes else 0
        out.append(CanvasBox(None, cls, f"+ {label} (QC)", float(r.detail["x1"]), float(r.detail["y1"]),
                             float(r.detail["x2"]), float(r.detail["y2"]), "missed"))
    return tuple(out)


def review_text(r_detail: dict, action: str, d: InspectionDetail | None = None) -> str:
    """The review's ``detail`` in words: which box was false (numbered as on the image), where QC drew one."""
    if UNDOES in r_detail:
        return f"undid review {r_detail[UNDOES]}"
    if action == "false_detection" and "detection_id" in r_detail:
        boxes = d.detections if d is not None else ()
        n = next((k for k, b in enumerate(boxes, 1) if b.id == r_detail["detection_id"]), None)
        if n is None:
            return f"box id {r_detail['detection_id']} is not a defect"
        return f"box {n} ({boxes[n - 1].label}) is not a defect"
    if action == "missed_defect" and "label" in r_detail:
        return f"{r_detail['label']} at ({r_detail.get('x1', 0):.0f}, {r_detail.get('y1', 0):.0f})"
    return ""


def _item(text: str, colour: QColor | None = None, align_right: bool = False) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if colour is not None:
        it.setForeground(colour)
    if align_right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return it


def _table(headers: tuple[str, ...], stretch: int) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(list(headers))
    t.verticalHeader().hide()
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    t.setShowGrid(False)
    t.setWordWrap(False)
    t.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    h = t.horizontalHeader()
    h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    h.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return t


def _title(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setObjectName("panelTitle")
    lab.setStyleSheet("background: transparent;")
    return lab


class VerdictChip(QLabel):
    def __init__(self) -> None:
        super().__init__()
        self.setFont(QFont(self.font().family(), 13, QFont.Weight.Bold))
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumWidth(90)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def show_verdict(self, caption: str, v: Verdict | None) -> None:
        bg, fg = theme.VERDICT_COLOURS[v]
        self.setText(f"{caption} {theme.verdict_label(v)}" if v is not None else caption)
        self.setStyleSheet(f"background: {bg}; color: {fg}; padding: 4px 8px; border-radius: 5px;")


class DetailPanel(QWidget):
    """Shows a ``Shown``; the tab drives it. ``detection_selected`` follows clicks on a box or the list."""

    detection_selected = Signal(int)
    heat_changed = Signal(bool)  # whether the part shown has a heat map (an anomaly model judged it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shown: Shown | None = None
        self.machine = VerdictChip()
        self.final = VerdictChip()
        self.arrow = QLabel("→")
        self.arrow.setFont(QFont(self.font().family(), 16))
        self.title = ElidedLabel("No inspection selected", mode=Qt.TextElideMode.ElideMiddle)
        self.title.setFont(QFont(self.font().family(), 13, QFont.Weight.Bold))
        self.subtitle = ElidedLabel("")
        self.subtitle.setStyleSheet(f"color: {theme.MUTED};")
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.title)
        names.addWidget(self.subtitle)
        chips = QHBoxLayout()
        chips.addWidget(self.machine)
        chips.addWidget(self.arrow)
        chips.addWidget(self.final)
        chips.addStretch(1)
        head = QVBoxLayout()  # the verdicts, then the part's name under them: both readable on a narrow pane
        head.setSpacing(4)
        head.addLayout(chips)
        head.addLayout(names)

        self.canvas = ReviewCanvas()
        self.canvas.box_clicked.connect(self.select_detection)

        self.detections = _table(("#", "Class", "Conf.", "Box (px)", "QC"), 3)
        self.detections.itemSelectionChanged.connect(self._list_selected)
        self.reasons = QLabel("")
        self.reasons.setWordWrap(True)
        self.reasons.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reasons.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setStyleSheet(f"color: {theme.MUTED};")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.history = QLabel("")
        self.history.setWordWrap(True)
        self.history.setTextFormat(Qt.TextFormat.RichText)
        self.history.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.history.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.history.setStyleSheet("background: transparent;")
        history_area = QScrollArea()
        history_area.setWidgetResizable(True)
        history_area.setWidget(self.history)
        history_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(_title("DETECTIONS"))
        left.addWidget(self.detections, 1)
        left.addWidget(_title("WHY"))
        left.addWidget(self.reasons)
        left.addWidget(self.info)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(_title("REVIEW HISTORY"))
        right.addWidget(history_area, 1)
        facts = QFrame()
        facts.setObjectName("panel")
        row = QHBoxLayout(facts)
        row.setContentsMargins(10, 8, 10, 8)
        row.setSpacing(14)
        row.addLayout(left, 3)
        row.addLayout(right, 2)
        facts.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.canvas)
        facts_area = QScrollArea()  # a short screen scrolls the facts instead of squeezing the image away
        facts_area.setWidgetResizable(True)
        facts_area.setFrameShape(QFrame.Shape.NoFrame)
        facts_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        facts_area.setWidget(facts)
        self.split.addWidget(facts_area)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        self.split.setChildrenCollapsible(False)
        self.split.setSizes([520, 300])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        lay.addLayout(head)
        lay.addWidget(self.split, 1)
        self.clear("Select an inspection")

    # showing ------------------------------------------------------------------------------------
    def clear(self, text: str) -> None:
        self.shown = None
        self.machine.show_verdict("", None)
        self.final.show_verdict("", None)
        self.machine.setText("–")
        self.final.setText("–")
        self.title.setText(text)
        self.subtitle.setText("")
        self.canvas.clear(text)
        self.heat_changed.emit(False)
        self.detections.setRowCount(0)
        self.history.setText("")
        self.reasons.setText("")
        self.info.setText("")

    def show_part(self, shown: Shown, keep_view: bool = False) -> None:
        """A part (``keep_view``: the same part after a review, so zoom and pan stay)."""
        same = keep_view and self.shown is not None and self.shown.detail.row.id == shown.detail.row.id
        previous = self.shown
        selected = self.selected_detection()
        self.shown = shown
        d = shown.detail
        r = d.row
        self.machine.show_verdict("Model", r.machine_verdict)
        self.final.show_verdict("Final", r.final_verdict)
        self.title.setText(theme.part_name(r.run_id, r.seq).capitalize())
        self.subtitle.setText(f"{r.frame_name} · {local_text(r.created_at)} · {d.run.station or 'station'} · "
                              f"record {r.id}")
        if same and previous is not None:
            self.canvas.set_boxes(canvas_boxes(d))
        else:
            self.canvas.set_image(shown.image, None, canvas_boxes(d), shown.note)
            self.canvas.set_heat(shown.heat)
            self.heat_changed.emit(shown.heat is not None)
        self._fill_detections(d)
        self._fill_history(d)
        self.reasons.setText("\n".join(f"• {x}" for x in r.reasons) or "–")
        model = (f"{d.model.name} · {d.model.sha256[:12]}" if d.model is not None
                 else (r.model_sha256[:12] or "unknown"))
        note = f"\n{shown.note}" if shown.note and shown.image is None else ""
        day = "".join(f" · {k} {v}" for k, v in (("product", r.product), ("lot", r.lot), ("work order", r.work_order),
                                                  ("shift", r.shift)) if v)
        self.info.setText(f"Model {model} · recipe {d.run.recipe_name or '–'} · {r.latency_ms:.0f} ms{day}{note}")
        if same and selected is not None:
            self.select_detection(selected)

    def _fill_detections(self, d: InspectionDetail) -> None:
        rejected = false_ids(d)
        drawn = drawn_reviews(d)
        t = self.detections
        t.blockSignals(True)
        t.setRowCount(len(d.detections) + len(drawn))
        for i, b in enumerate(d.detections):
            colour = theme.class_colour(b.cls) if b.id not in rejected else QColor(theme.MUTED)
            t.setItem(i, 0, _item(str(i + 1)))
            t.setItem(i, 1, _item(b.label, colour))
            t.setItem(i, 2, _item(f"{b.confidence:.2f}", None, True))
            t.setItem(i, 3, _item(f"{b.x1:.0f},{b.y1:.0f} – {b.x2:.0f},{b.y2:.0f}"))
            t.setItem(i, 4, _item("✗ false" if b.id in rejected else ""))
            if b.id in rejected:
                t.item(i, 4).setToolTip(f"Marked as a false detection by {rejected[b.id]}")
            t.item(i, 0).setData(Qt.ItemDataRole.UserRole, b.id)
        classes = list(d.model.classes) if d.model is not None else []
        for i, r in enumerate(drawn, len(d.detections)):  # the boxes QC drew, as the image shows them
            label, x = str(r.detail["label"]), {k: float(r.detail[k]) for k in ("x1", "y1", "x2", "y2")}
            colour = theme.class_colour(classes.index(label) if label in classes else 0)
            t.setItem(i, 0, _item("+"))
            t.setItem(i, 1, _item(label, colour))
            t.setItem(i, 2, _item("QC", None, True))
            t.setItem(i, 3, _item(f"{x['x1']:.0f},{x['y1']:.0f} – {x['x2']:.0f},{x['y2']:.0f}"))
            t.setItem(i, 4, _item("+ drawn"))
            t.item(i, 4).setToolTip(f"Drawn as a missed defect by {r.reviewer}")
        t.clearSelection()
        t.blockSignals(False)

    def _fill_history(self, d: InspectionDetail) -> None:
        """Newest first: when, who, what, the verdict change and the reason."""
        if not d.reviews:
            self.history.setText(f"<span style='color:{theme.MUTED}'>Not reviewed yet.</span>")
            return
        lines = []
        for r in reversed(d.reviews):
            if not r.counts:  # issue 24: listed as what it is, never as the verdict
                lines.append(f"<div style='margin-bottom:6px'><span style='color:{theme.MUTED}'>"
                             f"{escape(local_text(r.created_at, seconds=False))}</span> · <s>{escape(r.reviewer)}</s>"
                             f"<br><b>{REFUSED_TEXT}</b></div>")
                continue
            colour = verdict_colour(r.new_verdict).name()
            verdict = (theme.VERDICT_TEXT[r.new_verdict] if r.old_verdict == r.new_verdict
                       else f"{theme.VERDICT_TEXT[r.old_verdict]} → {theme.VERDICT_TEXT[r.new_verdict]}")
            why = "; ".join(x for x in (r.reason, review_text(r.detail, r.action, d)) if x)
            lines.append(f"<div style='margin-bottom:6px'><span style='color:{theme.MUTED}'>"
                         f"{escape(local_text(r.created_at, seconds=False))}</span> · <b>{escape(r.reviewer)}</b><br>"
                         f"{escape(ACTION_TEXT.get(r.action, r.action))} <b style='color:{colour}'>{verdict}</b>"
                         + (f" — {escape(why)}" if why else "") + "</div>")
        self.history.setText("".join(lines))

    # detections ---------------------------------------------------------------------------------
    def detection_ids(self) -> list[int]:
        return [b.id for b in self.shown.detail.detections] if self.shown is not None else []

    def selected_detection(self) -> int | None:
        rows = self.detections.selectionModel().selectedRows()
        ids = self.detection_ids()
        if not rows or self.shown is None or rows[0].row() >= len(ids):
            return None  # nothing, or a box QC drew (not the model's)
        return ids[rows[0].row()]

    def select_detection(self, detection_id: int | None) -> None:
        ids = self.detection_ids()
        if detection_id not in ids:
            self.detections.clearSelection()
            self.canvas.select(None)
            return
        self.detections.selectRow(ids.index(detection_id))  # -> _list_selected

    def select_nth(self, n: int) -> bool:
        """Select the n-th detection (1-based, as numbered on the image); False if there is none."""
        ids = self.detection_ids()
        if not 1 <= n <= len(ids):
            return False
        self.select_detection(ids[n - 1])
        return True

    def _list_selected(self) -> None:
        sel = self.selected_detection()
        self.canvas.select(sel)
        if sel is not None:
            self.detection_selected.emit(sel)
