"""``inspector compare`` with anomaly models: a detector and an anomaly model on the same folder of parts, and
anomaly model against anomaly model; verdicts side by side and the agreement rate. One score everywhere: compare
runs the exported file, and its image AUROC is exactly the one ``inspector evaluate`` gives from the same export.

Generated surfaces and tiny models trained on them: nothing from ``../shared`` is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.anomaly_parts import train_tiny, write_surfaces
from tests.conftest import trust_models

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    write_surfaces(root / "train-a", 10, False, seed=0)
    write_surfaces(root / "train-b", 10, False, seed=1)
    write_surfaces(root / "parts" / "good", 6, False, seed=2)
    write_surfaces(root / "parts" / "blob", 6, True, seed=3)
    return {"parts": root / "parts", "a": train_tiny(root / "train-a", root / "an-a"),
            "b": train_tiny(root / "train-b", root / "an-b")}


def _json(out: str) -> dict:
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def test_compare_a_detector_and_an_anomaly_model_on_the_same_parts(bench, tiny_model, tmp_path, capsys):
    from inspector.cli import main

    detector = tiny_model.with_suffix(".onnx")
    url = trust_models(f"sqlite:///{tmp_path / 'st.db'}", detector, bench["a"])
    assert main(["compare", "--champion", str(detector), "--challenger", str(bench["a"]), "--data",
                 str(bench["parts"]), "--db", url, "--json", "--gallery", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    r = _json(out)
    c, d = r["champion"], r["challenger"]
    assert r["mode"] == "parts" and r["images"] == 12 and r["truth_known"] == 12
    assert c["task"] == "detect" and d["task"] == "anomaly" and d["classes"] == ["anomaly"]
    assert sum(c["verdicts"].values()) == sum(d["verdicts"].values()) == 12
    ag = r["agreement"]
    assert ag["agreed"] + r["disagreements"]["count"] == 12 and ag["rate"] == round(ag["agreed"] / 12, 4)
    assert c["image_auroc"] is None and d["image_auroc"] >= 0.9  # dark blobs: plain to see
    assert d["part_recall"] is not None and d["false_reject_rate"] is not None
    assert "agreement:" in out and "image AUROC" in out
    assert (tmp_path / "g.png").is_file() == bool(r["disagreements"]["count"])
    # one score everywhere: evaluate on the same export and the same parts gives the same AUROC
    assert main(["evaluate", "--model", str(bench["a"]), "--data", str(bench["parts"]), "--json", "--db", url]) == 0
    assert _json(capsys.readouterr().out)["image_auroc"] == d["image_auroc"]


def test_compare_two_anomaly_models_records_the_agreement_for_a_promotion(bench, tmp_path, capsys):
    from inspector.cli import main
    from station import open_db
    from station.models import compare_text

    url = trust_models(f"sqlite:///{tmp_path / 'st.db'}", bench["a"], bench["b"])
    assert main(["compare", "--champion", str(bench["a"]), "--challenger", str(bench["b"]), "--data",
                 str(bench["parts"]), "--db", url, "--json"]) == 0
    r = _json(capsys.readouterr().out)
    assert r["champion"]["task"] == r["challenger"]["task"] == "anomaly"
    assert r["champion"]["sha256"] != r["challenger"]["sha256"]
    from db import PromotionRepo
    from inspector.detection.registry import sha256_file

    engine, sessions = open_db(url)
    try:
        with sessions() as s:
            figures = PromotionRepo.last_compare(s, sha256_file(bench["a"]), sha256_file(bench["b"]))
    finally:
        engine.dispose()
    assert figures["agreement"] == r["agreement"]["rate"] and figures["images"] == 12
    assert "part_recall" in compare_text(figures)


def test_compare_on_a_folder_without_truth_gives_verdicts_and_agreement_only(bench, tmp_path, capsys):
    from inspector.cli import main

    flat = tmp_path / "flat"
    write_surfaces(flat, 4, False, seed=9)
    url = trust_models(f"sqlite:///{tmp_path / 'st.db'}", bench["a"], bench["b"])
    assert main(["compare", "--champion", str(bench["a"]), "--challenger", str(bench["b"]), "--data", str(flat),
                 "--db", url, "--json"]) == 0
    r = _json(capsys.readouterr().out)
    assert r["images"] == 4 and r["truth_known"] == 0
    assert r["challenger"]["part_recall"] is None and r["challenger"]["image_auroc"] is None
    assert 0.0 <= r["agreement"]["rate"] <= 1.0
