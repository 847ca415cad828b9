"""Exports for the fast backends: static FP32 ONNX through Ultralytics, calibrated INT8 through NNCF."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from inspector.core.errors import ModelError
from inspector.detection.fast import FastDetector, onnx_metadata, parse_names
from inspector.lifecycle.export import export_int8, export_onnx
from tests.test_fast_detector import IMGSZ, Tiny, build_tiny

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model: Path, synth_data: Path) -> Tiny:
    return build_tiny(tmp_path_factory.getbasetemp() / "fast-detector", tiny_model, synth_data)


@pytest.fixture(scope="module")
def calib(synth_data: Path) -> list[Path]:
    """Calibration images: the tiny model's training images."""
    return sorted((synth_data / "images").glob("*.jpg"))


@pytest.fixture(scope="module")
def int8(tiny: Tiny, calib: list[Path]) -> Path:
    return export_int8(tiny.lively, calib)


def test_onnx_export_is_static_opset17_with_class_names(tiny: Tiny, tmp_path: Path) -> None:
    out = export_onnx(tiny.pt, 128, tmp_path / "sub" / "m128.onnx")
    assert out == tmp_path / "sub" / "m128.onnx" and out.is_file()
    assert not (tiny.pt.parent / "m128.onnx").exists() and not list(tmp_path.glob("sub/*.part"))
    model = onnx.load(str(out))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 128, 128]
    assert any(o.domain in ("", "ai.onnx") and o.version == 17 for o in model.opset_import)
    assert parse_names(onnx_metadata(out)["names"]) == tiny.classes
    det = FastDetector(out, "x", backend="onnxruntime", imgsz=128)
    assert det.imgsz == 128 and det.classes == tiny.classes


@pytest.mark.parametrize("what,imgsz,match", [("missing", 160, "not found"),
                                              ("corrupt", 160, "bad.pt: it is not a registered model"),
                                              ("ok", 100, "multiple of 32")])
def test_onnx_export_errors(tiny: Tiny, tmp_path: Path, what: str, imgsz: int, match: str) -> None:
    pt = {"missing": tmp_path / "none.pt", "ok": tiny.pt}.get(what, tmp_path / "bad.pt")
    if what == "corrupt":
        pt.write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(ModelError, match=match):
        export_onnx(pt, imgsz, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_int8_export_is_an_openvino_ir_that_keeps_the_metadata(tiny: Tiny, int8: Path) -> None:
    import openvino as ov

    from inspector.detection.fast import META_KEY, block_openvino_telemetry
    from inspector.detection.registry import sha256_file

    block_openvino_telemetry()
    assert int8 == tiny.lively.with_name("lively_int8.xml") and int8.with_suffix(".bin").is_file()
    assert not list(int8.parent.glob("*.part.*"))
    model = ov.Core().read_model(str(int8))
    assert parse_names(model.get_rt_info([META_KEY, "names"]).astype(str)) == tiny.classes
    assert model.get_rt_info([META_KEY, "weights_sha256"]).astype(str) == sha256_file(int8.with_suffix(".bin"))
    ops = model.get_ordered_ops()
    assert sum(op.get_type_name() == "FakeQuantize" for op in ops) > 50
    # the box-decoding tail stays in float: no quantiser feeds the DFL or the class sigmoid
    for op in ops:
        name = op.get_friendly_name()
        if "/dfl/" in name or re.fullmatch(r"/model\.\d+/Sigmoid", name):
            feeds = {i.get_source_output().get_node().get_type_name() for i in op.inputs()}
            assert "FakeQuantize" not in feeds, name


@pytest.mark.parametrize("backend", ["openvino"])
def test_int8_model_loads_and_finds_what_fp32_finds(tiny: Tiny, int8: Path, backend: str) -> None:
    fp32 = FastDetector(tiny.lively, "x", backend="openvino", imgsz=IMGSZ, conf=0.05)
    q = FastDetector(int8, "x", backend=backend, imgsz=IMGSZ, conf=0.05)
    assert q.classes == tiny.classes and q.imgsz == IMGSZ
    hits = n = 0
    for p in tiny.images:
        im = cv2.imread(str(p))
        want, got = fp32.detect(im), q.detect(im)
        if len(want):
            n += 1
            best = want.items[0]
            hits += any(d.cls == best.cls and _iou(d, best) > 0.5 for d in got)
    assert n and hits >= 0.7 * n, f"INT8 found FP32's best box in {hits} of {n} frames"


def test_int8_model_refuses_onnxruntime_and_changed_weights(int8: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="openvino backend"):
        FastDetector(int8, "x", backend="onnxruntime")
    copy = tmp_path / "q.xml"
    shutil.copy2(int8, copy)
    weights = bytearray(int8.with_suffix(".bin").read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    copy.with_suffix(".bin").write_bytes(bytes(weights))
    with pytest.raises(ModelError, match="weights file"):
        FastDetector(copy, "x", backend="openvino")
    copy.with_suffix(".bin").unlink()
    with pytest.raises(ModelError, match="cannot load model"):
        FastDetector(copy, "x", backend="openvino")


def _iou(a, b) -> float:
    iw = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    ih = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    return iw * ih / (a.area + b.area - iw * ih + 1e-9)


def test_int8_export_errors(tiny: Tiny, calib: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="at least"):
        export_int8(tiny.lively, calib[:3], tmp_path / "q.xml")
    with pytest.raises(ModelError, match="not found"):
        export_int8(tmp_path / "none.onnx", calib, tmp_path / "q.xml")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 999, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError, match="corrupt"):
        export_int8(bad, calib, tmp_path / "q.xml")
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    with pytest.raises(ModelError, match="calibration image"):
        export_int8(tiny.lively, [junk] * 12, tmp_path / "q.xml")
    assert not list(tmp_path.glob("q.*"))


# ---- `inspector export` and `inspector train --out` never touch a trusted model ----------------------------

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models"
SHIPPED_PT = SHIPPED / "parts-v2" / "parts-v2.pt"


def _hashes(root: Path) -> dict[str, str]:
    from inspector.detection.registry import sha256_file

    return {str(f.relative_to(root)): sha256_file(f) for f in sorted(root.rglob("*")) if f.is_file()}


def _cli(*args: str) -> int:
    from inspector.cli import main

    return main([str(a) for a in args])


def _station_starts(tmp_path: Path, *model: str) -> int:
    """`inspector run` on three sample images with the default (or given) model."""
    src = tmp_path / "three"
    src.mkdir(exist_ok=True)
    for f in sorted((ROOT / "sample_images").glob("*.jpg"))[:3]:
        shutil.copy(f, src)
    return _cli("run", "--source", src, "--db", f"sqlite:///{tmp_path / 'station.db'}", "--quiet", *model)


def test_exporting_the_shipped_model_leaves_models_untouched(tmp_path: Path, synth_data: Path, capsys) -> None:
    from inspector.detection.registry import ModelRegistry, sha256_file

    before = _hashes(SHIPPED)
    out = tmp_path / "exp"
    assert _cli("export", "--model", SHIPPED_PT, "--imgsz", "96", "--data", synth_data, "--out", out) == 0
    printed = capsys.readouterr().out
    assert _hashes(SHIPPED) == before  # no file changed, none added
    made = out / "parts-v2.onnx"
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "card.md", "parts-v2.onnx"]
    card = json.loads((out / "card.json").read_text())
    assert card["export"]["source_sha256"] == sha256_file(SHIPPED_PT)
    assert (card["export"]["format"], card["export"]["precision"], card["imgsz"]) == ("onnx", "f32", 96)
    assert card["files"]["parts-v2.onnx"]["sha256"] == sha256_file(made)
    acc = card["export"]["accuracy"]
    assert acc["images"] > 0 and 0 <= acc["source_map50"] <= 1 and 0 <= acc["export_map50"] <= 1
    assert "held-out parts" in (out / "card.md").read_text()
    # not trusted: the command says how, and the station refuses it until then
    assert f"inspector model add {made} --user NAME" in printed
    assert sha256_file(made) not in ModelRegistry().trusted()
    assert _station_starts(tmp_path) == 0
    assert _station_starts(tmp_path, "--model", str(made)) == 2
    assert "not in the model registry" in capsys.readouterr().err
    # a second export to the same place is refused without --force, and nothing is touched
    made_hash = sha256_file(made)
    assert _cli("export", "--model", SHIPPED_PT, "--imgsz", "64", "--out", out) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err, err
    assert sha256_file(made) == made_hash
    assert _cli("export", "--model", SHIPPED_PT, "--imgsz", "64", "--out", out, "--force") == 0
    assert sha256_file(made) != made_hash and json.loads((out / "card.json").read_text())["imgsz"] == 64
    assert _hashes(SHIPPED) == before


def test_int8_export_of_the_shipped_model(tmp_path: Path, synth_data: Path) -> None:
    before = _hashes(SHIPPED)
    out = tmp_path / "int8"
    assert _cli("export", "--model", SHIPPED_PT, "--imgsz", "96", "--int8", "--data", synth_data,
                "--calibration", "20", "--out", out) == 0
    assert _hashes(SHIPPED) == before
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "card.md", "parts-v2_int8.bin", "parts-v2_int8.xml"]
    card = json.loads((out / "card.json").read_text())
    assert card["export"]["precision"] == "int8" and card["export"]["calibration"] == {"data": str(synth_data),
                                                                                        "images": 20}
    assert card["export"]["accuracy"]["export_backend"] == "openvino"


@pytest.fixture
def models_copy(tmp_path: Path, monkeypatch) -> Path:
    """The shipped models/ tree, same layout, in tmp_path, as the station's shipped models."""
    copy = tmp_path / "models"
    shutil.copytree(SHIPPED, copy)
    monkeypatch.setenv("INSPECTOR_MODELS_DIR", str(copy))
    return copy


def test_default_out_is_a_new_untrusted_folder_beside_the_model(models_copy: Path, tmp_path: Path, capsys) -> None:
    from inspector.detection.registry import ModelRegistry, sha256_file

    before = _hashes(models_copy)
    assert _cli("export", "--model", models_copy / "parts-v2" / "parts-v2.pt", "--imgsz", "64") == 0
    out = models_copy / "parts-v2-onnx-f32"
    after = _hashes(models_copy)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == [f"parts-v2-onnx-f32/{n}" for n in ("card.json", "card.md",
                                                                                    "parts-v2.onnx")]
    # its card sits beside the shipped ones, yet does not make it trusted
    assert sha256_file(out / "parts-v2.onnx") not in ModelRegistry().trusted()
    assert _station_starts(tmp_path) == 0  # the shipped default still loads
    capsys.readouterr()
    assert _cli("export", "--model", models_copy / "parts-v2" / "parts-v2.pt", "--imgsz", "64") == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["shipped card", "registry"])
def test_nothing_is_written_into_a_trusted_model_folder(models_copy: Path, tmp_path: Path, synth_data: Path,
                                                        capsys, how: str) -> None:
    from station import default_db_url
    from tests.conftest import trust_models

    folder = models_copy / "parts-v2"
    if how == "registry":
        folder = tmp_path / "mine"
        folder.mkdir()
        (folder / "mine.pt").write_bytes(b"weights registered by an admin")
        trust_models(default_db_url(), folder / "mine.pt")  # trusted in the station's database
    before = _hashes(folder)
    for args in (["export", "--model", SHIPPED_PT, "--imgsz", "64", "--out", folder, "--force"],
                 ["train", "--data", synth_data, "--epochs", "1", "--imgsz", "64", "--out", folder]):
        assert _cli(*args) == 2, args
        err = capsys.readouterr().err
        assert "refusing to write into" in err and "trusted model" in err, err
        assert _hashes(folder) == before


@pytest.mark.parametrize("args, fragment", [
    (["--int8"], "--int8 needs --data"),
    (["--model", "models/parts-v2/parts-v2.onnx"], "needs the model's .pt"),
    (["--imgsz", "100"], "multiple of 32"),
])
def test_export_bad_inputs_exit_2_with_one_line(tmp_path: Path, capsys, args: list[str], fragment: str) -> None:
    args = [str(ROOT / a) if a.startswith("models/") else a for a in args]
    assert _cli("export", "--out", tmp_path / "x", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "x").exists()
