"""Data sets: the three layouts, bad data reported clearly, and the synthetic generator."""


import numpy as np
import pytest

from inspector.core.errors import DatasetError
from inspector.sources.synth import CLASSES, generate, write_dataset
from inspector.training.datasets import load_dataset, to_ultralytics
from tests.conftest import NEU_DET


def test_synth_is_deterministic_and_half_good():
    a = [(s, p.image.tobytes(), p.boxes) for s, p in generate(6, seed=11)]
    b = [(s, p.image.tobytes(), p.boxes) for s, p in generate(6, seed=11)]
    assert a == b
    c = [p.image.tobytes() for _, p in generate(6, seed=12)]
    assert c != [x[1] for x in a]
    parts = [p for _, p in generate(200, seed=3)]
    good = sum(1 for p in parts if not p.boxes)
    assert 70 <= good <= 130
    assert {b.cls for p in parts for b in p.boxes} == set(range(len(CLASSES)))


def test_synth_boxes_cover_changed_pixels():
    # the box of a defect encloses exactly where the image differs from the same part without it
    from inspector.sources.synth import render_part

    for seed in range(5):
        p = render_part(np.random.default_rng(seed), defective=True)
        for b in p.boxes:
            assert 0 <= b.x1 < b.x2 <= 320 and 0 <= b.y1 < b.y2 <= 320
            assert (b.x2 - b.x1) * (b.y2 - b.y1) >= 20


def test_synth_folder_loads_as_yolo(tmp_path):
    meta = write_dataset(tmp_path, 20, seed=1)
    ds = load_dataset(tmp_path)
    assert ds.layout == "yolo" and ds.classes == CLASSES
    assert len(ds.split(None)) == 20 and not ds.has_split_files
    n_boxes = sum(len(im.boxes) for im in ds.split("all"))
    assert n_boxes == sum(len(p["defects"]) for p in meta["parts"])
    yaml_path = to_ultralytics(ds, tmp_path / "cache")
    assert (yaml_path.parent / "labels" / "train").is_dir()
    assert to_ultralytics(ds, tmp_path / "cache") == yaml_path  # cached


@pytest.mark.parametrize("damage, fragment", [
    (lambda r: (r / "labels" / "part_1_00000.txt").unlink(), "image without label file"),
    (lambda r: (r / "labels" / "part_1_00001.txt").write_text("0 0.5 0.5\n"), "malformed label line"),
    (lambda r: (r / "labels" / "part_1_00002.txt").write_text("9 0.5 0.5 0.1 0.1\n"), "unknown class index 9"),
    (lambda r: (r / "labels" / "part_1_00002.txt").write_text("1 nan 0.5 0.1 0.1\n"), "malformed label line"),
    (lambda r: (r / "labels" / "part_1_00003.txt").write_text("0 1.5 0.5 0.2 0.1\n"), "box outside the image"),
    (lambda r: (r / "images" / "part_1_00004.jpg").write_bytes(b"junk"), "unreadable image"),
    (lambda r: (r / "classes.txt").unlink(), "needs classes.txt"),
])
def test_bad_yolo_data_is_reported(tmp_path, damage, fragment):
    write_dataset(tmp_path, 6, seed=1)
    damage(tmp_path)
    with pytest.raises(DatasetError) as e:
        load_dataset(tmp_path)
    assert fragment in str(e.value)


def _voc(tmp_path, objects, size=(200, 200)):
    import cv2

    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.full((size[1], size[0], 3), 90, np.uint8))
    objs = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    (tmp_path / "annotations" / "a.xml").write_text(
        f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>{objs}</annotation>")
    return tmp_path


def test_voc_folder(tmp_path):
    ds = load_dataset(_voc(tmp_path, [("pit", (10, 10, 50, 60)), ("crack", (0, 0, 200, 20))]))
    assert ds.layout == "voc" and ds.classes == ("crack", "pit")
    (im,) = ds.split("all")
    assert len(im.boxes) == 2


@pytest.mark.parametrize("objects, extra, fragment", [
    ([("pit", (10, 10, 250, 60))], None, "box outside the image"),
    ([("pit", (10, 10, 50, 60))], lambda r: (r / "annotations" / "a.xml").write_text("<annotation"),
     "malformed annotation"),
    ([("pit", (10, 10, 50, 60))], lambda r: (r / "classes.txt").write_text("crack\n"), "unknown class 'pit'"),
    ([("pit", (10, 10, 50, 60))], lambda r: ((r / "splits").mkdir(), (r / "splits" / "val.txt").write_text("")),
     "empty split file"),
])
def test_bad_voc_data(tmp_path, objects, extra, fragment):
    root = _voc(tmp_path, objects)
    if extra:
        extra(root)
    with pytest.raises(DatasetError, match=fragment):
        load_dataset(root)


def test_missing_dataset_is_clear(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no images/ folder"):
        load_dataset(tmp_path)


@pytest.mark.skipif(not NEU_DET.is_dir(),
                    reason="NEU-DET lives in ../shared/datasets (present in CI, not in a user's clone)")
def test_neu_det_as_it_is():
    ds = load_dataset(NEU_DET)
    assert ds.layout == "voc" and len(ds.classes) == 6
    assert len(ds.split("train")) == 1440 and len(ds.split("val")) == 360
    assert sum(len(im.boxes) for im in ds.split("all")) == 4189


# ---- issue 26: the layouts report the same problems; data check's exit says whether training would refuse ----

def test_a_voc_class_name_typo_is_named_not_added(tmp_path):
    objects = [("scratch", (10, 10, 50, 60)), ("scratch", (60, 60, 90, 90)), ("scratchh", (100, 100, 150, 150)),
               ("dent", (0, 0, 200, 20))]
    with pytest.raises(DatasetError, match="unknown class 'scratchh' \\(a typo of 'scratch'\\?\\)"):
        load_dataset(_voc(tmp_path, objects))
    problems: dict = {}
    ds = load_dataset(tmp_path, problems)
    assert ds.classes == ("dent", "scratch")
    assert list(problems) == ["unknown class 'scratchh' (a typo of 'scratch'?)"]


def _data_yaml(tmp_path):
    write_dataset(tmp_path / "set", 6, seed=1)
    (tmp_path / "set" / "data.yaml").write_text("path: .\ntrain: images\nval: images\nnames:\n"
                                                + "".join(f"  {i}: {c}\n" for i, c in enumerate(CLASSES)))
    return tmp_path / "set" / "data.yaml"


@pytest.mark.parametrize("layout", ["yolo", "data.yaml"])
def test_an_image_without_a_label_file_is_reported_in_every_layout(tmp_path, layout):
    path = _data_yaml(tmp_path)
    (tmp_path / "set" / "labels" / "part_1_00000.txt").unlink()
    with pytest.raises(DatasetError, match="image without label file: . \\(part_1_00000.jpg"):
        load_dataset(path if layout == "data.yaml" else path.parent)


@pytest.mark.parametrize("damage, code", [
    (None, 0),
    (lambda r: (r / "labels" / "part_1_00002.txt").open("a").write("7 0.5 0.5 0.2 0.2\n"), 1),
    (lambda r: (r / "labels" / "part_1_00000.txt").unlink(), 1),
])
def test_data_check_exits_1_exactly_when_training_would_refuse_the_set(tmp_path, damage, code, capsys):
    from inspector.cli import main

    path = _data_yaml(tmp_path)
    if damage:
        damage(path.parent)
    try:
        load_dataset(path)
        refused = False
    except DatasetError:
        refused = True
    assert refused == (code == 1)  # what training (which loads the set this way) would do
    assert main(["data", "check", str(path)]) == code
    out = capsys.readouterr().out
    assert ("training would refuse this data set" in out) == (code == 1)
