"""Saving inspected frames: temporary name, flush, fsync, rename. The row naming a file comes after."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2

from inspector.core.config import SaveImages
from inspector.core.errors import StorageError
from inspector.core.heatmaps import encode_png, heat_path
from inspector.core.types import Inspection, Verdict

log = logging.getLogger(__name__)

TMP_SUFFIX = ".part"
RUN_MARK = ".inspector-run"  # in each run folder: which database's run wrote it (``ImageStore(proof=...)``)


class ImageStore:
    """Writes JPEGs as ``<subdir>/<date>/<run>/<seq>_<verdict>.jpg`` under ``base`` (and an anomaly model's heat
    map beside it as ``<seq>_<verdict>.heat.png``, 8-bit, written the same way before the JPEG).

    The returned path is relative to ``base`` (the database's folder by default), so a database and
    its images can be moved together.
    """

    def __init__(self, base: Path, subdir: str = "images", policy: SaveImages = SaveImages.ALL, quality: int = 90,
                 run_tag: str = "run", keep_pass_fraction: float = 1.0, proof: str = "") -> None:
        self.keep_pass_fraction = keep_pass_fraction
        # written once into each run folder this store makes, so that a crash clean-up deletes only files in
        # folders that its own database's run wrote (``orphans``)
        self.proof = proof
        self._marked: set[Path] = set()
        self.base = Path(base)
        self.subdir = subdir
        self.root = self.base / subdir if subdir else self.base
        self.policy = policy
        self.quality = quality
        self.run_tag = run_tag

    def wanted(self, insp: Inspection) -> bool:
        if insp.image is None or self.policy == SaveImages.NONE:
            return False
        if insp.verdict != Verdict.PASS:
            return True  # FAIL, REVIEW and NOT_INSPECTED images are always kept
        if self.policy != SaveImages.ALL:
            return False
        # an even, deterministic sample of PASS images (golden-ratio sequence over the part number)
        return self.keep_pass_fraction >= 1 or (insp.seq * 0.6180339887) % 1.0 < self.keep_pass_fraction

    def save(self, insp: Inspection) -> str | None:
        if not self.wanted(insp):
            return None
        rel = (Path(self.subdir) / insp.started_at.strftime("%Y-%m-%d") / self.run_tag
               / f"{insp.seq:07d}_{insp.verdict.value.lower()}.jpg")
        final = self.base / rel
        if insp.jpeg is not None:  # it came as a JPEG file: the same bytes, no second lossy encoding
            buf = insp.jpeg
        else:
            ok, enc = cv2.imencode(".jpg", insp.image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise StorageError(f"could not encode the image of part {insp.seq} as JPEG.")
            buf = enc.tobytes()
        heat = insp.detections.heatmap if insp.detections is not None else None
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if self.proof and final.parent not in self._marked:
                self._mark(final.parent)
            if heat is not None:  # first: a picture on disk always has its heat map beside it
                _write_durably(self.base / heat_path(rel.as_posix()), encode_png(heat))
            _write_durably(final, buf)
        except OSError as e:
            if heat is not None:
                self.delete(rel.as_posix())
            raise StorageError(storage_message(self.root, e, len(buf))) from e
        return rel.as_posix()

    def _mark(self, folder: Path) -> None:
        """The run folder's mark; a folder without one (the mark could not be written) is never cleaned up."""
        mark = folder / RUN_MARK
        try:
            if not mark.exists():
                mark.write_text(self.proof, encoding="utf-8")
            self._marked.add(folder)
        except OSError as e:
            log.warning("could not mark the run folder %s (%s): a crash clean-up will leave it alone", folder, e)
            try:
                mark.unlink(missing_ok=True)
            except OSError:
                pass

    def delete(self, rel: str) -> None:
        """Remove a stored picture and its heat map, if any."""
        for name in (rel, heat_path(rel)):
            try:
                (self.base / name).unlink(missing_ok=True)
            except OSError:
                log.warning("could not remove %s", name)


def _write_durably(final: Path, buf: bytes) -> None:
    """Temporary name, write, flush, fsync, rename; the temporary file is gone when it fails."""
    tmp = final.with_name(final.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(buf)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def save_png(img, path: Path | str) -> Path:
    """Write a picture as a PNG file (a report or gallery); StorageError in one sentence when it cannot."""
    path = Path(path)
    try:
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise OSError(f"cannot encode {path.name}")
        path.write_bytes(buf.tobytes())
    except OSError as e:
        raise StorageError(f"cannot write {path}: {getattr(e, 'strerror', None) or e}.") from e
    return path


def storage_message(root: Path, e: OSError, needed: int = 0) -> str:
    import errno
    import shutil

    try:
        free = shutil.disk_usage(root if root.exists() else root.parent).free
    except OSError:
        free = -1
    if e.errno == errno.ENOSPC:
        return (f"the disk holding {root} is full ({free / 1e6:.1f} MB free): free at least "
                f"{max(needed, 50_000_000) / 1e6:.0f} MB and start again.")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write to {root}: the folder is read-only or not allowed for this user."
    return f"cannot write to {root}: {e.strerror or e}."


def orphans(store_root: Path, run_tag: str, known: set[str], base: Path, proof: str | None = None) -> list[Path]:
    """Files of one run's folders that no row names (and unfinished temporary files). With ``proof``, only in
    folders whose mark (``RUN_MARK``) says exactly that: a folder another database's run wrote, or one with no
    mark, is never touched (logged)."""
    out = []
    if not store_root.is_dir():
        return out
    heats = {heat_path(k) for k in known}  # a known picture's heat map is not an orphan
    for day in store_root.iterdir():
        folder = day / run_tag
        if not folder.is_dir():
            continue
        if proof is not None and not proven(folder, proof):
            log.warning("not cleaning %s: nothing shows that this database's run wrote it", folder)
            continue
        for f in folder.iterdir():
            if f.name == RUN_MARK:
                continue
            rel = f.relative_to(base).as_posix()
            if f.name.endswith(TMP_SUFFIX) or (rel not in known and rel not in heats):
                out.append(f)
    return out


def proven(folder: Path, proof: str) -> bool:
    """Whether ``folder``'s mark says ``proof``."""
    try:
        return (folder / RUN_MARK).read_text(encoding="utf-8") == proof
    except (OSError, ValueError):
        return False
