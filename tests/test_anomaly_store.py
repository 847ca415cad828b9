"""An anomaly model's heat map on disk: written beside the picture (8-bit PNG, same name rules) before the row,
removed with it (failed write, size cap), never taken for an orphan while its picture is named.

Generated pictures only: nothing from ``../shared`` is needed.
"""

from __future__ import annotations

import datetime as dt
import errno

import cv2
import numpy as np
import pytest

from db import InspectionRepo, ModelRepo, RunRepo, open_database, session_factory
from db.retention import apply_retention
from inspector.core.config import SaveImages
from inspector.core.errors import StorageError
from inspector.core.heatmaps import heat_path, overlay_bgra, picture_of, to_8bit
from inspector.core.images import ImageStore, orphans
from inspector.core.types import Detections, Inspection, Verdict

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def _insp(seq: int, verdict: Verdict, heat: np.ndarray | None, img: np.ndarray) -> Inspection:
    dets = Detections((), img.shape[1], img.shape[0], 1.0, "a" * 64, score=None if heat is None else 0.3,
                      heatmap=heat)
    return Inspection(seq, "test", verdict, ("r",), dets, T0 + dt.timedelta(seconds=seq), 1.0, f"f{seq}", "a" * 64,
                      img)


def _map(side: int = 32, peak: float = 0.8) -> np.ndarray:
    m = np.zeros((side, side), np.float32)
    m[4:10, 20:28] = peak
    return m


@pytest.mark.parametrize(("rel", "heat"), [
    ("images/2026-12-01/run-1/0000003_fail.jpg", "images/2026-12-01/run-1/0000003_fail.heat.png"),
    ("0000001_pass.jpg", "0000001_pass.heat.png"),
])
def test_heat_path_is_named_after_the_picture(rel, heat):
    assert heat_path(rel) == heat and picture_of(heat) == rel


@pytest.mark.parametrize("bad", [np.zeros((0, 4), np.float32), np.zeros((2, 2, 2), np.float32)])
def test_to_8bit_refuses_what_is_not_a_map(bad):
    with pytest.raises(ValueError, match="2-D heat map"):
        to_8bit(bad)


def test_overlay_is_clear_where_good_and_coloured_where_hot():
    o = overlay_bgra(_map(), 64, 64)
    assert o.shape == (64, 64, 4)
    assert o[40:, :, 3].max() == 0  # a score of 0: the part itself shows
    assert o[12, 48, 3] >= 140  # hot: about 60 % opaque


def test_store_writes_the_heat_map_beside_the_picture_as_8_bit(tmp_path):
    store = ImageStore(tmp_path, "images", SaveImages.ALL, 90, "run-1")
    img = np.full((120, 160, 3), 128, np.uint8)
    rel = store.save(_insp(3, Verdict.FAIL, _map(), img))
    assert rel is not None and rel.endswith("0000003_fail.jpg")
    heat = cv2.imread(str(tmp_path / heat_path(rel)), cv2.IMREAD_UNCHANGED)
    assert heat.dtype == np.uint8 and heat.shape == (32, 32)
    assert heat[5, 22] == 204 and heat[30, 2] == 0  # 0.8 and 0 on the 0..255 scale
    plain = store.save(_insp(4, Verdict.FAIL, None, img))  # a detector's part: no heat map
    assert plain is not None and not (tmp_path / heat_path(plain)).exists()
    assert not list(tmp_path.rglob("*.part"))
    store.delete(rel)
    assert not (tmp_path / rel).exists() and not (tmp_path / heat_path(rel)).exists()


def test_a_picture_that_cannot_be_written_leaves_no_heat_map(tmp_path, monkeypatch):
    import inspector.core.images as images

    real = images._write_durably

    def full_on_jpeg(final, buf):
        if final.suffix == ".jpg":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(final, buf)

    monkeypatch.setattr(images, "_write_durably", full_on_jpeg)
    store = ImageStore(tmp_path, "images", SaveImages.ALL, 90, "run-1")
    with pytest.raises(StorageError, match="full"):
        store.save(_insp(1, Verdict.FAIL, _map(), np.full((64, 64, 3), 90, np.uint8)))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_heat_maps_of_named_pictures_are_not_orphans_and_go_with_them_under_the_cap(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    sessions = session_factory(engine)
    store = ImageStore(tmp_path, "r-images", SaveImages.ALL, 90, "run-1")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    with sessions.begin() as s:
        m = ModelRepo.get_or_create(s, "m", "m.onnx", "a" * 64, ["anomaly"])
        run = RunRepo.start(s, "test", "{}", "default", m.id, "st", "part")
        items = [(insp, store.save(insp)) for insp in (_insp(i, Verdict.PASS, _map(), img) for i in range(6))]
        InspectionRepo.add_many(s, run.id, items)
    rels = [rel for _, rel in items]
    assert all(rel and (tmp_path / heat_path(rel)).is_file() for rel in rels)
    stray = tmp_path / "r-images" / heat_path("stray.jpg")
    stray.write_bytes(b"x")
    known = {r for r in rels if r}
    found = orphans(tmp_path / "r-images", "run-1", known, tmp_path)
    assert found == []  # each heat map's picture is named (the stray sits outside the run folders)
    one = sum((tmp_path / p).stat().st_size for p in (rels[0], heat_path(rels[0])))
    rep = apply_retention(sessions, tmp_path, "r-images", one * 3)
    assert rep.orphans_removed == 1 and not stray.exists() and rep.cap_met
    with sessions() as s:
        named = {r.image_path for r in InspectionRepo.iterate(s, None) if r.image_path}
    files = {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "r-images").rglob("*") if p.is_file()}
    assert named and files == named | {heat_path(r) for r in named}  # each picture kept with its map, no other
    engine.dispose()
