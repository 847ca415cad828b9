"""The "Models" tab (QC and admin): the models this station knows with their cards, the active one marked, the
shadow challenger's agreement, and Compare, Promote, Roll back and Train.

Every database query, comparison, file read and process start runs on the pool (``ui.models.service``); the GUI
thread only draws. Training runs in its own process (``station.training_jobs``): the tab follows its progress file,
so a job started before the window closed is found again when it reopens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from inspector.core.auth import STATION_OPERATOR, Actor, Role
from inspector.core.clock import format_duration
from inspector.federated.summary import federation_lines
from inspector.training.plan import parse_duration
from station.models import KnownModel
from station.training_jobs import Job
from ui.live_view import ErrorBanner
from ui.models.plot import TrainPlot
from ui.models.service import Comparison, ModelsService, Overview
from ui.workers import CountedJobs, operator_message

log = logging.getLogger(__name__)

JOB_POLL_MS = 1000
ALLOWED = (Role.QC, Role.ADMIN)
COMPARE_ROWS = (("mAP50", "map50", "{:.3f}"), ("mAP50-95", "map50_95", "{:.3f}"),
                ("part recall", "part_recall", "{:.3f}"), ("false-reject rate", "false_reject_rate", "{:.3f}"),
                ("escapes", "escapes", "{}"), ("backend", "backend", "{}"))


def card_text(m: KnownModel) -> str:
    """The card as the tab shows it: data, base, budget, figures, who trained and promoted it."""
    c = m.card
    lines = [f"<b>{m.name}</b>{'  ·  <b>ACTIVE</b>' if m.active else ''}",
             f"SHA-256 {m.sha256}", f"File: {m.path if m.path is not None else 'not recorded'}"
             + ("" if m.exists else " (missing)"), f"Trusted: {m.trusted_by}"]
    if c is not None:
        lines += [f"Classes: {', '.join(c.classes)}", f"Data: {c.data or '?'}",
                  f"Base: {c.base or '?'}", f"Image size: {c.imgsz} px"]
        if c.time_budget_s:
            lines.append(f"Budget: {format_duration(c.time_budget_s)}")
        if c.epochs_done is not None:
            why = f", stopped by {c.stopped_by}" if c.stopped_by else ""
            lines.append(f"Epochs: {c.epochs_done} done{why}")
        if c.train_val_map50 is not None:
            m95 = c.train_val_map50_95
            lines.append(f"Val mAP50 {c.train_val_map50}" + (f", mAP50-95 {m95}" if m95 is not None else "")
                         + " (the val split picked the epoch: optimistic)")
        an = c.extra.get("anomaly") if c.task == "anomaly" else None
        if isinstance(an, dict):
            th = an.get("threshold") or {}
            frr = th.get("false_reject_quantile")
            lines.append(f"Anomaly: learnt from {an.get('learnt_from', '?')} good pictures; threshold 0.50 = "
                         + (f"{frr:.1%}" if isinstance(frr, float) else "?") + f" false rejects on "
                         f"{th.get('held_out_pictures', '?')} held-out good pictures; export parity "
                         f"{an.get('export_parity', float('nan')):.1e}")
        if c.evaluated_map50 is not None:
            n = c.evaluated_images if c.evaluated_images is not None else "?"
            lines.append(f"Evaluated: mAP50 {c.evaluated_map50:.3f} on {n} images")
        if c.date:
            lines.append(f"Trained: {c.date}")
        lines += federation_lines(c)
    else:
        lines.append("No card beside the file.")
    lines += ["<b>Promotions here</b>"] + (list(m.promoted) or ["never promoted on this station"])
    return "<br>".join(_escape(x) if not x.startswith("<b>") else x for x in lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def job_text(job: Job) -> str:
    """One line about a training job: status, epoch, best mAP50 so far, ETA (an anomaly job: its latest step)."""
    st, req = job.state, job.request
    anomaly = req.get("kind") == "anomaly"
    head = f"Training {'anomaly model ' if anomaly else ''}{Path(req.get('out', '?')).name} on " \
           f"{Path(req.get('data', '?')).name} (budget {req.get('budget', '?')}): "
    last = st.last
    where = f"epoch {last.epoch}/{last.epochs}" if last is not None else "preparing"
    if anomaly and st.notes:  # no epochs: features, memory bank, threshold, export parity, as the command says
        where = st.notes[-1]
    if st.batch is not None:  # within an epoch: batches, from the first seconds
        ep, b, n = st.batch
        of = f"/{last.epochs}" if last is not None and last.epochs else ""  # the epochs planned, once known
        where = f"epoch {ep}{of}, batch {b}/{n}"
    best = f", best mAP50 {st.best_map50:.3f}" if st.best_map50 is not None else ""
    eta = f", ETA {format_duration(st.eta_s)}" if st.eta_s and job.status == "training" else ""
    status = job.status
    if status == "done":
        r = st.result
        trusted = f"trusted by {r['trusted_by']}" if r.get("trusted_by") else "not trusted yet"
        return head + f"done ({r.get('stopped_by') or 'finished'}){best}; {trusted}."
    if status == "failed":
        return head + f"failed: {st.error}"
    if status == "ended":
        return head + f"the training process ended without finishing ({where}); see {job.folder / 'train.log'}."
    return head + f"{status}, {where}{best}{eta}"


def _product_label(product: str) -> str:
    return f"Product {product} (all its stations)"


TRAIN_KINDS = {"detector: boxes of labelled defect classes": "detect",
               "anomaly: learn good from good parts alone": "anomaly"}


class ModelsTab(QWidget):
    access_changed = Signal(bool)  # a QC or admin is signed in: the window shows the tab

    def __init__(self, service: ModelsService, pool: QThreadPool | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.pool = pool or QThreadPool.globalInstance()
        self._jobs = CountedJobs(self.pool)
        self._actor: Actor = STATION_OPERATOR
        self.overview: Overview | None = None
        self.job: Job | None = None
        self.comparison: Comparison | None = None
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(JOB_POLL_MS)
        self._timer.timeout.connect(self._poll_job)
        self._trusting = False
        self._show_access()

    # building --------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.error = ErrorBanner()
        self.locked = QLabel("The Models tab is for QC and admin users: sign in on the Review tab.")
        self.locked.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.shadow = QLabel("Shadow: none configured")
        self.shadow.setWordWrap(True)
        self.models_table = QTableWidget(0, 5)
        self.models_table.setHorizontalHeaderLabels(["", "Model", "SHA-256", "Trusted", "Task"])
        self.models_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.models_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.models_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.models_table.verticalHeader().hide()
        self.models_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.models_table.itemSelectionChanged.connect(self._show_card)
        self.card = QTextBrowser()
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        # whose model Promote and Roll back change: this station's, or every station's that runs a product (issue 30)
        self.scope = QComboBox()
        self.scope.setToolTip("Promote and roll back for this station alone, or for every station that runs a "
                              "product (each takes it between two parts, after checking the file's hash)")
        self.scope.addItem(f"This station ({self.service.station})", "")
        self.scope.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.scope.currentIndexChanged.connect(lambda _=0: self.refresh())
        row.addWidget(QLabel("For:"))
        row.addWidget(self.scope)
        for name, text, slot in (("refresh", "Refresh", self.refresh), ("compare", "Compare…", self.compare),
                                 ("promote", "Promote…", self.promote), ("rollback", "Roll back…", self.rollback),
                                 ("train", "Train…", self.train)):
            b = QPushButton(text)
            b.clicked.connect(lambda _=False, slot=slot: slot())
            self.buttons[name] = b
            row.addWidget(b)
        row.addStretch(1)
        self.compare_table = QTableWidget(len(COMPARE_ROWS), 2)
        self.compare_table.setHorizontalHeaderLabels(["champion", "challenger"])
        self.compare_table.setVerticalHeaderLabels([r[0] for r in COMPARE_ROWS])
        self.compare_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.compare_note = QLabel("Compare: pick a model in the list (the challenger) and a labelled data set it "
                                   "never trained on; the active model is the champion.")
        self.compare_note.setWordWrap(True)
        self.gallery = QLabel()
        self.gallery.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidget(self.gallery)
        scroll.setWidgetResizable(True)
        self.job_label = QLabel("No training job.")
        self.job_label.setWordWrap(True)
        self.plot = TrainPlot()
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.clicked.connect(lambda: self.cancel_training())
        self.cancel_button.setEnabled(False)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.models_table, 2)
        lv.addWidget(self.card, 3)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(self.compare_note)
        rv.addWidget(self.compare_table)
        rv.addWidget(scroll, 2)
        rv.addWidget(self.job_label)
        rv.addWidget(self.plot, 1)
        rv.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignRight)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        self.content = QWidget()
        cv = QVBoxLayout(self.content)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self.status)
        cv.addWidget(self.shadow)
        cv.addLayout(row)
        cv.addWidget(split, 1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.error)
        lay.addWidget(self.locked)
        lay.addWidget(self.content, 1)

    # who acts --------------------------------------------------------------------------------------
    @property
    def actor(self) -> Actor:
        return self._actor

    @actor.setter
    def actor(self, actor: Actor | None) -> None:
        """Set by the window when someone signs in or out on the Review tab."""
        self._actor = actor or STATION_OPERATOR
        self._show_access()

    @property
    def allowed(self) -> bool:
        return self._actor != STATION_OPERATOR and self._actor.role in ALLOWED

    def _show_access(self) -> None:
        ok = self.allowed
        self.locked.setVisible(not ok)
        self.content.setVisible(ok)
        self.access_changed.emit(ok)
        if ok:
            self.refresh()
            self.find_job()
        else:
            self._timer.stop()

    @property
    def idle(self) -> bool:
        return self._jobs.in_flight == 0

    # the list ---------------------------------------------------------------------------------------
    @property
    def product(self) -> str:
        """The product whose stations Promote and Roll back act on ('' : this station alone)."""
        return self.scope.currentData() or ""

    def set_product(self, product: str) -> None:
        """Act for every station that runs ``product`` ('' : this station alone); the list is read again."""
        i = self.scope.findData(product)
        if i < 0:
            self.scope.addItem(_product_label(product), product)
            i = self.scope.count() - 1
        self.scope.setCurrentIndex(i)  # refreshes

    def refresh(self) -> None:
        if self.allowed:
            product = self.product
            self._run(lambda: self.service.overview(product), self._show_overview, "models overview")

    def _show_scopes(self, products: tuple[str, ...]) -> None:
        have = [self.scope.itemData(i) for i in range(1, self.scope.count())]
        self.scope.blockSignals(True)
        for p in products:
            if p not in have:
                self.scope.addItem(_product_label(p), p)
        self.scope.blockSignals(False)

    def _show_overview(self, ov: Overview) -> None:
        keep = self.selected()  # the model selected before, wherever it is listed now
        self._show_scopes(ov.products)
        if ov.product != self.product:  # the scope changed meanwhile: its own overview is on the way
            return
        self.overview = ov
        self.models_table.setRowCount(len(ov.models))
        for r, m in enumerate(ov.models):
            task = (m.card.task or "detect") if m.card is not None else "?"
            for c, text in enumerate(("●" if m.active else "", m.name, m.sha256[:12], m.trusted_by, task)):
                item = QTableWidgetItem(text)
                item.setToolTip(str(m.path or m.sha256))
                self.models_table.setItem(r, c, item)
            if keep is not None and m.sha256 == keep.sha256:
                self.models_table.selectRow(r)
        if self.selected() is None and ov.models:
            self.models_table.selectRow(0)
        self._show_card()  # the same row may hold a changed model (a promotion adds to its card)
        active = next((m for m in ov.models if m.active), None)
        name = active.name if active else ov.config_model.name
        if ov.product:
            self.status.setText(f"Product {ov.product}: model {name} for every station that runs it (a station's "
                                "own newer promotion wins there). Each takes it between two parts, after checking "
                                "the file's hash.")
        else:
            self.status.setText(f"Station {self.service.station}: active model {name}. Promote and roll back "
                                "take effect on a running line between two parts.")
        a = ov.agreement
        if not ov.shadow_model and not a.parts:
            self.shadow.setText("Shadow: none configured ([shadow] model in the settings).")
        elif not a.parts:
            self.shadow.setText(f"Shadow: {Path(ov.shadow_model).name}, no parts judged yet.")
        else:
            self.shadow.setText(f"Shadow ({a.model_sha256[:12]}): agrees with the active model on {a.agreed} of the "
                                f"last {a.parts} parts ({a.rate:.1%}); it would have failed {a.challenger_fails} "
                                f"passed part(s) and passed {a.challenger_passes} failed one(s).")

    def selected(self) -> KnownModel | None:
        rows = self.models_table.selectionModel().selectedRows() if self.models_table.selectionModel() else []
        if not rows or self.overview is None or rows[0].row() >= len(self.overview.models):
            return None
        return self.overview.models[rows[0].row()]

    def _show_card(self) -> None:
        m = self.selected()
        self.card.setHtml(card_text(m) if m is not None else "")

    # compare ------------------------------------------------------------------------------------------
    def compare(self, data: Path | None = None) -> None:
        challenger = self.selected()
        champion = next((m for m in self.overview.models if m.active), None) if self.overview else None
        if challenger is None or challenger.path is None:
            self._say("Pick the challenger in the list first.")
            return
        champion_path = champion.path if champion is not None and champion.path else \
            (self.overview.config_model if self.overview else None)
        if champion_path is None:
            self._say("The models are still being read: try again in a moment.")
            return
        if data is None:
            chosen = QFileDialog.getExistingDirectory(self, "Labelled parts the challenger never trained on")
            if not chosen:
                return
            data = Path(chosen)
        self.compare_note.setText(f"Comparing {champion_path.name} (champion) with {challenger.path.name} "
                                  f"(challenger) on {data}…")
        actor = self._actor
        self._run(lambda: self.service.compare(champion_path, challenger.path, data, actor), self._show_comparison,
                  "compare")

    def _show_comparison(self, cmp: Comparison) -> None:
        self.comparison = cmp
        r = cmp.result
        for row, (_, key, fmt) in enumerate(COMPARE_ROWS):
            for col, side in enumerate(("champion", "challenger")):
                v = r[side].get(key)  # None: not measured in this mode (no mAP for an anomaly model)
                self.compare_table.setItem(row, col, QTableWidgetItem("–" if v is None else fmt.format(v)))
        dis = r["disagreements"]["count"]
        agree = ""
        if r.get("agreement"):  # parts mode (an anomaly model on either side): verdicts side by side
            agree = f" (same verdict on {r['agreement']['rate']:.1%})"
            aucs = [r[s].get("image_auroc") for s in ("champion", "challenger")]
            if any(a is not None for a in aucs):
                agree += "; image AUROC " + " / ".join("–" if a is None else f"{a:.3f}" for a in aucs)
        self.compare_note.setText(f"{r['images']} parts ({r['split']}) of {r['data']}: champion "
                                  f"{Path(r['champion']['model']).name}, challenger "
                                  f"{Path(r['challenger']['model']).name}; they disagree on {dis} part(s){agree}.")
        self.gallery.setPixmap(QPixmap(str(cmp.gallery)) if cmp.gallery is not None else QPixmap())
        if cmp.gallery is None:
            self.gallery.setText("The two models agree on every part.")

    # promote and roll back -----------------------------------------------------------------------------
    def promote(self, reason: str | None = None, force: bool | None = None) -> None:
        """Promote the selected model: the last comparison against the active model is shown with the question
        for the reason; without one, only an admin may force it (asked; ``force`` for tests)."""
        m = self.selected()
        if m is None or m.path is None:
            self._say("Pick the model to promote in the list first.")
            return
        path, actor, product = m.path, self._actor, self.product
        whose = f" for product {product}" if product else ""

        def ask(compared: str) -> None:
            nonlocal force
            if not compared and force is None:
                if actor is None or actor.role != Role.ADMIN:
                    self._say(f"No comparison of {m.name} against the active model is on record: run Compare first "
                              "(or an admin forces the promotion).")
                    return
                answer = QMessageBox.question(self, f"Promote {m.name}{whose}", "No comparison against the active "
                                              "model is "
                                              "on record. Promote it anyway (forced, recorded with your reason)?")
                if answer != QMessageBox.StandardButton.Yes:
                    return
                force = True
            why = reason if reason is not None else self._ask_reason(f"Promote {m.name}{whose}", compared)
            if why is None:
                return
            self._change(path, why, "promote", bool(force), product)

        if reason is not None and force is not None:
            self._change(path, reason, "promote", force, product)
            return
        self._run(lambda: self.service.last_compare(path, product), ask, "last compare")

    def rollback(self, target: Path | None = None, reason: str | None = None) -> None:
        product = self.product
        whose = f" for product {product}" if product else ""
        if target is None:
            earlier = self.overview.earlier if self.overview else ()
            if not earlier:
                self._say(f"Nothing to roll back to: no model was promoted {whose.strip() or 'on this station'}.")
                return
            labels = [label for label, _ in earlier]
            label, ok = QInputDialog.getItem(self, "Roll back", "Back to the model:", labels, 0, False)
            if not ok:
                return
            target = dict(earlier)[label]
        reason = reason if reason is not None else self._ask_reason(f"Roll back{whose} to {Path(target).name}")
        if reason is None:
            return
        self._change(Path(target), reason, "rollback", product=product)

    def _ask_reason(self, title: str, compared: str = "") -> str | None:
        head = f"{compared[:1].upper()}{compared[1:]}.\n\n" if compared else ""
        text, ok = QInputDialog.getText(self, title, f"{head}Reason (recorded in the audit trail):")
        return text if ok else None

    def _change(self, path: Path, reason: str, action: str, force: bool = False, product: str = "") -> None:
        actor = self._actor

        def done(p) -> None:
            verb = "Promoted" if action == "promote" else "Rolled back to"
            where = (f"for product {product}: every station that runs it takes it between two parts" if product
                     else "the line takes it between two parts")
            self._say(f"{verb} {p.name} by {p.actor} {where}.", error=False)
            self.refresh()

        self._run(lambda: self.service.change(actor, path, reason, action, force, product), done, action)

    # training -----------------------------------------------------------------------------------------
    def train(self, data: Path | None | str = "ask", budget: str | None = None, name: str | None = None,
              imgsz: int | None = None, epochs: int | None = None, kind: str | None = None) -> None:
        """Start a training job: ``data`` a data set folder, None for the reviewed parts (exported first);
        ``kind`` detect or anomaly (None: asked with the data, else detect)."""
        if self.job is not None and self.job.status in ("starting", "training", "cancelling"):
            self._say("A training job is running: cancel it or wait for it to end.")
            return
        if kind is None and data != "ask":
            kind = "detect"
        if kind is None:
            choice, ok = QInputDialog.getItem(self, "Train", "Kind of model:", list(TRAIN_KINDS), 0, False)
            if not ok:
                return
            kind = TRAIN_KINDS[choice]
        if kind == "anomaly" and data == "ask":
            choice, ok = QInputDialog.getItem(self, "Train", "Learn what good looks like from:",
                                              ["the parts QC confirmed good", "a folder of pictures of good parts…"],
                                              0, False)
            if not ok:
                return
            data = None
            if choice.startswith("a folder"):
                chosen = QFileDialog.getExistingDirectory(self, "Pictures of good parts (no defect, no label)")
                if not chosen:
                    return
                data = Path(chosen)
        if data == "ask":
            choice, ok = QInputDialog.getItem(self, "Train", "Train on:", ["a labelled data set folder…",
                                                                           "the reviewed parts (export)"], 0, False)
            if not ok:
                return
            data = None
            if choice.startswith("a labelled"):
                chosen = QFileDialog.getExistingDirectory(self, "Labelled data set (YOLO, Pascal VOC, data.yaml)")
                if not chosen:
                    return
                data = Path(chosen)
        if budget is None:
            budget, ok = QInputDialog.getText(self, "Train", "Time budget (45m, 1h30m, 90s):",
                                              text="5m" if kind == "anomaly" else "45m")
            if not ok:
                return
        if name is None:
            name, ok = QInputDialog.getText(self, "Train", "Name of the new model:", text="trained")
            if not ok or not name.strip():
                return
        try:
            seconds = parse_duration(budget)
        except Exception as e:  # noqa: BLE001 - ConfigError: one sentence under the tab
            self._say(operator_message(e))
            return
        actor = self._actor
        data_path = Path(data) if data is not None else None
        self._run(lambda: self.service.start_training(actor, data_path, seconds, name.strip(), imgsz, epochs, kind),
                  self._follow, "start training")

    def find_job(self) -> None:
        """The latest job of this data folder, running or finished (after the window was closed and reopened)."""
        self._run(self.service.latest_job, lambda job: job is not None and self._follow(job), "find training job")

    def _follow(self, job: Job) -> None:
        if self.job is None or self.job.folder != job.folder:
            self._trusting = False
        self._show_job(job)
        if job.status in ("starting", "training", "cancelling"):
            self._timer.start()

    def _poll_job(self) -> None:
        if self.job is not None and self._jobs.in_flight == 0:
            self._run(lambda job=self.job: self.service.refresh_job(job), self._show_job, "training progress")

    def _show_job(self, job: Job) -> None:
        self.job = job
        self.job_label.setText(job_text(job))
        self.plot.set_points(job.state.epochs)
        self.plot.setVisible(job.request.get("kind") != "anomaly")  # no epochs to plot: one pass over good parts
        running = job.status in ("starting", "training")
        # an anomaly job has no step to stop after: it ends within its time budget
        self.cancel_button.setEnabled(running and job.request.get("kind") != "anomaly")
        if job.status not in ("starting", "training", "cancelling"):
            self._timer.stop()
            if (job.status == "done" and not job.state.result.get("trusted_by") and not self._trusting
                    and job.started_by == self._actor.name):  # only who started it trusts what it wrote
                self._trust(job)

    def _trust(self, job: Job) -> None:
        """A finished job's files trusted by the QC or admin who started it, signed in here (training output is a
        QC action); anyone else trusts them explicitly ('inspector model add')."""
        self._trusting = True
        actor = self._actor

        def done(n: int) -> None:
            self.job_label.setText(job_text(job).replace("not trusted yet", f"trusted by {actor.name}"))
            self.refresh()

        self._run(lambda: self.service.trust_output(actor, job), done, "trust the trained model")

    def cancel_training(self) -> None:
        if self.job is None:
            return
        job = self.job
        self.cancel_button.setEnabled(False)
        self._run(lambda: self.service.cancel(job), lambda _: self._poll_job(), "cancel training")

    # plumbing ------------------------------------------------------------------------------------------
    def _run(self, fn: Callable[[], Any], done: Callable[[Any], None], name: str) -> None:
        self._jobs.run(fn, done, self._failed, name)

    def _failed(self, e: BaseException) -> None:
        self._say(operator_message(e))

    def _say(self, text: str, error: bool = True) -> None:
        if error:
            self.error.show_error(text)
        else:
            self.error.clear()
            self.status.setText(text)
