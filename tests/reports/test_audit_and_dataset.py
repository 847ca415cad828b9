"""``inspector audit verify`` exit codes, and the reviewed parts exported as a YOLO training set."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.reports import Box, PartForTraining, ReviewStep
from inspector.reports.dataset import corrected_boxes
from inspector.training.datasets import load_dataset
from tests.reports.conftest import CLASSES, build_qc_db


def test_audit_verify_passes_on_a_clean_database(tmp_path, capsys):
    qc_db = build_qc_db(tmp_path, users=True)
    [(n,)] = qc_db.sql("SELECT count(*) FROM audit_log")
    assert n == 5 + 1 + 7  # the reviewers' accounts made by an admin, binding begun, then one entry per review
    assert main(["audit", "verify", "--db", qc_db.url]) == 0
    ok, head, record = capsys.readouterr().out.strip().splitlines()
    assert ok.startswith(f"audit log OK: {n} entries") and head.startswith(f"audit chain head: entry {n}, sha256 ")
    assert record.startswith("record head: sha256 ")


@pytest.mark.parametrize("tamper,problem", [
    ("UPDATE audit_log SET actor = 'someone else' WHERE id = 3", "entry 3: its content does not match its hash"),
    ("DELETE FROM audit_log WHERE id = 2", "entry 2 missing"),
    ("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)", "anchor"),
])
def test_audit_verify_fails_after_tampering(tmp_path, capsys, tamper, problem):
    fresh_qc_db = build_qc_db(tmp_path, n=16, seed=4, users=True)
    con = sqlite3.connect(fresh_qc_db.path)
    con.execute(tamper)
    con.commit()
    con.close()
    assert main(["audit", "verify", "--db", fresh_qc_db.url]) == 1
    out = capsys.readouterr().out
    assert out.startswith("audit log TAMPERED") and problem in out


def _labels(root: Path, iid: int) -> list[list[str]]:
    return [ln.split() for ln in (root / "labels" / f"insp{iid:08d}.txt").read_text().splitlines()]


def test_export_dataset_applies_the_reviews(qc_db, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["export-dataset", "--db", qc_db.url, "--out", str(out), "--reviewed-only"]) == 0
    said = capsys.readouterr()
    assert "1 FAIL part(s) need a box" in said.out and "draw one" in said.err
    assert (out / "classes.txt").read_text().split() == list(CLASSES)
    escaped, no_box, false_alarm, confirmed, review_fail = qc_db.reviewed_seqs[:5]
    ids = qc_db.ids
    # missed defect drawn by QC: the dent is the only box
    [[cls, *xywh]] = _labels(out, ids[escaped])
    assert CLASSES[int(cls)] == "dent" and all(0 < float(v) < 1 for v in xywh)
    # overridden to FAIL without a box: not exported
    assert not (out / "images" / f"insp{ids[no_box]:08d}.jpg").exists()
    # the false detection is removed; any other box of the part stays
    assert len(_labels(out, ids[false_alarm])) == len(qc_db.boxes[false_alarm]) - 1
    assert len(_labels(out, ids[confirmed])) == len(qc_db.boxes[confirmed])
    assert len(_labels(out, ids[review_fail])) == 1
    ds = load_dataset(out)  # what `inspector train --data DIR` reads
    assert ds.layout == "yolo" and ds.classes == CLASSES
    assert len(ds.split("all")) == len(list((out / "images").iterdir())) == 5


def test_export_dataset_without_reviewed_only_takes_every_judged_part(qc_db, tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["export-dataset", "--db", qc_db.url, "--out", str(out)]) == 0
    [(judged,)] = qc_db.sql(
        "SELECT count(*) FROM inspections i WHERE image_path IS NOT NULL AND coalesce((SELECT r.new_verdict FROM "
        "reviews r WHERE r.inspection_id = i.id ORDER BY r.id DESC LIMIT 1), i.verdict) IN ('PASS', 'FAIL')")
    assert len(list((out / "images").iterdir())) == judged - 1  # less the FAIL without a box
    empty = sum(1 for f in (out / "labels").iterdir() if not f.read_text().strip())
    assert empty >= 20  # the passes: negatives for training


def test_export_dataset_refuses_a_folder_with_files(qc_db, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["export-dataset", "--db", qc_db.url, "--out", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def _part(dets, reviews, final="FAIL"):
    return PartForTraining(1, "x.jpg", "FAIL", final, tuple(dets), tuple(ReviewStep(*r) for r in reviews))


@pytest.mark.parametrize("reviews,labels", [
    ([], ["scratch", "dent"]),
    ([("false_detection", "FAIL", {"detection_id": 10})], ["dent"]),
    ([("false_detection", "PASS", {"detection_id": 10}), ("false_detection", "PASS", {"detection_id": 11})], []),
    ([("missed_defect", "FAIL", {"label": "chip", "x1": 5, "y1": 5, "x2": 1, "y2": 9})], ["scratch", "dent", "chip"]),
    ([("missed_defect", "FAIL", {"box": {"label": "chip", "x1": 1, "y1": 1, "x2": 5, "y2": 5}})],
     ["scratch", "dent", "chip"]),
    ([("missed_defect", "FAIL", {"x1": 1})], ["scratch", "dent"]),  # unusable: ignored with a warning
    ([("override", "PASS", {})], ["scratch", "dent"]),
])
def test_corrected_boxes(reviews, labels):
    dets = [(10, Box("scratch", 0.9, 1, 1, 5, 5)), (11, Box("dent", 0.8, 2, 2, 6, 6))]
    boxes = corrected_boxes(_part(dets, reviews))
    assert [b.label for b in boxes] == labels
    assert all(b.x1 <= b.x2 and b.y1 <= b.y2 for b in boxes)


@pytest.mark.model
def test_a_model_trains_on_the_export(qc_db, tmp_path):
    from inspector.training.train import train

    out = tmp_path / "ds"
    assert main(["export-dataset", "--db", qc_db.url, "--out", str(out)]) == 0
    card = train(out, tmp_path / "m", epochs=1, imgsz=160, batch=16, workers=0, export_onnx=False)
    assert card.classes == tuple(CLASSES) and (tmp_path / "m" / "m.pt").exists()
