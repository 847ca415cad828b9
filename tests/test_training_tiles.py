"""Training at the station's scale: pictures and boxes cut into the station's tiles; the data check in camera px."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspector.detection.tiling import Tiling, tile_grid
from inspector.training.datasets import GroundTruthBox, load_dataset
from inspector.training.tiles import cut_boxes, native_tiling, tile_dataset


@pytest.mark.parametrize("box,kept", [
    ((10, 10, 40, 40), (10, 10, 40, 40)),      # inside
    ((300, 10, 330, 40), (300, 10, 320, 40)),  # two thirds inside: kept, clipped to the tile
    ((310, 10, 340, 40), None),                # a third inside: dropped, and the tile shows a stub
    ((400, 10, 440, 40), ()),                  # elsewhere
])
def test_a_box_cut_by_the_border_is_kept_where_most_of_it_is_inside(box, kept):
    boxes, stub = cut_boxes((GroundTruthBox(0, *box),), (0, 0, 320, 320))
    if kept is None:
        assert boxes == () and stub
    elif kept == ():
        assert boxes == () and not stub
    else:
        assert [(b.x1, b.y1, b.x2, b.y2) for b in boxes] == [kept] and not stub


def _yolo_folder(root, n=6, size=(1200, 1000)):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("scratch\n")
    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        im = np.clip(120 + rng.normal(0, 5, (h, w, 3)), 0, 255).astype(np.uint8)
        lines = ""
        if i % 2 == 0:  # half the pictures have one small defect
            x, y = 100 + 150 * i, 200 + 90 * i
            im[y:y + 20, x:x + 30] = 250
            lines = f"0 {(x + 15) / w:.6f} {(y + 10) / h:.6f} {30 / w:.6f} {20 / h:.6f}\n"
        cv2.imwrite(str(root / "images" / f"p{i}.png"), im)
        (root / "labels" / f"p{i}.txt").write_text(lines)
    return root


def test_training_pictures_are_cut_into_the_station_tiles_with_few_clean_ones(tmp_path):
    ds = load_dataset(_yolo_folder(tmp_path / "data"))
    tiling = Tiling(320, 64)
    tiled, stats = tile_dataset(ds, tiling, tmp_path / "cache", negatives=1.0)
    every = sum(len(tile_grid(im.width, im.height, tiling)) for s in ds.splits.values() for im in s)
    tiles = [t for s in tiled.splits.values() for t in s]
    positives = [t for t in tiles if t.boxes]
    assert positives and len(tiles) < every  # most clean tiles left out
    for st in stats.values():
        if isinstance(st, dict):
            assert st["clean_tiles_kept"] <= max(8, st["defect_tiles"])
    for t in tiles:
        im = cv2.imread(str(t.path))
        assert im.shape[:2] == (t.height, t.width) == (320, 320)
        for b in t.boxes:  # the defect is where the label says, in the tile's pixels
            patch = im[int(b.y1) + 2:int(b.y2) - 2, int(b.x1) + 2:int(b.x2) - 2]
            assert patch.mean() > 230
    again, _ = tile_dataset(ds, tiling, tmp_path / "cache", negatives=1.0)  # cut once, then reused
    assert [t.path for s in again.splits.values() for t in s] == [t.path for t in tiles]
    assert stats["tile"] == 320 and stats["overlap"] == 64


def test_an_untiled_training_on_pictures_no_larger_than_the_input_records_their_native_scale(tmp_path):
    ds = load_dataset(_yolo_folder(tmp_path / "data", n=2, size=(320, 240)))
    assert native_tiling(ds, 320)["tile"] == 320
    assert native_tiling(ds, 256) is None


def test_the_data_check_reports_box_sizes_in_camera_pixels_and_suggests_a_tile(tmp_path):
    from inspector.training.datacheck import check_dataset, format_text

    r = check_dataset(_yolo_folder(tmp_path / "data"), imgsz=320, tile=320)
    cam = r["camera_px"]
    assert cam["box_short_px"]["median"] == pytest.approx(20, abs=1)
    assert cam["shrink_untiled"] == pytest.approx(1200 / 320, rel=0.01)
    assert cam["suggested_tile"] == 320 and cam["suggested_overlap"] >= 32
    text = format_text(r)
    assert "in camera pixels" in text and "suggested: --tile 320" in text
