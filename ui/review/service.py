"""The QC screens' side of the database: opened on first use and only ever touched on pool threads.

``Database`` holds the engine of the station's database (the one ``StationSpec.db_url`` names) and the
folder its images are stored relative to. Every method here blocks: call them through ``run_job``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from db import (
    InspectionDetail,
    InspectionFilter,
    InspectionRepo,
    InspectionRow,
    ModelRepo,
    PageCursor,
    ReviewRepo,
    RunDTO,
    RunRepo,
    UserRepo,
    open_database,
    session_factory,
)
from db.accounts import add_user, has_users, sign_in
from db.writes import write
from inspector.core.auth import Actor, Role
from inspector.core.clock import station_time
from inspector.core.types import Verdict

log = logging.getLogger(__name__)


class Database:
    """The station's database for the review and reports screens, opened (and migrated) lazily."""

    def __init__(self, url: str, image_root: Path) -> None:
        self.url = url
        self.image_root = Path(image_root)
        self._lock = threading.Lock()
        self._engine: Any = None
        self._sessions: Any = None

    def sessions(self) -> Any:
        """The session factory; the first call opens the database (pool thread only)."""
        with self._lock:
            if self._sessions is None:
                from db.plant import attach_signer

                self._engine = open_database(self.url)
                self._sessions = session_factory(self._engine)
                attach_signer(self._sessions)  # reviews signed by this station's key in a plant (issue 30)
            return self._sessions

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._sessions = None


@dataclass(frozen=True)
class Choices:
    """What the filter bar offers: the runs (newest first) and the defect classes of the known models."""

    runs: tuple[RunDTO, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Shown:
    """One inspection for the detail view: the record, its image (None if not stored) and why not."""

    detail: InspectionDetail
    image: QImage | None
    note: str = ""
    heat: QImage | None = None  # an anomaly model's stored heat map, coloured, the size of ``image`` (None: none)


def choices(db: Database, runs: int = 200) -> Choices:
    with db.sessions()() as s:
        labels: list[str] = []
        for m in ModelRepo.list(s):
            labels += [c for c in m.classes if c not in labels]
        return Choices(tuple(RunRepo.list(s, runs)), tuple(labels))


def page(db: Database, f: InspectionFilter, limit: int, after: PageCursor | None) -> list[InspectionRow]:
    with db.sessions()() as s:
        return InspectionRepo.page(s, f, limit, after)


def count(db: Database, f: InspectionFilter) -> int:
    with db.sessions()() as s:
        return InspectionRepo.count(s, f)


def load_image(db: Database, rel: str | None, station: str = "") -> tuple[QImage | None, str]:
    """The stored image (a QImage may be built off the GUI thread; a QPixmap may not)."""
    if not rel:
        return None, "No image was stored for this part."
    path = db.image_root / rel
    if not path.is_file():
        if station and not db.image_root.is_dir():  # a plant's shared root not mounted here (issue 30)
            return None, (f"The picture of this part lives on station {station}'s image folder ({rel}); the image "
                          f"root {db.image_root} cannot be reached from this PC: mount the plant's image share there "
                          "([storage] image_root).")
        where = f", judged on station {station}" if station else ""
        return None, f"The image {path}{where} is missing (removed by the size cap or moved)."
    img = QImage(str(path))
    if img.isNull():
        return None, f"The image {path} cannot be read."
    return img, ""


def show(db: Database, inspection_id: int, with_image: bool = True) -> Shown:
    with db.sessions()() as s:
        detail = InspectionRepo.get(s, inspection_id)
    if detail is None:
        raise LookupError(f"inspection {inspection_id} no longer exists")
    if not with_image:
        return Shown(detail, None)
    image, note = load_image(db, detail.row.image_path, detail.run.station)
    heat = load_heat(db, detail.heatmap_path, image)
    return Shown(detail, image, note, heat)


def load_heat(db: Database, rel: str | None, image: QImage | None) -> QImage | None:
    """The heat map the record names (``InspectionDetail.heatmap_path``) as a coloured overlay of the picture's
    size; None when the part has none (a detector judged it) or it cannot be read."""
    if not rel or image is None:
        return None
    path = db.image_root / rel
    if not path.is_file():
        log.warning("the heat map %s of this part is missing", path)
        return None
    import cv2
    import numpy as np

    from ui.bridge import heat_qimage

    a8 = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_GRAYSCALE)
    if a8 is None:
        return None
    return heat_qimage(a8, image.width(), image.height())


def review(db: Database, inspection_id: int, actor: Actor, action: str, new_verdict: Verdict | None = None,
           reason: str = "", detail: dict[str, Any] | None = None) -> InspectionDetail:
    """Append one review (the repository checks the actor's role) and return the inspection as it now reads."""
    sessions = db.sessions()
    write(sessions, lambda s: ReviewRepo.add(s, inspection_id, actor, action, new_verdict, reason, detail),
          "Saving the review")
    with sessions() as s:
        found = InspectionRepo.get(s, inspection_id)
    assert found is not None  # it was just reviewed
    return found


def sign_out(db: Database, actor: Actor) -> bool:
    """End ``actor``'s sessions in the database (issue 24): a token kept from before no longer counts."""
    return write(db.sessions(), lambda s: UserRepo.sign_out(s, actor), "Signing out")


def undo(db: Database, inspection_id: int, actor: Actor) -> InspectionDetail:
    """Take back ``actor``'s last review of the inspection with a new record; the inspection as it now reads."""
    sessions = db.sessions()
    write(sessions, lambda s: ReviewRepo.undo_last(s, inspection_id, actor), "Undoing the review")
    with sessions() as s:
        found = InspectionRepo.get(s, inspection_id)
    assert found is not None
    return found


class Accounts:
    """Signing in for the QC screens (blocking: scrypt and a database write)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.recovery_code: str | None = None

    def has_users(self) -> bool:
        with self.db.sessions()() as s:
            return has_users(s)

    def sign_in(self, name: str, password: str) -> Actor:
        return sign_in(self.db.sessions(), name.strip(), password)

    def create_first_admin(self, name: str, password: str) -> Actor:
        """Create the first user (an admin, as the rules require) and sign them in; ``recovery_code`` then holds
        their one-time recovery code, to be shown once."""
        _, self.recovery_code = add_user(self.db.sessions(), None, name.strip(), Role.ADMIN, password,
                                         "Creating the first administrator")
        return self.sign_in(name, password)


def local_text(t: dt.datetime | None, seconds: bool = True) -> str:
    """A stored (UTC) time in the station's local time, for the screen."""
    if t is None:
        return "–"
    return station_time(t, seconds)
