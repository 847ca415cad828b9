"""Image retention under a size cap: FAIL, REVIEW and NOT_INSPECTED images and every reviewed part
are kept; the oldest unreviewed PASS images go first. A row is updated (committed) before its file
is deleted, so no row ever names a missing file; a crash in between leaves an orphan file, which
the next pass removes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.schema import InspectionRecord, Review
from db.writes import write
from inspector.core.heatmaps import heat_path
from inspector.core.images import RUN_MARK

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    bytes_before: int
    bytes_after: int
    deleted: int
    orphans_removed: int
    cap_bytes: int
    cap_met: bool


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.as_posix(): p for p in folder.rglob("*") if p.is_file()}


def apply_retention(sessions: sessionmaker[Session], base: Path, subdir: str, cap_bytes: int,
                    batch: int = 500, waiting: set[str] | frozenset[str] = frozenset()) -> RetentionReport:
    """Bring the image folder ``base/subdir`` under ``cap_bytes`` (0 = no cap) and remove orphans. Only images
    under ``subdir`` (this database's and station's own folder) count and are deleted; ``waiting`` names the
    images of records still in the outbox, which are not orphans.

    Call it from the run's single writer thread (or with no run going): a file written for a row not
    yet committed would otherwise look like an orphan.
    """
    folder = base / subdir if subdir else base
    with sessions() as s:
        named = {p for (p,) in s.execute(select(InspectionRecord.image_path)
                                          .where(InspectionRecord.image_path.is_not(None)))} | set(waiting)
    named |= {heat_path(p) for p in named}  # an anomaly model's heat map beside a named picture
    orphans = 0
    total = 0
    for p in _files(folder).values():
        if p.name == RUN_MARK:  # a run folder's mark (which database's run wrote it), not an image
            continue
        rel = p.relative_to(base).as_posix()
        if rel not in named:
            try:
                p.unlink()
                orphans += 1
            except OSError:
                log.warning("could not remove orphan image %s", p)
        else:
            total += _size(p)
    before = total
    deleted = 0
    if cap_bytes > 0:
        reviewed = exists().where(Review.inspection_id == InspectionRecord.id)
        deletable = (select(InspectionRecord.id, InspectionRecord.image_path)
                     .where(InspectionRecord.verdict == "PASS", InspectionRecord.image_path.is_not(None), ~reviewed)
                     .where(InspectionRecord.image_path.startswith(f"{subdir}/", autoescape=True) if subdir
                            else InspectionRecord.image_path.is_not(None))
                     .order_by(InspectionRecord.created_at, InspectionRecord.id))
        while total > cap_bytes:
            with sessions() as s:
                rows = s.execute(deletable.limit(batch)).all()
            if not rows:
                break
            chosen = []
            for rid, rel in rows:
                if total <= cap_bytes:
                    break
                chosen.append((rid, rel))
                total -= _size(base / rel) + _size(base / heat_path(rel))
            ids = [r for r, _ in chosen]
            write(sessions, lambda s, ids=ids: s.execute(update(InspectionRecord).where(InspectionRecord.id.in_(ids))
                                                        .values(image_path=None)), "Applying the image size cap")
            for _, rel in chosen:  # the rows no longer name them: safe to delete now
                for name in (rel, heat_path(rel)):
                    try:
                        (base / name).unlink(missing_ok=True)
                    except OSError:
                        log.warning("could not delete %s", name)
            deleted += len(chosen)
    met = cap_bytes <= 0 or total <= cap_bytes
    if not met:
        log.warning("image folder %s holds %.1f MB of images that must be kept (FAIL, REVIEW, reviewed); "
                    "the cap of %.1f MB cannot be met", folder, total / 1e6, cap_bytes / 1e6)
    return RetentionReport(before, total, deleted, orphans, cap_bytes, met)
