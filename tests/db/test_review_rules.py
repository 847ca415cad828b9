"""Review that keeps the data honest: decisions for REVIEW parts, no duplicate or no-op records, the CSV
carries the reviewer's marks, and the training export follows the final decision."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from db import InspectionRepo, ReviewRepo
from db.export import iter_export_rows
from inspector.core.types import Verdict
from inspector.reports import (
    COLUMNS,
    DETECTION_COLUMNS,
    PartForTraining,
    ReviewStep,
    detections_path,
    write_csv,
    write_yolo_dataset,
)
from inspector.reports.data import Box
from tests.conftest import QC, staff


@pytest.fixture
def parts(sessions, run_id, mk) -> dict[str, int]:
    with sessions() as s, s.begin():
        staff(s)
        return {"review": InspectionRepo.add(s, run_id, mk.inspection(1, Verdict.REVIEW, ("scratch", "dent")), None),
                "fail": InspectionRepo.add(s, run_id, mk.inspection(2, Verdict.FAIL, ("scratch",)), None)}


def add(sessions, iid, action, new=None, reason="", detail=None):
    with sessions() as s, s.begin():
        return ReviewRepo.add(s, iid, QC("qc-anna"), action, new, reason, detail)


def detection_ids(sessions, iid) -> list[int]:
    with sessions() as s:
        return [d.id for d in InspectionRepo.get(s, iid).detections]


def count_reviews(sessions, iid) -> int:
    with sessions() as s:
        return len(ReviewRepo.for_inspection(s, iid))


def test_a_review_part_needs_a_decision_not_a_confirm(sessions, parts):
    with pytest.raises(ValueError, match="REVIEW part needs a decision"):
        add(sessions, parts["review"], "confirm")
    assert count_reviews(sessions, parts["review"]) == 0
    add(sessions, parts["review"], "override", "PASS", "not a crack: a reflection")
    with sessions() as s:
        assert ReviewRepo.final_verdict(s, parts["review"]) is Verdict.PASS


def test_an_override_that_changes_nothing_is_refused(sessions, parts):
    with pytest.raises(ValueError, match="already FAIL"):
        add(sessions, parts["fail"], "override", "FAIL", "real defect")
    assert count_reviews(sessions, parts["fail"]) == 0


def test_a_box_is_marked_false_once_and_only_on_its_own_part(sessions, parts):
    box = detection_ids(sessions, parts["fail"])[0]
    add(sessions, parts["fail"], "false_detection", detail={"detection_id": box})
    with pytest.raises(ValueError, match="already marked"):
        add(sessions, parts["fail"], "false_detection", detail={"detection_id": box})
    other = detection_ids(sessions, parts["review"])[0]
    with pytest.raises(ValueError, match="expected a box of inspection"):
        add(sessions, parts["fail"], "false_detection", detail={"detection_id": other})
    assert count_reviews(sessions, parts["fail"]) == 1


def test_the_csv_carries_who_decided_what_why_and_when_and_the_boxes_as_reviewed(sessions, parts, tmp_path):
    scratch, dent = detection_ids(sessions, parts["review"])
    add(sessions, parts["review"], "false_detection", detail={"detection_id": dent})
    add(sessions, parts["review"], "missed_defect", detail={"label": "hole", "x1": 5, "y1": 6, "x2": 9, "y2": 10})
    out = tmp_path / "r.csv"
    with sessions() as s:
        write_csv(out, iter_export_rows(s))
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = {int(r["inspection_id"]): r for r in csv.DictReader(f)}
    assert set(COLUMNS) >= {"reviewer", "decision", "review_reason", "review_time"}
    r = rows[parts["review"]]
    assert (r["reviewer"], r["decision"]) == ("qc-anna", "missed_defect FAIL")  # a drawn defect fails the part
    assert r["review_time"].startswith("20") and r["final_verdict"] == "FAIL"
    assert rows[parts["fail"]]["reviewer"] == "" and rows[parts["fail"]]["decision"] == ""
    with open(detections_path(out), encoding="utf-8-sig", newline="") as f:
        dets = [d for d in csv.DictReader(f) if int(d["inspection_id"]) == parts["review"]]
    assert DETECTION_COLUMNS[-1] == "qc"
    assert sorted((d["label"], d["qc"]) for d in dets) == [("dent", "false"), ("hole", "drawn"), ("scratch", "")]
    assert scratch != dent


def _dataset(tmp_path, parts_):
    img = np.full((48, 64, 3), 120, np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), img)
    out = tmp_path / "ds"
    summary = write_yolo_dataset(out, parts_, ["scratch", "dent"], tmp_path)
    return out, summary


def test_the_training_export_follows_the_final_decision(tmp_path):
    boxes = ((10, Box("scratch", 0.9, 1, 1, 30, 30)), (11, Box("dent", 0.6, 5, 5, 40, 40)))
    overridden = PartForTraining(1, "p.png", "REVIEW", "PASS", boxes,
                                 (ReviewStep("override", "PASS", {}),))  # "not a crack"
    corrected = PartForTraining(2, "p.png", "FAIL", "FAIL", boxes, (
        ReviewStep("false_detection", "FAIL", {"detection_id": 11}),
        ReviewStep("missed_defect", "FAIL", {"label": "dent", "x1": 40, "y1": 20, "x2": 60, "y2": 40})))
    out, summary = _dataset(tmp_path, [overridden, corrected])
    assert (out / "labels" / "insp00000001.txt").read_text() == ""  # a clean negative, not two crack labels
    lines = (out / "labels" / "insp00000002.txt").read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["0", "1"]  # the scratch kept, the false dent gone, the drawn dent
    assert abs(float(lines[1].split()[1]) - 50 / 64) < 1e-3
    assert summary.images == 2 and summary.empty_labels == 1 and summary.boxes == 2


def test_undo_takes_back_ones_own_last_review_with_a_new_record(sessions, parts, tmp_path):
    from tests.conftest import QC as qc_actor

    iid = parts["review"]
    scratch, dent = detection_ids(sessions, iid)
    add(sessions, iid, "false_detection", detail={"detection_id": dent})
    add(sessions, iid, "override", "PASS", "not a crack")
    with sessions() as s, s.begin():
        with pytest.raises(ValueError, match="only they can undo"):
            ReviewRepo.undo_last(s, iid, qc_actor("qc-ben"))
    with sessions() as s, s.begin():
        undo = ReviewRepo.undo_last(s, iid, qc_actor("qc-anna"))
    assert (undo.action, undo.old_verdict, undo.new_verdict) == ("override", Verdict.PASS, Verdict.REVIEW)
    with sessions() as s, s.begin():
        with pytest.raises(ValueError, match="already an undo"):
            ReviewRepo.undo_last(s, iid, qc_actor("qc-anna"))
    add(sessions, iid, "override", "FAIL", "scratch is real")  # decided again
    with sessions() as s, s.begin():
        ReviewRepo.undo_last(s, iid, qc_actor("qc-anna"))  # takes back the FAIL: REVIEW again
    with sessions() as s:
        assert ReviewRepo.final_verdict(s, iid) is Verdict.REVIEW
        assert [r.action for r in ReviewRepo.for_inspection(s, iid)] == ["false_detection", "override", "override",
                                                                         "override", "override"]  # all appended
    with sessions() as s:
        reviews = ReviewRepo.for_inspection(s, iid)
    assert reviews[-1].detail == {"undoes": reviews[-2].id} and reviews[-1].reason == f"undo of review {reviews[-2].id}"
    assert scratch != dent


def test_an_undone_false_mark_gives_the_box_back_everywhere(sessions, parts, tmp_path):
    from tests.conftest import QC as qc_actor

    iid = parts["fail"]
    (box,) = detection_ids(sessions, iid)
    add(sessions, iid, "false_detection", detail={"detection_id": box})
    with sessions() as s, s.begin():
        ReviewRepo.undo_last(s, iid, qc_actor("qc-anna"))
    add(sessions, iid, "false_detection", detail={"detection_id": box})  # may be marked again: it stands no more
    with sessions() as s, s.begin():
        ReviewRepo.undo_last(s, iid, qc_actor("qc-anna"))
    out = tmp_path / "r.csv"
    with sessions() as s:
        write_csv(out, iter_export_rows(s))
    with open(detections_path(out), encoding="utf-8-sig", newline="") as f:
        marks = [d["qc"] for d in csv.DictReader(f) if int(d["inspection_id"]) == iid]
    assert marks == [""]  # the box as the model found it: no false mark stands


def test_a_box_drawn_on_a_pass_part_is_an_escape_in_the_export_the_report_and_the_pareto(sessions, run_id, mk,
                                                                                          tmp_path):
    """Issue 26: a missed defect drawn on a machine-PASS part makes it FAIL (an escape): labelled in the training
    export, counted in the report's Escapes; the Pareto counts drawn boxes and leaves out boxes marked false."""
    from db.export import iter_training_parts, training_classes
    from db.reporting import report_data

    cv2.imwrite(str(tmp_path / "p.png"), np.full((48, 64, 3), 120, np.uint8))
    with sessions() as s, s.begin():
        staff(s)
        ok = InspectionRepo.add(s, run_id, mk.inspection(1, Verdict.PASS), "p.png")
        bad = InspectionRepo.add(s, run_id, mk.inspection(2, Verdict.FAIL, ("scratch", "scratch")), "p.png")
    drawn = add(sessions, ok, "missed_defect", detail={"label": "dent", "x1": 10, "y1": 12, "x2": 40, "y2": 44})
    assert (drawn.old_verdict, drawn.new_verdict) == (Verdict.PASS, Verdict.FAIL)
    add(sessions, bad, "false_detection", detail={"detection_id": detection_ids(sessions, bad)[0]})
    with sessions() as s:
        parts_ = list(iter_training_parts(s))
        classes = training_classes(s)
        data = report_data(s)
    out = tmp_path / "ds"
    summary = write_yolo_dataset(out, parts_, classes, tmp_path)
    label = (out / "labels" / f"insp{ok:08d}.txt").read_text().split()
    assert label and classes[int(label[0])] == "dent"  # not an empty label file: not a clean negative
    assert abs(float(label[1]) - 25 / 64) < 1e-3
    assert summary.boxes == 2 and summary.empty_labels == 0
    assert data.escapes == 1
    assert {p.label: p.count for p in data.pareto} == {"dent": 1, "scratch": 1}  # drawn in, false out


def test_an_undone_drawn_box_leaves_the_part_pass_and_the_pareto_empty(sessions, run_id, mk):
    from db.reporting import report_data

    with sessions() as s, s.begin():
        staff(s)
        ok = InspectionRepo.add(s, run_id, mk.inspection(1, Verdict.PASS), None)
    add(sessions, ok, "missed_defect", detail={"label": "dent", "x1": 10, "y1": 12, "x2": 40, "y2": 44})
    with sessions() as s, s.begin():
        ReviewRepo.undo_last(s, ok, QC("qc-anna"))
    with sessions() as s:
        assert ReviewRepo.final_verdict(s, ok) is Verdict.PASS
        data = report_data(s)
    assert data.escapes == 0 and data.pareto == ()
