"""Training, evaluation and export on real data: the VOC path on NEU-DET images, the YOLO path on
generated parts, honest metrics."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from inspector.training.evaluation import average_precision, box_iou
from tests.conftest import NEU_DET

pytestmark = pytest.mark.model


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_ap_of_perfect_and_useless_detectors():
    # 101-point interpolation tops out at 0.995, exactly as Ultralytics' and COCO's figures do
    assert average_precision(np.ones(4), np.array([0.9, 0.8, 0.7, 0.6]), 4) == pytest.approx(0.995, abs=1e-6)
    assert average_precision(np.zeros(4), np.array([0.9, 0.8, 0.7, 0.6]), 4) == 0.0
    # half the defects found at full precision: 0.5 plus the interpolated tail (0.62, as Ultralytics computes)
    assert average_precision(np.array([1, 0]), np.array([0.9, 0.1]), 2) == pytest.approx(0.6225, abs=0.001)
    assert average_precision(np.array([0, 1]), np.array([0.9, 0.1]), 2) < 0.5  # the wrong box ranked first
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(1 / 3, abs=1e-6)


def test_evaluate_json_on_generated_parts(tiny_model, synth_data):
    r = cli("evaluate", "--model", str(tiny_model), "--data", str(synth_data), "--json", "--backend", "ultralytics")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("map50", "map50_95", "part_recall", "false_reject_rate", "escapes", "images", "per_class_ap50"):
        assert key in j
    assert j["images"] == 48 and j["split"] == "all"
    assert j["defective_parts"] + j["good_parts"] == 48
    assert 0 <= j["map50_95"] <= j["map50"] <= 1


@pytest.mark.skipif(not NEU_DET.is_dir(), reason="NEU-DET lives in ../shared/datasets (present in CI, not in a clone)")
def test_voc_path_end_to_end_on_neu_det(tmp_path):
    root = tmp_path / "neu"
    for sub in ("images", "annotations", "splits"):
        (root / sub).mkdir(parents=True)
    train = (NEU_DET / "splits" / "train.txt").read_text().split()[:10]
    val = (NEU_DET / "splits" / "val.txt").read_text().split()[:5]
    for stem in train + val:
        shutil.copy(NEU_DET / "images" / f"{stem}.jpg", root / "images")
        shutil.copy(NEU_DET / "annotations" / f"{stem}.xml", root / "annotations")
    (root / "splits" / "train.txt").write_text("\n".join(train))
    (root / "splits" / "val.txt").write_text("\n".join(val))
    out = tmp_path / "neu-model"
    r = cli("train", "--data", str(root), "--epochs", "1", "--imgsz", "160", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((out / "card.json").read_text())
    assert card["classes"] == sorted({"crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale",
                                      "scratches"} & set(card["classes"]))
    assert set(card["files"]) == {"neu-model.pt", "neu-model.onnx"}
    r = cli("evaluate", "--model", str(out / "neu-model.pt"), "--data", str(root), "--split", "val", "--json",
            "--backend", "ultralytics")
    assert r.returncode == 0, r.stderr[-2000:]
    j = json.loads(r.stdout.strip().splitlines()[-1])
    assert j["images"] == 5 and j["split"] == "val"


def test_train_refuses_bad_data_with_a_report(tmp_path, synth_data):
    bad = tmp_path / "bad"
    shutil.copytree(synth_data, bad)
    for f in sorted((bad / "labels").glob("*.txt"))[:7]:
        f.write_text("0 0.5 0.5 1.9 0.2\n")
    r = cli("train", "--data", str(bad), "--epochs", "1", "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "box outside the image: 7" in r.stderr and "What to do" in r.stderr


def test_unknown_base_model_is_clear(tmp_path, synth_data):
    r = cli("train", "--data", str(synth_data), "--base", str(tmp_path / "yolo11n.pt"), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "base model not found" in r.stderr
