"""Anomaly mode (#29): hot regions, the verdict, the metrics, export parity and the CLI's JSON.

The real magnetic tiles live in ../shared/datasets (present in CI, absent in a user's clone): those tests
skip with the reason; the rest run on generated pictures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.core.config import RecipeConfig
from inspector.core.types import Detections, Verdict
from inspector.detection.anomaly import hot_regions
from inspector.inspection.rules import Recipe
from inspector.training.anomaly_eval import image_auroc, pixel_aupro

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INSPECTOR_SHARED", ROOT.parent / "shared"))
TILES = SHARED / "datasets" / "magnetic-tile"
needs_tiles = pytest.mark.skipif(not (TILES / "splits" / "test.txt").is_file(),
                                 reason="the magnetic tiles live in ../shared/datasets (present in CI, not in a clone)")


def _heat(*blobs: tuple[int, int, float], side: int = 32) -> np.ndarray:
    m = np.full((side, side), 0.05, np.float32)
    for x, y, v in blobs:
        m[y:y + 2, x:x + 3] = v
    return m


@pytest.mark.parametrize("floor, n, top", [(0.25, 2, 0.83), (0.5, 1, 0.83), (0.9, 0, None)])
def test_hot_regions_box_each_region_in_picture_pixels(floor, n, top):
    heat = _heat((4, 4, 0.83), (20, 24, 0.4))
    boxes = hot_regions(heat, floor, 320, 640)
    assert len(boxes) == n
    if n:
        b = boxes[0]
        assert b.label == "anomaly" and b.confidence == pytest.approx(top)
        # cells 4..6 across, 4..5 down of a 32x32 map on a 320x640 picture
        assert (b.x1, b.y1, b.x2, b.y2) == pytest.approx((40, 80, 70, 120))


@pytest.mark.parametrize("peak, verdict, reason", [
    (0.83, Verdict.FAIL, "anomaly 0.83 at (55, 100) (fail at 0.50)"),
    (0.40, Verdict.REVIEW, "anomaly 0.40 at (55, 100) (uncertain: 0.25-0.50)"),
    (0.10, Verdict.PASS, "no defect at or above 0.25 confidence"),
])
def test_recipe_judges_anomaly_boxes(peak, verdict, reason):
    heat = _heat((4, 4, peak))
    dets = Detections(hot_regions(heat, 0.25, 320, 640), 320, 640, score=float(heat.max()), heatmap=heat)
    v, reasons = Recipe(RecipeConfig()).evaluate(dets)
    assert v == verdict and reasons[0] == reason


def test_recipe_threshold_for_anomaly_is_adjustable():
    heat = _heat((4, 4, 0.62))
    dets = Detections(hot_regions(heat, 0.25, 320, 640), 320, 640, score=0.62, heatmap=heat)
    cfg = RecipeConfig(classes={"anomaly": {"fail_conf": 0.7, "review_conf": 0.6}})
    assert Recipe(cfg).evaluate(dets)[0] == Verdict.REVIEW
    assert Recipe(RecipeConfig()).evaluate(dets)[0] == Verdict.FAIL


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_detections_refuse_a_score_outside_0_1(bad):
    with pytest.raises(ValueError, match="anomaly score"):
        Detections((), 10, 10, score=bad)


def test_image_auroc():
    assert image_auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert image_auroc(np.array([0.3, 0.4]), np.array([0.1, 0.2])) == 0.0
    assert image_auroc(np.array([0.2, 0.2]), np.array([0.2, 0.2])) == 0.5


def test_pixel_aupro_perfect_and_blind_maps():
    mask = np.zeros((32, 32), bool)
    mask[5:10, 5:10] = True
    good = np.where(mask, 0.9, 0.1).astype(np.float32) + np.random.default_rng(0).random((32, 32)) * 0.01
    assert pixel_aupro([good], [mask]) == pytest.approx(1.0, abs=0.01)
    blind = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    assert pixel_aupro([blind], [mask]) < 0.5
    assert pixel_aupro([blind], [np.zeros((32, 32), bool)]) is None


def _surface(rng: np.random.Generator, defect: bool) -> np.ndarray:
    """A grey streaked surface like a tile; a defect is a dark blob on it."""
    streaks = np.repeat(rng.normal(128, 12, (1, 96)), 96, 0) + rng.normal(0, 6, (96, 96))
    im = np.clip(streaks, 0, 255).astype(np.uint8)
    if defect:
        cx, cy = (int(v) for v in rng.integers(20, 76, 2))
        cv2.circle(im, (cx, cy), 7, 30, -1)
    return cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("surfaces")
    rng = np.random.default_rng(0)
    for sub, n, defect in (("train", 16, False), ("test/good", 6, False), ("test/blob", 6, True)):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / sub / f"{i:02d}.png"), _surface(rng, defect))
    return root


@pytest.fixture(scope="module")
def anomaly_model(surfaces, tmp_path_factory, inspector_home) -> Path:
    from inspector.cli import main

    out = tmp_path_factory.mktemp("an") / "blobs"
    assert main(["train", "--kind", "anomaly", "--data", str(surfaces / "train"), "--time-budget", "3m",
                 "--out", str(out)]) == 0
    return out / "blobs.onnx"


def test_train_writes_an_anomaly_card_with_its_threshold(anomaly_model):
    card = json.loads((anomaly_model.parent / "card.json").read_text())
    assert card["task"] == "anomaly" and card["classes"] == ["anomaly"]
    th = card["anomaly"]["threshold"]
    assert th["score"] == 0.5 and th["false_reject_quantile"] == 0.02
    assert card["anomaly"]["export_parity"] <= 1e-3


def test_export_scores_as_the_trained_model(anomaly_model, surfaces):
    """One score everywhere: ONNX Runtime and OpenVINO on the export give the training-time model's score."""
    import torch

    from inspector.detection.anomaly import AnomalyDetector
    from inspector.training.anomaly import fit, load_picture, model_input

    pics = sorted((surfaces / "train").glob("*.png"))
    net, _ = fit(pics, time_budget_s=120)
    from inspector.training.anomaly import export_onnx

    path = export_onnx(net, anomaly_model.parent.parent / "parity" / "parity.onnx")
    tests = sorted((surfaces / "test").rglob("*.png"))
    for backend in ("onnxruntime", "openvino"):
        det = AnomalyDetector(path, "", backend=backend, threads=1)
        for p in tests:
            im = load_picture(p)
            with torch.inference_mode():
                ref = float(net(torch.from_numpy(model_input(im, net.size)))[0][0])
            assert abs(det.score(im)[0] - ref) <= 1e-3, (backend, p.name)


def test_evaluate_prints_the_issue_json(anomaly_model, surfaces, capsys):
    from inspector.cli import main

    assert main(["evaluate", "--model", str(anomaly_model), "--data", str(surfaces / "test"), "--json"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")][-1]
    out = json.loads(line)
    for key in ("image_auroc", "pixel_aupro", "threshold", "false_reject_rate", "recall"):
        assert key in out
    assert out["threshold"] == 0.5 and out["good_parts"] == 6 and out["defective_parts"] == 6
    assert out["image_auroc"] >= 0.9  # dark blobs on a streaked surface: plain to see
    assert set(out["recall_by_kind"]) == {"blob"}


def test_station_judges_with_the_anomaly_model(anomaly_model, surfaces):
    from inspector.core.config import ModelConfig
    from inspector.detection.detector import load_detector
    from inspector.detection.registry import ModelRegistry, sha256_file

    reg = ModelRegistry({sha256_file(anomaly_model): "test"})
    det = load_detector(ModelConfig(path=anomaly_model), conf=0.25, registry=reg)
    assert det.classes == ("anomaly",)
    im = cv2.imread(str(sorted((surfaces / "test" / "blob").glob("*.png"))[0]))
    d = det.detect(im)
    assert d.score is not None and d.heatmap is not None and d.image_width == im.shape[1]


@needs_tiles
def test_export_parity_on_real_tiles(tmp_path):
    """Trained on 20 real good tiles; export vs training-time scores on good and defective tiles."""
    import torch

    from inspector.detection.anomaly import AnomalyDetector
    from inspector.training.anomaly import export_onnx, fit, load_picture, model_input, read_pictures

    listing = TILES / "splits" / "train_normal.txt"
    pics = read_pictures(listing)[:20]
    net, _ = fit(pics, time_budget_s=180)
    path = export_onnx(net, tmp_path / "tiles.onnx")
    det = AnomalyDetector(path, "", backend="onnxruntime", threads=1)
    tests = [TILES / ln.split("\t")[0] for ln in (TILES / "splits" / "test.txt").read_text().splitlines()[::80]]
    for p in tests:
        im = load_picture(p)
        with torch.inference_mode():
            ref = float(net(torch.from_numpy(model_input(im, net.size)))[0][0])
        assert abs(det.score(im)[0] - ref) <= 1e-3, p.name
