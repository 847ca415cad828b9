"""DbWriter: images first, rows in one transaction, and nothing left behind when either fails."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from db import DbWriter, InspectionRepo, make_engine, open_database, session_factory
from inspector.core.errors import StorageError
from inspector.core.types import Inspection, Verdict


class FileStore:
    """An image store like the engine's: temporary name, fsync, rename; the disk is full (or read-only) from
    part ``fail_at`` on. Safe from several threads at once, as the writer calls it."""

    def __init__(self, root: Path, fail_at: int | None = None, err: int = errno.ENOSPC) -> None:
        self.root = root
        self.fail_at = fail_at
        self.err = err
        self.saved = 0
        self._lock = threading.Lock()

    def save(self, insp: Inspection) -> str | None:
        if insp.image is None:
            return None
        if self.fail_at is not None and insp.seq >= self.fail_at:
            raise OSError(self.err, os.strerror(self.err))
        rel = f"2024-03-01/{insp.seq:07d}_{insp.verdict.value.lower()}.jpg"
        final = self.root / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(final.name + ".part")
        with open(tmp, "wb") as f:
            f.write(insp.image.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        with self._lock:
            self.saved += 1
        return rel

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def batch(mk, seqs=range(3), image=True) -> list[Inspection]:
    img = np.full((4, 4, 3), 7, np.uint8)
    return [mk.inspection(q, Verdict.FAIL if q % 2 else Verdict.PASS, ("dent",) * (q % 2), image=img if image else None)
            for q in seqs]


def test_writes_images_then_rows(sessions, run_id, mk, tmp_path):
    store = FileStore(tmp_path / "images")
    writer = DbWriter(sessions, run_id, store)
    ids = writer.write_batch(batch(mk))
    writer.record(mk.inspection(9, Verdict.NOT_INSPECTED))  # no image: a row without a path
    assert len(ids) == 3 and writer.write_batch([]) == []
    with sessions() as s:
        rows = InspectionRepo.rows(s, ids)
        assert InspectionRepo.image_paths(s) == set(files(store.root))
        assert InspectionRepo.last_seq(s, run_id) == 9
    assert [r.image_path for r in rows] == ["2024-03-01/0000000_pass.jpg", "2024-03-01/0000001_fail.jpg",
                                            "2024-03-01/0000002_pass.jpg"]
    assert not list(store.root.rglob("*.part"))


@pytest.mark.parametrize("case", ["unknown run (foreign key)", "negative seq (CHECK)", "closed database"])
def test_a_failed_commit_removes_the_images_it_wrote(sqlite_url, mk, tmp_path, case):
    engine = open_database(sqlite_url)
    sessions = session_factory(engine)
    run_id = mk.start_run(sessions)
    store = FileStore(tmp_path / "images")
    items = batch(mk)
    if case.startswith("unknown"):
        run_id += 100
    elif case.startswith("negative"):
        items.append(mk.inspection(-1, Verdict.PASS, image=np.zeros((2, 2, 3), np.uint8)))
    else:
        engine.dispose()  # the database went away under us: its folder deleted (a USB disk pulled)
        shutil.rmtree(Path(sqlite_url.removeprefix("sqlite:///")).parent)
    with pytest.raises(StorageError) as err:
        DbWriter(sessions, run_id, store).write_batch(items)
    assert "Saving" in str(err.value) and "inspection record" in str(err.value)
    assert store.saved >= 3, "the images were written first"
    assert files(store.root) == [], "and removed again"
    engine.dispose()


def test_a_full_disk_while_saving_images_removes_the_earlier_ones(sessions, run_id, mk, tmp_path):
    store = FileStore(tmp_path / "images", fail_at=2)
    with pytest.raises(StorageError) as err:
        DbWriter(sessions, run_id, store).write_batch(batch(mk, range(5)))
    message = str(err.value)
    assert "part 2" in message and "MB free" in message and str(store.root) in message
    assert files(store.root) == []
    with sessions() as s:
        assert InspectionRepo.page(s) == []


def test_a_read_only_image_folder(sessions, run_id, mk, tmp_path):
    store = FileStore(tmp_path / "images", fail_at=0, err=errno.EROFS)
    with pytest.raises(StorageError, match="writable image folder"):
        DbWriter(sessions, run_id, store).write_batch(batch(mk))


def test_a_locked_database(sqlite_url, mk, tmp_path):
    open_database(sqlite_url).dispose()
    engine = make_engine(sqlite_url, busy_timeout_ms=100)
    sessions = session_factory(engine)
    run_id = mk.start_run(sessions)
    store = FileStore(tmp_path / "images")
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match="locked by another program"):
            DbWriter(sessions, run_id, store).write_batch(batch(mk))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert files(store.root) == []
    assert DbWriter(sessions, run_id, store).write_batch(batch(mk)), "works again once the lock is gone"
    engine.dispose()
