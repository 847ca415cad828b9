"""One box type: ``inspector.core.types.Box``; every other box converts to it with ``.box``."""

from __future__ import annotations

import dataclasses
import math

import pytest

from inspector.core.types import Box, Detection


@pytest.mark.parametrize("corners, says", [
    ((5, 1, 5, 9), "x1 < x2 and y1 < y2"),
    ((9, 1, 5, 9), "x1 < x2 and y1 < y2"),
    ((1, 9, 5, 9), "x1 < x2 and y1 < y2"),
    ((1, 1, math.inf, 9), "finite box coordinates"),
    ((1, 1, math.nan, 9), "finite box coordinates"),
    ((True, 1, 5, 9), "finite box coordinates"),
])
def test_a_box_without_area_is_refused_naming_what_was_expected(corners, says) -> None:
    with pytest.raises(ValueError, match=says):
        Box(*corners)


def test_a_box_measures_itself() -> None:
    a, b = Box(0, 0, 10, 10), Box(5, 0, 15, 10)
    assert (a.width, a.height, a.area, a.center, a.xyxy) == (10, 10, 100, (5, 5), (0, 0, 10, 10))
    assert a.iou(b) == pytest.approx(50 / 150) and a.iou(Box(20, 20, 30, 30)) == 0.0
    assert a.scaled(2, 0.5) == Box(0, 0, 20, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.x1 = 3  # type: ignore[misc]


def _every_box_kind():
    import datetime as dt  # noqa: F401 - the DTOs import it

    from db.dto import DetectionDTO
    from inspector.reports.data import Box as ReportBox
    from inspector.training.corpus import CorpusBox
    from inspector.training.datasets import GroundTruthBox
    from ui.review.canvas import CanvasBox

    d = Detection(2, "dent", 0.8, 1.0, 2.0, 11.0, 12.0)
    return [d, DetectionDTO(7, 3, 2, "dent", 0.8, 1.0, 2.0, 11.0, 12.0), ReportBox.from_detection(d),
            GroundTruthBox(2, 1.0, 2.0, 11.0, 12.0), CorpusBox(2, 1, 2, 11, 12),
            CanvasBox(7, 2, "dent", 1.0, 2.0, 11.0, 12.0)]


def test_every_box_converts_to_the_one_box() -> None:
    for kind in _every_box_kind():
        assert kind.box == Box(1, 2, 11, 12), type(kind).__name__


def test_the_engines_detection_keeps_an_edge_box_but_it_converts_to_no_box() -> None:
    edge = Detection(0, "scratch", 0.5, 10.0, 2.0, 10.0, 8.0)  # clipped to the frame's edge: kept as drawn
    assert edge.area == 0
    with pytest.raises(ValueError, match="x1 < x2"):
        _ = edge.box
    assert Detection.from_box(1, "dent", 0.9, Box(1, 2, 3, 4)) == Detection(1, "dent", 0.9, 1, 2, 3, 4)


def test_a_report_box_from_a_stored_detection_keeps_its_class_or_leaves_it_unknown() -> None:
    from db.dto import DetectionDTO
    from inspector.reports.data import Box as ReportBox

    stored = DetectionDTO(7, 3, 4, "crack", 0.6, 1.0, 2.0, 3.0, 4.0)
    assert ReportBox.from_detection(stored) == ReportBox("crack", 0.6, 1.0, 2.0, 3.0, 4.0, 4)
    assert ReportBox.from_detection(stored, with_class=False).cls == -1
