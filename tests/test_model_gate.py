"""Issue 24, model files: no class named in an untrusted checkpoint is ever called, architecture files are
read as data and checked, every loader goes through one gate, export refuses an untrusted source, and a
card's image size counts only when the card itself is trusted. Real malicious files that write a marker."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from inspector.core.errors import ModelError
from inspector.detection.checkpoint import architecture, check_pickle, read_checkpoint, rebuild, vet
from inspector.detection.registry import PACKAGE_MODELS, ModelRegistry, sha256_file
from tests.test_trust import cli, one_error

ROOT = Path(__file__).resolve().parents[1]
PARTS = PACKAGE_MODELS / "parts-v2" / "parts-v2.pt"


def _yolo11_definition(nc: int = 2) -> dict:
    import ultralytics
    import yaml

    d = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/11/yolo11.yaml").read_text())
    d.update(scale="n", nc=nc)
    return d


def activation_payload(marker: Path) -> str:
    """An ``activation`` that Ultralytics evaluates when it builds the network: it creates ``marker``."""
    return f"__import__('pathlib').Path({str(marker)!r}).touch() or nn.SiLU()"


class _CallsDetectionModel:
    """Pickles as a call of ``ultralytics.nn.tasks.DetectionModel(cfg)``: a class the old allow-list let through."""

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg

    def __reduce__(self):
        from ultralytics.nn.tasks import DetectionModel

        return (DetectionModel, (self.cfg,))


def activation_checkpoint(folder: Path, name: str = "act.pt", **extra) -> tuple[Path, Path]:
    """A real malicious checkpoint of layer classes only: loading it the old way runs code (creates a marker)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"PWNED-{name}"
    cfg = {**_yolo11_definition(), "activation": activation_payload(marker)}
    path = folder / name
    torch.save({"model": _CallsDetectionModel(cfg), "train_args": {}, **extra}, path)
    return path, marker


def test_a_checkpoint_that_calls_a_layer_class_runs_nothing_and_is_refused(tmp_path):
    evil, marker = activation_checkpoint(tmp_path)
    with pytest.raises(ModelError, match="not a YOLO detector checkpoint"):
        check_pickle(evil)
    with pytest.raises(ModelError):
        vet(ModelRegistry(), evil)
    with pytest.raises(ModelError):
        rebuild(evil, tmp_path / "out" / "x.pt")
    assert not marker.exists(), "code in an untrusted checkpoint ran"
    assert not (tmp_path / "out" / "x.pt").exists()


def test_the_gate_keeps_the_network_exactly_and_drops_the_files_objects(tmp_path):
    """The shipped model rebuilt from its tensors computes the same numbers; the file Ultralytics then reads is
    our own, whatever the source's pickle held besides tensors."""
    import torch
    from ultralytics import YOLO

    ck = read_checkpoint(PARTS)
    assert ck.hint == "yolo11n" and ck.names[0] == "scratch" and len(ck.tensors) > 400
    clean = rebuild(PARTS, tmp_path / "clean.pt")
    a, b = YOLO(str(clean)).model.eval(), YOLO(str(PARTS)).model.eval()
    x = torch.rand(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(a(x)[0], b(x)[0])
    assert a.names == b.names


def test_tensors_that_fit_no_bundled_detector_are_refused(tmp_path):
    import torch

    torch.save({"model": torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))}, tmp_path / "odd.pt")
    with pytest.raises(ModelError):
        check_pickle(tmp_path / "odd.pt")


@pytest.mark.parametrize("change, ok", [
    ({}, True),
    ({"activation": "nn.SiLU()"}, False),  # any activation string: Ultralytics evaluates it
    ({"backbone": [[-1, 1, "torch_safe_load", ["evil.pt"]]]}, False),  # a function among Ultralytics' globals
    ({"backbone": [[-1, 1, "Conv", ["__import__('os')", 3, 2]]]}, False),  # an argument that is not a literal
    ({"download": "bash x"}, False),  # a key outside an architecture
])
def test_an_architecture_yaml_is_read_as_data_and_checked(tmp_path, change, ok):
    import yaml

    d = {**_yolo11_definition(), **change}
    f = tmp_path / "base-n.yaml"
    f.write_text(yaml.safe_dump(d))
    if ok:
        assert architecture(f)["backbone"] == d["backbone"]
    else:
        with pytest.raises(ModelError, match="refusing architecture"):
            architecture(f)
    assert architecture("yolo11n.yaml")["scale"] == "n"  # a bundled name: Ultralytics' own file, checked
    with pytest.raises(ModelError, match="unknown architecture"):
        architecture("yolo99q.yaml")


def test_every_loader_goes_through_the_gate():
    """No torch.load, strip_optimizer or attempt_load outside the gate, in the product or bench/; each file that
    hands Ultralytics a model file takes it from the gate."""
    files = [p for d in ("inspector", "station", "db", "ui", "bench") for p in (ROOT / d).rglob("*.py")]
    gate = ROOT / "inspector" / "detection" / "checkpoint.py"
    for p in files:
        text = p.read_text(encoding="utf-8")
        if p != gate:
            assert not re.search(r"torch\.load\(|strip_optimizer|attempt_load_", text), p
        # a peer script stands for another team's code (SAHI's), handed only a copy the bench rebuilt in the gate
        if re.search(r"\bYOLO\(", text) and not p.name.endswith("_peer.py"):
            assert re.search(r"\b(rebuild|safe_source|_gate)\(", text), f"{p} loads a model past the gate"


def test_an_untrusted_card_does_not_change_the_image_size(tmp_path):
    """A card.json beside a hash-identical copy of a trusted model decides nothing: its imgsz is not used."""
    from inspector.core.config import ModelConfig
    from inspector.detection.detector import load_detector

    copy = tmp_path / "parts-copy"
    shutil.copytree(PACKAGE_MODELS / "parts-v2", copy)
    card = json.loads((copy / "card.json").read_text())
    trained_at = card["imgsz"]
    card["imgsz"] = 640
    (copy / "card.json").write_text(json.dumps(card))
    det = load_detector(ModelConfig(path=str(copy / "parts-v2.pt"), backend="ultralytics"), 0.25, ModelRegistry())
    assert sha256_file(copy / "parts-v2.pt") == sha256_file(PARTS)
    assert det.imgsz == trained_at != 640
    # the shipped card itself is trusted (the package is the root of trust)
    det = load_detector(ModelConfig(path=str(PARTS), backend="ultralytics"), 0.25, ModelRegistry())
    assert det.imgsz == trained_at


@pytest.mark.model
def test_no_command_runs_code_from_a_checkpoint_or_architecture_file(tmp_path, synth_data):
    """train --base (.pt and .yaml), train --resume, evaluate and export: nothing runs, each a refusal."""
    import yaml

    db = ["--db", f"sqlite:///{tmp_path / 's.db'}"]
    evil, marker = activation_checkpoint(tmp_path / "a")
    one_error(cli("train", "--data", str(synth_data), "--base", str(evil), "--keep-base", "--epochs", "1", "--out",
                  str(tmp_path / "m1"), *db), "not a YOLO detector checkpoint")
    arch = tmp_path / "evil-n.yaml"
    arch.write_text(yaml.safe_dump({**_yolo11_definition(), "activation": activation_payload(tmp_path / "PWNED-y")}))
    one_error(cli("train", "--data", str(synth_data), "--base", str(arch), "--keep-base", "--epochs", "1", "--out",
                  str(tmp_path / "m2"), *db), "refusing architecture")
    weights = tmp_path / "m3" / "run" / "weights"
    last, marker3 = activation_checkpoint(weights, "last.pt", optimizer={"state": {}}, epoch=0)
    one_error(cli("train", "--data", str(synth_data), "--resume", "--out", str(tmp_path / "m3"), *db),
              "not a YOLO detector checkpoint")
    one_error(cli("evaluate", "--model", str(evil), "--data", str(synth_data), *db), "refusing to load")
    one_error(cli("export", "--model", str(evil), "--format", "onnx", *db), "not in the model registry")
    assert not marker.exists() and not marker3.exists() and not (tmp_path / "PWNED-y").exists()


def test_export_refuses_a_source_that_is_not_trusted(tmp_path):
    """Edited shipped weights beside a copy of its card would borrow the shipped model's provenance."""
    import torch

    copy = tmp_path / "m" / "parts-v2.pt"
    copy.parent.mkdir()
    ckpt = torch.load(PARTS, weights_only=False)  # the test's own trusted file
    with torch.no_grad():
        next(ckpt["model"].parameters()).flatten()[0] += 0.5  # weights edited: another hash
    torch.save(ckpt, copy)
    assert sha256_file(copy) != sha256_file(PARTS)
    shutil.copy2(PACKAGE_MODELS / "parts-v2" / "card.json", copy.parent / "card.json")
    r = cli("export", "--model", str(copy), "--format", "onnx", "--out", str(tmp_path / "x"), "--db",
            f"sqlite:///{tmp_path / 's.db'}")
    one_error(r, "not in the model registry")
    assert not (tmp_path / "x").exists()
