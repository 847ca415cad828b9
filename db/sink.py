"""The one database writer of a run: images first (temporary name, fsync, rename), then the rows in one
transaction. Nothing is half-written: when the transaction fails, the images it would have named go again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.failures import free_mb, storage_error
from db.repositories.inspections import InspectionRepo
from inspector.errors import StorageError
from inspector.types import Inspection

log = logging.getLogger(__name__)


class ImageStore(Protocol):
    """Saves an inspection's frame durably and returns its path relative to ``root`` (None: not kept)."""

    root: Path

    def save(self, inspection: Inspection) -> str | None: ...

    def delete(self, rel: str) -> None: ...


class DbWriter:
    """Writes finished inspections of one run; used by the runner's single writer thread."""

    def __init__(self, session_factory: sessionmaker[Session], run_id: int, image_store: ImageStore | None,
                 recipe_sha256: str = "") -> None:
        self.session_factory = session_factory
        self.run_id = run_id
        self.recipe_sha256 = recipe_sha256
        self.image_store = image_store
        bind = session_factory.kw.get("bind")
        self._url = str(bind.url) if bind is not None else "(unknown)"

    def record(self, inspection: Inspection) -> None:
        """The ``Sink`` verb: one inspection, committed before returning."""
        self.write_batch([inspection])

    def write_batch(self, inspections: list[Inspection]) -> list[int]:
        """Save the images, then insert all rows in one transaction and commit; returns the new ids.

        Raises StorageError (disk full, read-only folder, locked database, ...) with nothing left behind.
        """
        if not inspections:
            return []
        paths = self._save_images(inspections)
        try:
            with self.session_factory() as session, session.begin():
                ids = InspectionRepo.add_many(session, self.run_id, list(zip(inspections, paths, strict=True)),
                                             self.recipe_sha256)
        except Exception as e:
            # The transaction did not commit (or we cannot know that it did): the images go, so that no
            # file is left without its row. An image named by a row that did commit is found at start-up.
            self._delete([p for p in paths if p])
            if isinstance(e, SQLAlchemyError):
                err = storage_error(e, self._url, f"Saving {len(inspections)} inspection record(s)")
                log.error("%s", err, exc_info=True)
                raise err from e
            raise
        return ids

    def _save_images(self, inspections: list[Inspection]) -> list[str | None]:
        store = self.image_store
        if store is None:
            return [None] * len(inspections)
        paths: list[str | None] = []
        try:
            for insp in inspections:
                paths.append(store.save(insp))
        except (OSError, StorageError) as e:
            self._delete([p for p in paths if p])
            if isinstance(e, StorageError):
                raise
            free = free_mb(Path(store.root))
            room = f" ({free:.1f} MB free there)" if free is not None else ""
            reason = getattr(e, "strerror", None) or str(e)
            raise StorageError(f"Saving the image of part {insp.seq} in {store.root} failed ({reason}){room}; "
                               "free some space or choose a writable image folder.") from e
        return paths

    def _delete(self, paths: list[str]) -> None:
        if not paths or self.image_store is None:
            return
        for rel in paths:
            try:
                self.image_store.delete(rel)
            except OSError:
                log.warning("could not remove the image %s of a failed write", rel, exc_info=True)
        log.info("removed %d image(s) of a write that did not commit", len(paths))
