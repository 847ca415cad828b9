"""Tiled inference: the grid, boxes merged across tile borders, the queue kept full, the recipe's setting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspector.core.config import Config, RecipeConfig, config_from_dict
from inspector.core.errors import ConfigError, ModelError
from inspector.core.ports import Ready
from inspector.core.types import Detection, Detections, RunSetup
from inspector.detection.card import ModelCard
from inspector.detection.tiling import TiledDetector, Tiling, cut_by_tile, merge_tiles, recipe_tiling, tile_grid
from inspector.inspection.pipeline import Pipeline, TimedDetector
from inspector.inspection.rules import Recipe


class BlobDetector:
    """A scripted detector that sees every white blob of a tile as a 'scratch', cut where the tile cuts it."""

    classes = ("scratch",)
    sha256 = "blob"
    name = "blob"
    setup = RunSetup("fake")

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def detect(self, image: np.ndarray) -> Detections:
        self.sizes.append((image.shape[1], image.shape[0]))
        mask = (image[:, :, 0] > 200).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        items = tuple(Detection(0, "scratch", 0.9, float(x), float(y), float(x + w), float(y + h))
                      for x, y, w, h, _ in stats[1:n])
        return Detections(items, image.shape[1], image.shape[0], 1.0, self.sha256)


class QueueDetector(BlobDetector):
    """The same, behind a queue of ``depth`` images (an AsyncDetector); counts what is in flight at once."""

    def __init__(self, depth: int, fail_at: int | None = None) -> None:
        super().__init__()
        self.depth, self.fail_at = depth, fail_at
        self.in_flight = self.most_in_flight = self.submitted = 0

    def submit(self, image: np.ndarray):
        if self.in_flight >= self.depth:
            raise ModelError("model busy: more images in flight than the queue holds")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.submitted += 1
        fails = self.fail_at == self.submitted
        dets = self.detect(image.copy())
        owner = self

        class _Pending:
            def done(self) -> bool:
                return True

            def result(self, timeout_s=None):
                owner.in_flight -= 1
                if fails:
                    raise ModelError("model timeout: no answer within 1 s")
                return dets

        return _Pending()


def picture(w: int = 1000, h: int = 800, rects=()) -> np.ndarray:
    img = np.repeat(np.linspace(20, 150, w, dtype=np.uint8)[None, :, None], h, 0).repeat(3, 2)  # not blank
    for x1, y1, x2, y2 in rects:
        img[y1:y2, x1:x2] = 255
    return img


@pytest.mark.parametrize("w,h,size,overlap", [(2448, 2048, 320, 128), (1000, 800, 320, 64), (320, 320, 320, 0),
                                              (200, 150, 320, 64), (641, 320, 320, 0)])
def test_grid_covers_the_picture_with_the_overlap_asked(w, h, size, overlap):
    grid = tile_grid(w, h, Tiling(size, overlap))
    covered = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in grid:
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert x2 - x1 == min(size, w) and y2 - y1 == min(size, h)
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    xs = sorted({g[0] for g in grid})
    assert all(b - a <= size - overlap for a, b in zip(xs, xs[1:], strict=False))  # share the overlap


def test_the_region_of_interest_cuts_the_grid():
    roi = (0.5, 0.25, 0.75, 0.5)
    full = tile_grid(2448, 2048, Tiling(320, 128))
    cut = tile_grid(2448, 2048, Tiling(320, 128), roi)
    assert len(cut) < len(full) / 4
    x_lo, y_lo, x_hi, y_hi = 0.5 * 2448, 0.25 * 2048, 0.75 * 2448, 0.5 * 2048
    for x1, y1, x2, y2 in cut:  # no tile outside the region
        assert x2 > x_lo and x1 < x_hi and y2 > y_lo and y1 < y_hi
    covered = np.zeros((2048, 2448), bool)
    for x1, y1, x2, y2 in cut:
        covered[y1:y2, x1:x2] = True
    assert covered[int(y_lo):int(y_hi), int(x_lo):int(x_hi)].all()


@pytest.mark.parametrize("rect", [
    (300, 100, 340, 130),   # across the first vertical border (tiles 0-320 and 256-576): whole in the second
    (560, 300, 700, 330),   # longer than the overlap: whole in no tile, cut in two
    (250, 250, 330, 330),   # on a corner of four tiles
    (10, 10, 40, 40),       # inside one tile only
])
def test_an_object_cut_by_a_tile_border_is_one_box_at_its_place(rect):
    tiled = TiledDetector(BlobDetector(), Tiling(320, 64))
    out = tiled.detect(picture(rects=[rect]))
    assert (out.image_width, out.image_height) == (1000, 800)
    assert len(out) == 1, out.items
    d = out.items[0]
    # the connected component's box is exclusive of its last pixel, as the rectangle given
    assert (d.x1, d.y1, d.x2, d.y2) == pytest.approx(rect, abs=1)


def test_two_objects_near_a_border_stay_two():
    rects = [(200, 100, 230, 130), (400, 100, 430, 130)]
    out = TiledDetector(BlobDetector(), Tiling(320, 64)).detect(picture(rects=rects))
    assert sorted((round(d.x1), round(d.x2)) for d in out.items) == [(200, 230), (400, 430)]


def test_boxes_of_one_tile_are_not_merged_with_each_other():
    # two overlapping boxes from one tile: the detector's own NMS kept both, the merge keeps both
    a = Detection(0, "scratch", 0.9, 0, 0, 100, 100)
    b = Detection(0, "scratch", 0.8, 10, 10, 60, 60)
    assert len(merge_tiles([(0, a), (0, b)])) == 2
    assert merge_tiles([(0, a), (1, b)]) == (a,)
    other_class = Detection(1, "dent", 0.8, 10, 10, 60, 60)
    assert len(merge_tiles([(0, a), (1, other_class)])) == 2


def test_a_stub_is_judged_by_the_inner_borders_of_its_tile_not_by_the_picture_s_edges():
    tile = (256, 0, 576, 320)  # a tile of a 1000x800 picture: its left and bottom borders are inner ones
    assert cut_by_tile(Detection(0, "s", 0.9, 258, 50, 300, 90), tile, 1000, 800)       # at the left border
    assert cut_by_tile(Detection(0, "s", 0.9, 300, 250, 340, 318), tile, 1000, 800)     # at the bottom border
    assert not cut_by_tile(Detection(0, "s", 0.9, 300, 0, 340, 40), tile, 1000, 800)    # top: the picture's edge
    assert not cut_by_tile(Detection(0, "s", 0.9, 300, 50, 340, 90), tile, 1000, 800)   # inside
    assert not cut_by_tile(Detection(0, "s", 0.9, 900, 50, 1000, 90), (680, 0, 1000, 320), 1000, 800)


def test_a_stub_inside_the_whole_box_of_another_tile_is_dropped_not_merged_into_it():
    whole = Detection(0, "scratch", 0.8, 300, 100, 400, 200)  # whole in tile 1
    stub = Detection(0, "scratch", 0.9, 290, 95, 320, 205)    # tile 0's cut-off view, a little too wide
    # the union would widen the whole box by the stub's error; the stub is dropped instead
    assert merge_tiles([(0, stub), (1, whole)], cut=[True, False]) == (whole,)
    assert merge_tiles([(0, stub), (1, whole)]) != (whole,)  # (without the flags: the union, as before)


def test_whole_boxes_of_two_tiles_are_one_object_only_when_they_coincide():
    a = Detection(0, "scratch", 0.7, 300, 100, 400, 200)
    b = Detection(0, "scratch", 0.9, 305, 102, 402, 204)  # the same object, seen whole by the next tile
    assert merge_tiles([(0, a), (1, b)], cut=[False, False]) == (b,)
    big = Detection(0, "scratch", 0.9, 0, 0, 100, 100)
    small = Detection(0, "scratch", 0.8, 10, 10, 60, 60)  # a second object inside the first one's box
    assert len(merge_tiles([(0, big), (1, small)], cut=[False, False])) == 2


def test_stubs_of_an_object_whole_in_no_tile_still_become_one_box():
    left = Detection(0, "scratch", 0.9, 560, 300, 576, 330)
    right = Detection(0, "scratch", 0.8, 512, 300, 700, 330)
    other = Detection(0, "scratch", 0.9, 100, 100, 150, 150)
    out = merge_tiles([(1, left), (2, right), (1, other)], cut=[True, True, False])
    assert sorted((d.x1, d.x2) for d in out) == [(100, 150), (512, 700)]


def test_every_tile_is_queued_before_results_are_taken_and_the_queue_is_kept_full():
    inner = QueueDetector(depth=3)
    out = TiledDetector(inner, Tiling(320, 64)).detect(picture(rects=[(300, 100, 340, 130)]))
    assert inner.most_in_flight == 3 and inner.in_flight == 0
    assert inner.submitted == len(tile_grid(1000, 800, Tiling(320, 64)))
    assert len(out) == 1


def test_a_failed_tile_fails_the_picture_and_leaves_the_queue_empty():
    inner = QueueDetector(depth=3, fail_at=2)
    tiled = TiledDetector(inner, Tiling(320, 64))
    with pytest.raises(ModelError, match="timeout"):
        tiled.detect(picture())
    assert inner.in_flight == 0  # the next picture finds every slot free
    inner.fail_at = None
    assert len(tiled.detect(picture(rects=[(10, 10, 40, 40)]))) == 1


def test_a_tiled_pipeline_judges_a_small_defect_the_whole_picture_would_lose():
    blob = BlobDetector()
    recipe = Recipe(RecipeConfig(tile_size=320, tile_overlap=64))
    big = picture(2448, 2048, rects=[(1500, 1200, 1512, 1215)])
    tiled = Pipeline(TiledDetector(TimedDetector(blob, 5.0), Tiling(320, 64)), recipe)
    from inspector.core.types import Frame

    ins = tiled.inspect(Frame(big, 0, "t", 0.0))
    assert ins.verdict.value == "FAIL"
    (d,) = ins.detections.items
    assert (d.x1, d.y1, d.x2, d.y2) == pytest.approx((1500, 1200, 1512, 1215), abs=1)
    assert set(blob.sizes) == {(320, 320)}  # every tile at the model's scale


def test_a_region_of_interest_runs_only_its_tiles():
    blob = BlobDetector()
    TiledDetector(blob, Tiling(320, 64), roi=(0.0, 0.0, 0.25, 0.25)).detect(picture(2448, 2048))
    assert len(blob.sizes) == len(tile_grid(2448, 2048, Tiling(320, 64), (0.0, 0.0, 0.25, 0.25))) == 3 * 2


def test_without_a_queue_the_tiles_run_one_by_one():
    tiled = TiledDetector(BlobDetector(), Tiling(320, 0))
    assert isinstance(tiled.submit(picture()), Ready)
    assert tiled.input_hw is None  # the station then decodes the picture at full size


# the recipe's setting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values,error", [
    ({"tile_size": 16}, "tile_size must be 0"),
    ({"tile_size": 320, "tile_overlap": 320}, "must be smaller than tile_size"),
    ({"tile_size": "big"}, "tile_size"),
    ({"tile_size": 320, "tile_overlap": -1}, "tile_overlap"),
])
def test_bad_tile_settings_are_refused_with_the_key(values, error):
    with pytest.raises(ConfigError, match=error):
        config_from_dict({"recipe": values})


def test_tiles_per_product_and_a_recipe_without_tiles_keeps_its_hash():
    from inspector.detection.registry import recipe_sha256

    cfg = config_from_dict({"products": {"big": {"recipe": {"tile_size": "auto"}}}})
    assert cfg.products["big"].recipe.tile_size == "auto" and cfg.recipe.tile_size == 0
    before = {"name": "default", "fail_conf": 0.5, "review_conf": 0.25, "min_area_px": 0.0, "roi": None,
              "classes": {}}
    assert RecipeConfig().model_dump(mode="json") == before  # tiles off add nothing: stored hashes still match
    assert recipe_sha256(Config().recipe.model_dump(mode="json")) == recipe_sha256(before)
    assert RecipeConfig(tile_size=320, tile_overlap=128).model_dump(mode="json")["tile_overlap"] == 128


TILED_CARD = {"imgsz": 320, "tiling": {"tile": 320, "overlap": 128}}


def _card(d: dict) -> ModelCard | None:
    return ModelCard.from_dict({"name": "m", **d}) if d else None


@pytest.mark.parametrize("size,overlap,card,want", [
    (0, 0, {}, None),
    (320, 64, TILED_CARD, Tiling(320, 64)),
    ("auto", 0, TILED_CARD, Tiling(320, 128)),
    (384, 96, TILED_CARD, Tiling(384, 96)),
])
def test_recipe_tiling_on_a_model_trained_for_it(size, overlap, card, want):
    assert recipe_tiling(size, overlap, _card(card)) == want


SCALED_TILED_CARD = {**TILED_CARD, "camera_scale": {"picture_long_side_px": 2448, "box_long_px_p95": 150.5}}


@pytest.mark.parametrize("card,want", [
    # the trained tiles; their overlap raised to the largest boxes trained on (150.5 px -> 152), never lowered
    (SCALED_TILED_CARD, Tiling(320, 152)),
    ({**TILED_CARD, "camera_scale": {"picture_long_side_px": 2448, "box_long_px_p95": 40}}, Tiling(320, 128)),
    # boxes larger than half a tile: the overlap stops at half a tile
    ({"imgsz": 320, "tiling": {"tile": 320, "overlap": 0}, "camera_scale": {"box_long_px_p95": 900}}, Tiling(320, 160)),
    # trained on whole 1024-px pictures shrunk to 320: 1024-px tiles keep the scale it learnt
    ({"imgsz": 320, "camera_scale": {"picture_long_side_px": 1024, "box_long_px_p95": 60}}, Tiling(1024, 64)),
    ({"imgsz": 320, "camera_scale": {"picture_long_side_px": 1024}}, Tiling(1024, 0)),
])
def test_auto_tiles_come_from_the_card_s_tiles_pictures_and_box_sizes(card, want):
    assert recipe_tiling("auto", 0, _card(card)) == want


def test_auto_tiles_on_a_camera_picture_no_larger_than_a_tile_judge_it_whole():
    """The camera's resolution decides the grid: the same auto tiling is one tile on a small picture and a
    grid on a 5 MP one."""
    card = _card({"imgsz": 320, "camera_scale": {"picture_long_side_px": 1024, "box_long_px_p95": 60}})
    tiling = recipe_tiling("auto", 0, card)
    assert tile_grid(1000, 800, tiling) == [(0, 0, 1000, 800)]
    grid = tile_grid(2448, 2048, tiling)
    assert len(grid) == 9 and all(x2 - x1 == 1024 and y2 - y1 == 1024 for x1, y1, x2, y2 in grid)


def test_training_records_the_camera_scale_of_its_pictures_and_boxes(tmp_path):
    from inspector.training.datacheck import camera_px, camera_scale
    from inspector.training.datasets import Dataset, GroundTruthBox, LabelledImage

    ims = tuple(LabelledImage(tmp_path / f"{i}.jpg", 2448, 2048, tuple(
        GroundTruthBox(0, 10.0, 10.0, 10.0 + s, 10.0 + s / 2) for s in range(10 * i + 1, 10 * i + 11)))
        for i in range(10))
    ds = Dataset(tmp_path, "yolo", ("scratch",), {"train": ims})
    # long sides 1..100 px, short sides half of them: the same figures the data check reports
    assert camera_scale(ds) == pytest.approx({"picture_long_side_px": 2448.0, "box_short_px_p10": 5.45,
                                              "box_short_px_median": 25.25, "box_long_px_p95": 95.05})
    assert camera_px(ds, 320)["box_long_px_p95"] == 95.0 and camera_px(ds, 320)["picture_long_side_px"] == 2448
    assert camera_scale(Dataset(tmp_path, "yolo", ("scratch",), {"train": ()})) == {}


@pytest.mark.parametrize("size,card,error", [
    (320, {"imgsz": 320}, "trained on whole pictures"),
    ("auto", {}, "trained on whole pictures"),
    ("auto", {"imgsz": 320, "camera_scale": {"box_long_px_p95": 60}}, "records neither tiles nor the size"),
    (640, TILED_CARD, "trained on 320-px tiles"),
])
def test_a_tiled_recipe_on_a_model_not_trained_for_it_is_refused_in_one_sentence(size, card, error):
    with pytest.raises(ConfigError, match=error) as e:
        recipe_tiling(size, 64, _card(card), "m.onnx", "big")
    assert str(e.value).count(". ") == 0 and str(e.value).endswith(".")


def test_the_station_refuses_a_tiled_recipe_on_a_model_trained_without_tiles():
    from station.core import Station

    recipe = Recipe(RecipeConfig(tile_size=320, tile_overlap=64))
    with pytest.raises(ConfigError, match="records no tiling"):
        Station._check_classes(Config(), "", recipe, _card({"classes": ["scratch"], "imgsz": 320}), "old.onnx")
    Station._check_classes(Config(), "", recipe, _card({"classes": ["scratch"], **TILED_CARD}), "new.onnx")


def test_a_small_part_on_a_large_plain_picture_is_not_blank_when_tiled_and_a_blank_one_still_is():
    from inspector.core.types import Frame

    rng = np.random.default_rng(3)
    plain = np.clip(120 + rng.normal(0, 4, (2048, 2448, 3)), 0, 255).astype(np.uint8)
    part = plain.copy()
    part[900:1220, 1000:1320] = np.tile(np.linspace(90, 150, 320, dtype=np.uint8)[None, :, None], (320, 1, 3))
    recipe = Recipe(RecipeConfig())
    flat = Pipeline(BlobDetector(), recipe)
    tiled = Pipeline(TiledDetector(BlobDetector(), Tiling(320, 64)), recipe)
    assert "blank frame" in flat.inspect(Frame(part, 0, "t", 0.0)).reasons[0]  # the whole picture's spread is low
    assert tiled.inspect(Frame(part, 0, "t", 0.0)).verdict.value != "NOT_INSPECTED"
    assert "blank frame" in tiled.inspect(Frame(plain, 1, "t", 0.0)).reasons[0]


def test_evaluate_scores_a_tiled_recipe_on_whole_pictures(tmp_path):
    import json

    from inspector.cli.model_cmds import _tiled_for

    (tmp_path / "card.json").write_text(json.dumps({"name": "m", "imgsz": 320, "tiling": {"tile": 320, "overlap": 64}}))
    det = BlobDetector()
    det.path = tmp_path / "m.onnx"
    tiled = _tiled_for(det, RecipeConfig(tile_size="auto"))
    assert isinstance(tiled, TiledDetector) and tiled.tiling == Tiling(320, 64)
    assert _tiled_for(det, RecipeConfig()) is det
    out = tiled.detect(picture(2448, 2048, rects=[(2000, 1500, 2010, 1530)]))
    assert [(round(d.x1), round(d.y1)) for d in out.items] == [(2000, 1500)]  # boxes in the picture's pixels


def test_neu_mosaics_keep_the_splits_apart(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import NEU_DET

    if not (NEU_DET / "splits" / "train.txt").is_file():
        pytest.skip(f"NEU-DET is not here ({NEU_DET}): a clone without ../shared")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "bench" / "neu_mosaics.py"), "--out", str(tmp_path / "m"), "--limit",
                    "12", "--size", "1200x1000", "--crops", "4", "--neu", str(NEU_DET)], check=True)
    crops = json.loads((tmp_path / "m" / "crops.json").read_text())
    train = set((NEU_DET / "splits" / "train.txt").read_text().split())
    val = set((NEU_DET / "splits" / "val.txt").read_text().split())
    for name, used in crops.items():
        assert set(used) <= (train if name.startswith("train") else val), name
    from inspector.training.datasets import load_dataset

    ds = load_dataset(tmp_path / "m")
    assert {im.width for s in ds.splits.values() for im in s} == {1200}
    assert sum(len(im.boxes) for im in ds.splits["val"]) > 0


def test_compare_judges_a_tiled_recipe_on_whole_pictures_with_the_shipped_model(tmp_path):
    """``compare`` runs each model as the station would with the recipe: tile by tile, boxes in the picture's own
    pixels, scored against full-resolution labels. Real shipped model, sample parts pasted at native scale into
    1280x960 pictures, where the whole picture squeezed to 320 px would shrink every defect fourfold."""
    import json
    from pathlib import Path

    from inspector.detection.registry import shipped_models_dir
    from inspector.lifecycle.compare import compare

    root = Path(__file__).resolve().parents[1]
    truth = json.loads((root / "sample_images" / "ground_truth.json").read_text())
    model = shipped_models_dir() / "parts-v2" / "parts-v2.onnx"
    if not model.is_file():
        pytest.skip("the shipped parts-v2 ONNX export is not in this checkout")
    classes = json.loads((model.parent / "card.json").read_text())["classes"]
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("\n".join(classes) + "\n")
    rng = np.random.default_rng(0)
    picked = [n for n, v in truth["images"].items() if v["defects"]][:4] + \
             [n for n, v in truth["images"].items() if not v["defects"]][:2]
    for i, name in enumerate(picked):
        part = cv2.imread(str(root / "sample_images" / name))
        big = np.clip(rng.normal(90, 6, (960, 1280, 3)), 0, 255).astype(np.uint8)
        x0, y0 = 160 + 200 * (i % 3), 120 + 300 * (i % 2)
        big[y0:y0 + 320, x0:x0 + 320] = part
        cv2.imwrite(str(tmp_path / "images" / f"big{i}.png"), big)
        lines = []
        for d in truth["images"][name]["defects"]:
            x1, y1, x2, y2 = d["box"]
            cx, cy, w, h = (x0 + (x1 + x2) / 2) / 1280, (y0 + (y1 + y2) / 2) / 960, (x2 - x1) / 1280, (y2 - y1) / 960
            lines.append(f"{classes.index(d['class'])} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        (tmp_path / "labels" / f"big{i}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    tiled, _ = compare(model, model, tmp_path, recipe_cfg=RecipeConfig(tile_size="auto"))
    whole, _ = compare(model, model, tmp_path, recipe_cfg=RecipeConfig())
    assert tiled["champion"] == tiled["challenger"] and tiled["disagreements"]["count"] == 0
    assert tiled["champion"]["part_recall"] >= 0.75, tiled["champion"]
    assert tiled["champion"]["map50"] >= whole["champion"]["map50"] + 0.2, (tiled["champion"], whole["champion"])


def test_the_shadow_challenger_judges_tile_by_tile_where_the_recipe_tiles():
    from inspector.core.config import ModelConfig, QualityConfig
    from inspector.detection.registry import sha256_file, shipped_models_dir
    from station.shadow import ChallengerSpec, _build

    model = shipped_models_dir() / "parts-v2" / "parts-v2.onnx"
    if not model.is_file():
        pytest.skip("the shipped parts-v2 ONNX export is not in this checkout")
    spec = ChallengerSpec(ModelConfig(path=model, threads=1), sha256_file(model), RecipeConfig(tile_size="auto"),
                          QualityConfig(), 80, 10.0)
    pipe = _build(spec)
    assert isinstance(pipe.detector, TiledDetector) and pipe.detector.tiling.size == 320
    assert not isinstance(_build(ChallengerSpec(spec.model, spec.sha256, RecipeConfig(), QualityConfig(), 80,
                                                10.0)).detector, TiledDetector)
