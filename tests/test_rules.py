"""The recipe's verdict table."""

import pytest

from inspector.core.config import ClassRule, RecipeConfig
from inspector.core.types import Detection, Detections, Verdict
from inspector.inspection.rules import Recipe


def dets(*items, w=320, h=320):
    return Detections(tuple(Detection(0 if lbl == "scratch" else 1, lbl, c, *box) for lbl, c, box in items), w, h)


BOX = (100, 100, 120, 120)  # 400 px, centre (110, 110)
BASE = RecipeConfig(fail_conf=0.5, review_conf=0.25)


@pytest.mark.parametrize("recipe, detections, verdict, reason_part", [
    (BASE, dets(), Verdict.PASS, "no defect"),
    (BASE, dets(("scratch", 0.9, BOX)), Verdict.FAIL, "scratch 0.90"),
    (BASE, dets(("scratch", 0.5, BOX)), Verdict.FAIL, "fail at 0.50"),
    (BASE, dets(("scratch", 0.49, BOX)), Verdict.REVIEW, "uncertain"),
    (BASE, dets(("scratch", 0.25, BOX)), Verdict.REVIEW, "scratch 0.25"),
    (BASE, dets(("scratch", 0.24, BOX)), Verdict.PASS, "no defect"),
    (BASE, dets(("scratch", 0.3, BOX), ("dent", 0.8, BOX)), Verdict.FAIL, "dent 0.80"),
    (RecipeConfig(min_area_px=500), dets(("scratch", 0.9, BOX)), Verdict.PASS, "no defect"),
    (RecipeConfig(min_area_px=400), dets(("scratch", 0.9, BOX)), Verdict.FAIL, "scratch"),
    (RecipeConfig(roi=(0.5, 0.5, 1.0, 1.0)), dets(("scratch", 0.9, BOX)), Verdict.PASS, "no defect"),
    (RecipeConfig(roi=(0.0, 0.0, 0.5, 0.5)), dets(("scratch", 0.9, BOX)), Verdict.FAIL, "scratch"),
    (RecipeConfig(classes={"scratch": ClassRule(fail_conf=0.95)}), dets(("scratch", 0.9, BOX)), Verdict.REVIEW,
     "scratch"),
    (RecipeConfig(classes={"scratch": ClassRule(review_conf=0.95, fail_conf=0.96)}), dets(("scratch", 0.9, BOX)),
     Verdict.PASS, "no defect"),
    (RecipeConfig(classes={"dent": ClassRule(fail_conf=0.3)}), dets(("dent", 0.35, BOX)), Verdict.FAIL, "dent"),
    (RecipeConfig(classes={"dent": ClassRule(min_area_px=1000)}), dets(("dent", 0.9, BOX), ("scratch", 0.3, BOX)),
     Verdict.REVIEW, "scratch"),
])
def test_verdict_table(recipe, detections, verdict, reason_part):
    v, reasons = Recipe(recipe).evaluate(detections)
    assert v == verdict
    assert any(reason_part in r for r in reasons), reasons


def test_detector_floor_is_lowest_review_threshold():
    r = Recipe(RecipeConfig(review_conf=0.3, classes={"crack": ClassRule(review_conf=0.1, fail_conf=0.2)}))
    assert r.detector_floor == pytest.approx(0.1)
