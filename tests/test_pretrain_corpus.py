"""The procedural pre-training corpus: same seed same images, boxes on what was drawn, a data set the
trainer takes, written the same by one process or several."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from inspector.training import corpus as pc
from inspector.training.datasets import load_dataset


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.parent.name in ("images", "labels")}


def test_same_seed_same_image_other_seed_other_image():
    a, b = pc.render(3, 7), pc.render(3, 7)
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes and a.surface == b.surface
    assert not np.array_equal(a.image, pc.render(4, 7).image)
    assert not np.array_equal(a.image, pc.render(3, 8).image)


@pytest.mark.parametrize("size", [96, 320])
def test_boxes_lie_inside_the_image_and_cover_what_was_drawn(size):
    """Each box sits where the image differs from its defect-free twin, and nothing much differs elsewhere."""
    checked = 0
    for i in range(40):
        im = pc.render(11, i, size)
        clean = pc.render(11, i, size, with_defects=False)
        assert im.surface == clean.surface and clean.boxes == ()
        diff = np.abs(im.image.astype(np.int16) - clean.image.astype(np.int16)).max(axis=2)
        if not im.boxes:
            assert diff.max() == 0, "an image without defects must equal its twin"
            continue
        covered = np.zeros(diff.shape, bool)
        for b in im.boxes:
            assert 0 <= b.x1 < b.x2 <= size and 0 <= b.y1 < b.y2 <= size
            assert 0 <= b.cls < len(pc.CLASSES)
            inside = diff[b.y1:b.y2, b.x1:b.x2]
            assert inside.max() >= 6, f"image {i}: a {pc.CLASSES[b.cls]} box over unchanged pixels"
            # tight: the change reaches each of the box's four sides
            sides = (inside[:2], inside[-2:], inside[:, :2], inside[:, -2:])
            assert all(side.max() > 0 for side in sides), f"image {i}: a {pc.CLASSES[b.cls]} box larger than its defect"
            covered[max(0, b.y1 - 4):b.y2 + 4, max(0, b.x1 - 4):b.x2 + 4] = True
            checked += 1
        changed = diff >= 12
        outside = changed & ~covered
        # soft edges (a stain's blur, a bump's shading) may reach past the box, but only a little
        assert outside.sum() <= max(40, 0.15 * changed.sum()), f"image {i}: change outside the boxes"
    assert checked >= 30


def test_every_kind_of_defect_and_surface_turns_up():
    classes, surfaces = set(), set()
    for i in range(150):
        im = pc.render(1, i, 128)
        classes.update(b.cls for b in im.boxes)
        surfaces.add(im.surface)
    assert classes == set(range(len(pc.CLASSES)))
    assert surfaces == set(pc.SURFACES)


def test_written_corpus_loads_as_a_yolo_data_set(tmp_path):
    info = pc.write_corpus(tmp_path / "c", 30, seed=5, size=96, val_every=5, workers=1)
    root = tmp_path / "c"
    assert info["count"] == 30 and info["train"] == 24 and info["val"] == 6
    assert (root / "classes.txt").read_text().split() == list(pc.CLASSES)
    ds = load_dataset(root)
    assert ds.layout == "yolo" and ds.classes == pc.CLASSES
    assert len(ds.split("train")) == 24 and len(ds.split("val")) == 6
    assert {im.width for im in ds.split("all")} == {96}
    # labels equal what render() says, to the pixel
    for im in ds.split("all")[:10]:
        idx = int(im.path.stem.split("_")[1])
        truth = pc.render(5, idx, 96).boxes
        assert [b.cls for b in im.boxes] == [t.cls for t in truth]
        for b, t in zip(im.boxes, truth, strict=True):
            assert (round(b.x1), round(b.y1), round(b.x2), round(b.y2)) == (t.x1, t.y1, t.x2, t.y2)
    assert sum(len(im.boxes) for im in ds.split("all")) == sum(info["boxes_per_class"].values())
    spec = yaml.safe_load((root / "data.yaml").read_text())
    assert spec["names"] == dict(enumerate(pc.CLASSES))
    listed = (root / spec["train"]).read_text().split()
    assert len(listed) == 24 and all((root / p).exists() for p in listed)


def test_several_processes_write_the_same_corpus_as_one(tmp_path):
    pc.write_corpus(tmp_path / "one", 12, seed=9, size=64, workers=1)
    pc.write_corpus(tmp_path / "two", 12, seed=9, size=64, workers=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    val = [(tmp_path / d / "splits" / "val.txt").read_text() for d in ("one", "two")]
    assert val[0] == val[1] and val[0]


def test_time_budget_keeps_what_was_finished_and_never_an_empty_corpus(tmp_path):
    info = pc.write_corpus(tmp_path / "c", 400, seed=0, size=64, workers=1, time_budget_s=0)
    assert 1 <= info["count"] < 400
    ds = load_dataset(tmp_path / "c")
    assert len(ds.split("all")) == info["count"]


@pytest.mark.parametrize("kw", [{"count": 0}, {"count": 5, "size": 32}])
def test_bad_sizes_are_refused(tmp_path, kw):
    with pytest.raises(ValueError):
        pc.write_corpus(tmp_path, **kw)


def test_cli_writes_a_corpus_and_refuses_a_folder_that_holds_images(tmp_path, capsys):
    from inspector.cli import main

    out = tmp_path / "corpus"
    assert main(["corpus", "--out", str(out), "--count", "10", "--size", "64", "--workers", "1"]) == 0
    assert "wrote 10 images" in capsys.readouterr().out
    assert len(load_dataset(out).split("all")) == 10
    before = _digest(out)
    assert main(["corpus", "--out", str(out), "--count", "10", "--size", "64", "--workers", "1"]) == 2
    assert "already holds images" in capsys.readouterr().err
    assert _digest(out) == before
