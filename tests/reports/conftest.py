"""A small, fully known QC database for the report tests: real JPEGs of synthetic parts, boxes, reviews.

``qc_db`` builds it once per module (SQLite file in a temp folder). Parts are spread over three hours;
the reviews cover every case a report and the data-set export must handle.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import QC, staff

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.timezone.utc)
SHA = "cd" * 32
CLASSES = ("scratch", "dent", "stain", "crack", "chip")


@dataclass
class QcDb:
    url: str
    path: Path
    ids: dict[int, int]  # seq -> inspection id
    machine: dict[int, str]  # seq -> machine verdict
    boxes: dict[int, list[tuple[str, float]]]  # seq -> (label, confidence)
    det_ids: dict[int, list[int]] = field(default_factory=dict)  # seq -> detection ids
    reviewed_seqs: list[int] = field(default_factory=list)

    def sql(self, query: str, *args: object) -> list[tuple]:
        con = sqlite3.connect(self.path)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def final_counts(self) -> Counter[str]:
        """Final verdicts straight from SQL: the latest review's, else the machine's."""
        rows = self.sql("SELECT coalesce((SELECT r.new_verdict FROM reviews r WHERE r.inspection_id = i.id "
                        "ORDER BY r.id DESC LIMIT 1), i.verdict) AS v, count(*) FROM inspections i GROUP BY v")
        return Counter(dict(rows))


def _plan(n: int, rng: np.random.Generator) -> list[tuple[str, list[tuple[str, float]]]]:
    """(machine verdict, boxes) per part: mostly PASS, some FAIL and REVIEW, two NOT_INSPECTED."""
    out = []
    for seq in range(n):
        if seq in (7, 31):
            out.append(("NOT_INSPECTED", []))
            continue
        r = rng.random()
        if r < 0.3:
            k = 1 + int(rng.random() < 0.3)
            out.append(("FAIL", [(CLASSES[int(rng.integers(4))], round(float(rng.uniform(0.55, 0.97)), 3))
                                 for _ in range(k)]))
        elif r < 0.4:
            out.append(("REVIEW", [(CLASSES[int(rng.integers(5))], round(float(rng.uniform(0.26, 0.45)), 3))]))
        else:
            out.append(("PASS", []))
    return out


def build_qc_db(folder: Path, n: int = 48, seed: int = 11, url: str | None = None, users: bool = False) -> QcDb:
    """The database (an SQLite file in ``folder`` unless ``url`` names another), images in ``folder``.

    ``users=False`` (the default): the QC accounts that wrote the reviews and the audit trail that recorded them
    are removed afterwards and the reviews sealed as before binding (``_forget_history``), so that commands and
    the window meet a station that never had users (no sign-in; the first one creates an admin)."""
    from sqlalchemy import text

    from db import InspectionRepo, ModelRepo, ReviewRepo, RunRepo, open_database, session_factory
    from inspector.core.images import ImageStore
    from inspector.core.types import Detection, Detections, Inspection, Verdict
    from inspector.sources.synth import render_part

    rng = np.random.default_rng(seed)
    path = folder / "qc.db"
    url = url or f"sqlite:///{path}"
    engine = open_database(url)
    sessions = session_factory(engine)
    plan = _plan(n, rng)
    with sessions() as s, s.begin():
        mv = ModelRepo.get_or_create(s, "parts-test", "/models/parts-test/parts-test.pt", SHA, list(CLASSES))
        run = RunRepo.start(s, "folder:belt", "{}", "default", mv.id, "line-2", "part")
    store = ImageStore(folder, "qc-images", run_tag=f"run-{run.id}")
    items = []
    for seq, (verdict, boxes) in enumerate(plan):
        t = T0 + dt.timedelta(minutes=3.5 * seq)
        part = render_part(rng, defective=bool(boxes))
        img = part.image
        if verdict == "NOT_INSPECTED":
            insp = Inspection(seq, "folder:belt", Verdict.NOT_INSPECTED, ("camera timeout",), None, t, 0.0,
                              f"part_{seq:03d}.jpg", SHA)
            items.append((insp, None))
            continue
        dets = []
        for k, (label, conf) in enumerate(boxes):
            gt = part.boxes[k] if k < len(part.boxes) else None
            x1, y1, x2, y2 = (gt.x1, gt.y1, gt.x2, gt.y2) if gt else (100.0 + 20 * k, 100.0, 150.0 + 20 * k, 140.0)
            dets.append(Detection(CLASSES.index(label), label, conf, float(x1), float(y1), float(x2), float(y2)))
        insp = Inspection(seq, "folder:belt", Verdict(verdict), (f"{verdict.lower()} because {seq}",),
                          Detections(tuple(dets), img.shape[1], img.shape[0], 3.0, SHA), t, 12.5 + seq,
                          f"part_{seq:03d}.jpg", SHA, img)
        items.append((insp, store.save(insp)))
    with sessions() as s, s.begin():
        stored = InspectionRepo.add_many(s, run.id, items)
    ids = dict(enumerate(stored))
    db = QcDb(url, path, ids, {q: v for q, (v, _) in enumerate(plan)}, {q: b for q, (_, b) in enumerate(plan)})
    with engine.connect() as conn:
        for q, iid in ids.items():
            db.det_ids[q] = list(conn.execute(text("SELECT id FROM detections WHERE inspection_id = :i ORDER BY id"),
                                              {"i": iid}).scalars())
    fails = [q for q, v in db.machine.items() if v == "FAIL"]
    passes = [q for q, v in db.machine.items() if v == "PASS"]
    reviews_ = [q for q, v in db.machine.items() if v == "REVIEW"]
    with sessions() as s, s.begin():
        staff(s)
        # an escape: the machine passed it, QC found a dent and failed it
        ReviewRepo.add(s, ids[passes[0]], QC("qc-anna"), "missed_defect", "FAIL", "dent at the rim",
                       {"label": "dent", "x1": 40, "y1": 50, "x2": 90, "y2": 95})
        # an escape with no box drawn: "needs a box" in the data-set export
        ReviewRepo.add(s, ids[passes[1]], QC("qc-anna"), "override", "FAIL", "hairline crack under the light")
        # a false alarm: QC removes the machine's box and passes the part
        ReviewRepo.add(s, ids[fails[0]], QC("qc-ben"), "false_detection", None, "reflection",
                       {"detection_id": db.det_ids[fails[0]][0]})
        ReviewRepo.add(s, ids[fails[0]], QC("qc-ben"), "override", "PASS", "reflection, not a scratch")
        ReviewRepo.add(s, ids[fails[1]], QC("qc-ben"), "confirm", None, "")
        ReviewRepo.add(s, ids[reviews_[0]], QC("qc-ben"), "override", "FAIL", "real defect")
        if len(reviews_) > 1:
            ReviewRepo.add(s, ids[reviews_[1]], QC("qc-ben"), "override", "PASS", "within tolerance")
    if not users:
        _forget_history(sessions)
    engine.dispose()
    db.reviewed_seqs = [passes[0], passes[1], fails[0], fails[1], reviews_[0]] + reviews_[1:2]
    return db


def _forget_history(sessions) -> None:
    """Make the database one that never had users: since issue 24 a station whose users are deleted does not go
    back to "no users yet", so the trail that recorded them goes too, and the reviews keep an unbound seal (as a
    database from before binding has)."""
    from sqlalchemy import delete, select

    from db.schema import AuditAnchor, AuditEntry, DatabaseInfo, Review, User
    from db.seal import BINDING_KEY, review_fields, seal_row

    with sessions() as s, s.begin():
        for model in (User, AuditEntry, AuditAnchor):
            s.execute(delete(model))
        s.execute(delete(DatabaseInfo).where(DatabaseInfo.key == BINDING_KEY))
        for r in s.scalars(select(Review)):
            seal_row(s, review_fields, r)


@pytest.fixture(scope="module")
def qc_db(tmp_path_factory) -> QcDb:
    return build_qc_db(tmp_path_factory.mktemp("qc"))


@pytest.fixture
def fresh_qc_db(tmp_path) -> QcDb:
    """A copy for tests that change the database."""
    return build_qc_db(tmp_path, n=16, seed=4)

