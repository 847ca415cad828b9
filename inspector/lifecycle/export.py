"""Export a trained YOLO model for the fast CPU backends: static FP32 ONNX, and calibrated INT8.

``export_onnx`` goes through Ultralytics (static shape, opset 17, simplified), so the file carries
the class names in its metadata. ``export_int8`` quantises that ONNX file post-training with NNCF on
calibration images, leaving the box-decoding tail of the head in float. Ultralytics never reads the ``.pt``
itself: the gate (``inspector.detection.checkpoint.rebuild``) writes a private copy rebuilt from its tensors.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.core.errors import ModelError
from inspector.detection.card import ModelCard
from inspector.detection.checkpoint import rebuild
from inspector.detection.offline import keep_data_local
from inspector.detection.outputs import check_new_files

if TYPE_CHECKING:
    from inspector.training.datasets import Dataset, LabelledImage

log = logging.getLogger(__name__)

OPSET = 17


def export_onnx(pt: Path, imgsz: int, out: Path | None = None) -> Path:
    """Export ``pt`` to a static-shape ONNX file (default: beside it, same stem); return its path."""
    pt = Path(pt)
    if not pt.is_file():
        raise ModelError(f"model file not found: {pt}")
    if imgsz < 32 or imgsz % 32:
        raise ModelError(f"image size {imgsz} must be a multiple of 32 (the model's stride).")
    out = Path(out) if out is not None else pt.with_suffix(".onnx")
    keep_data_local()
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory(prefix="inspector-export-") as tmp:
        # export from a private copy rebuilt from the tensors: Ultralytics writes beside its input, and a pickle
        # (even of layer classes only) can call code; nothing in the user's file is called
        src = rebuild(pt, Path(tmp) / pt.name, shown=pt, train_args={"imgsz": imgsz})
        try:
            made = YOLO(str(src), task="detect").export(format="onnx", imgsz=imgsz, dynamic=False, simplify=True,
                                                        opset=OPSET, half=False, int8=False, nms=False,
                                                        device="cpu", verbose=False)
        except Exception as e:  # noqa: BLE001 - corrupt pickles and foreign files raise many kinds
            raise ModelError(f"cannot export {pt} to ONNX: {type(e).__name__}: {e}") from e
        out.parent.mkdir(parents=True, exist_ok=True)
        _replace(Path(made), out)
    log.info("exported %s to %s (%d px)", pt, out, imgsz)
    return out


def _replace(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` without ever leaving a half-written ``dst``."""
    part = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, part)
    part.replace(dst)


# What stays in float. The box-decoding tail of the YOLO head (DFL softmax/conv, anchor arithmetic,
# concat, class sigmoid) is cheap, and 8-bit box offsets cost accuracy. The head's convolutions are
# quantised: leaving them in float, as Ultralytics' INT8 export does, keeps a third of the compute
# in FP32 and its INT8 model hardly faster than FP32. "tail+stem" also keeps the first layers in
# float (where NNCF's accuracy-aware ranking found the most sensitive quantisers); with histogram
# ranges it was not needed on our parts model, so it is an option, not the default.
_KEEP_FLOAT = {
    "tail": [r"{head}/(?!cv[234]\.).*"],
    "tail+stem": [r"{head}/(?!cv[234]\.).*", r"/model\.[01]/.*", r"/model\.2/cv1/.*"],
    "head": [r"{head}/.*"],  # all of the head, like Ultralytics' own INT8 export
}
MIN_CALIBRATION = 10
CALIBRATION_IMAGES = 300  # how many images calibrate by default (a larger set is thinned evenly)


def export_int8(onnx_path: Path, calibration_images: list[Path], out: Path | None = None,
                *, subset_size: int = CALIBRATION_IMAGES, keep_float: str = "tail") -> Path:
    """Quantise an FP32 ONNX detector to INT8 (static, post-training); return the new model's .xml.

    NNCF quantises the model as OpenVINO reads it, with activation ranges chosen from histograms
    (not the extremes: outliers would squeeze the faint differences that show a scratch or a stain
    into a few levels), per-channel symmetric weights and asymmetric activations (preset MIXED).
    On a snapshot of our parts model (val mAP50 0.758 in FP32) this lost nothing (0.789), where
    min/max-style ranges lost 0.02-0.08 (and NNCF's ONNX backend, same settings, lost more). On the
    shipped parts-v2 (mAP50 0.970 on 300 fresh parts) 300 calibration images cost 0.009, 200 cost 0.012;
    keeping the stem in float too ("tail+stem") cost 0.005 but ran about 3% slower. The result
    is an OpenVINO IR (``.xml`` + ``.bin``, default ``<stem>_int8.xml`` beside the ONNX file) that
    FastDetector runs with the openvino backend on the CPU's VNNI/AMX int8 kernels; the .xml keeps
    the ONNX metadata (class names) and the SHA-256 of its .bin, which FastDetector checks, so
    trusting the .xml's hash trusts the pair. ``calibration_images``: ~300 images like those to be
    inspected (the training images); more than ``subset_size`` are thinned evenly.
    """
    import cv2
    import numpy as np

    from inspector.detection.fast import META_KEY, block_openvino_telemetry, onnx_metadata
    from inspector.detection.letterbox import Letterbox
    from inspector.detection.registry import sha256_file

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"model file not found: {onnx_path}")
    if keep_float not in _KEEP_FLOAT:
        raise ValueError(f"expected keep_float in {sorted(_KEEP_FLOAT)}, got {keep_float!r}")
    images = [Path(p) for p in calibration_images]
    if len(images) > subset_size:
        images = [images[i * len(images) // subset_size] for i in range(subset_size)]
    if len(images) < MIN_CALIBRATION:
        raise ModelError(f"INT8 calibration needs at least {MIN_CALIBRATION} images like the ones to inspect; "
                         f"got {len(images)}.")
    out = Path(out) if out is not None else onnx_path.with_name(f"{onnx_path.stem}_int8.xml")
    if out.suffix != ".xml":
        raise ValueError(f"expected an .xml output path (OpenVINO IR), got {out}")
    meta = onnx_metadata(onnx_path)  # a clear ModelError on a corrupt file
    block_openvino_telemetry()
    import nncf  # type: ignore[import-untyped]
    import openvino as ov  # type: ignore[import-untyped]
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters  # type: ignore[import-untyped]
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet  # type: ignore[import-untyped]

    try:
        model = ov.Core().read_model(str(onnx_path))
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"cannot load model {onnx_path}: {type(e).__name__}; export it again.") from e
    shape = model.input(0).get_partial_shape()
    if len(model.inputs) != 1 or shape.is_dynamic or len(shape) != 4:
        raise ModelError(f"{onnx_path} has no fixed input size; export it with a static shape first.")
    letterbox = Letterbox((shape[2].get_length(), shape[3].get_length()))
    head = _head_prefix([op.get_friendly_name() for op in model.get_ordered_ops()], onnx_path)

    def blob(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ModelError(f"cannot read calibration image {path}.")
        canvas, _ = letterbox(image)  # exactly what FastDetector feeds the model
        return (canvas[:, :, ::-1].transpose(2, 0, 1)[None] / np.float32(255)).astype(np.float32)

    try:
        quantised = nncf.quantize(
            model, nncf.Dataset(images, blob), preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(images), fast_bias_correction=True,
            ignored_scope=nncf.IgnoredScope(patterns=[p.format(head=re.escape(head)) for p in _KEEP_FLOAT[keep_float]],
                                          validate=False),
            advanced_parameters=AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.HISTOGRAM))
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - NNCF fails in many ways on foreign graphs
        raise ModelError(f"INT8 quantisation of {onnx_path} failed: {type(e).__name__}: {e}") from e
    for key, value in meta.items():
        quantised.set_rt_info(value, [META_KEY, key])
    quantised.set_rt_info(f"int8 static, nncf {nncf.__version__}, {len(images)} calibration images, "
                          f"float {keep_float}", [META_KEY, "quantization"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part.xml")
    ov.save_model(quantised, str(tmp), compress_to_fp16=False)
    # record the weights' hash in the graph file, then save again: the weights do not change
    weights_sha = sha256_file(tmp.with_suffix(".bin"))
    quantised.set_rt_info(weights_sha, [META_KEY, "weights_sha256"])
    ov.save_model(quantised, str(tmp), compress_to_fp16=False)
    if sha256_file(tmp.with_suffix(".bin")) != weights_sha:
        raise ModelError("OpenVINO wrote different weights twice; cannot record their hash.")
    tmp.with_suffix(".bin").replace(out.with_suffix(".bin"))
    tmp.replace(out)
    log.info("wrote INT8 model %s (%d calibration images)", out, len(images))
    return out


def _head_prefix(names: list[str], path: Path) -> str:
    """Name prefix of the Detect head's nodes (``/model.23`` in YOLO11): the module holding the DFL."""
    for name in names:
        m = re.match(r"(.*/model\.\d+)/dfl/", name)
        if m:
            return m.group(1)
    raise ModelError(f"{path} does not look like an Ultralytics YOLO detector (no DFL in its head); "
                     "INT8 export supports YOLOv8/YOLO11 detection models.")


# ---- `inspector export`: a new folder with its own card, never over a trusted model --------------------------

ONNX_F32, OPENVINO_INT8 = "onnx-f32", "openvino-int8"


def default_export_dir(model: Path, int8: bool) -> Path:
    """A new folder beside the model's folder: ``models/parts-v2/parts-v2.pt`` -> ``models/parts-v2-onnx-f32``."""
    model = Path(model)
    return model.parent.parent / f"{model.stem}-{OPENVINO_INT8 if int8 else ONNX_F32}"


def export_file_names(model: Path, int8: bool) -> tuple[str, ...]:
    """What an export of ``model`` writes into its folder: the model file(s) and its card."""
    stem = Path(model).stem
    files = (f"{stem}_int8.xml", f"{stem}_int8.bin") if int8 else (f"{stem}.onnx",)
    return (*files, "card.json", "card.md")


def export_model(pt: Path, out: Path, *, trusted: Collection[str], imgsz: int, int8: bool = False,
                 calibration: Sequence[Path] = (), subset_size: int = CALIBRATION_IMAGES,
                 held_out: Sequence[LabelledImage] = (), dataset: Dataset | None = None, data_name: str = "",
                 force: bool = False, command: str = "") -> ModelCard:
    """Export the trusted ``pt`` into the folder ``out`` (FP32 ONNX, or INT8 OpenVINO IR) with its own card.

    Nothing is written until the export has succeeded; then the files are moved into ``out``. A folder
    holding a trusted model is refused (even with ``force``), an existing file unless ``force``. With
    ``held_out`` images (and their ``dataset``) the card records mAP50 of the source and of the export
    on them. The new model is not trusted: an authorised user trusts it with ``inspector model add``.
    """
    from inspector.detection.registry import sha256_file, trusted_card

    pt, out = Path(pt), Path(out)
    if sha256_file(pt) not in trusted:
        raise ModelError(f"refusing to export {pt}: its SHA-256 is not in the model registry of this station's "
                         "database, so its card's provenance cannot be vouched for; a signed-in admin can trust it "
                         "with 'inspector model add FILE --user NAME'.")
    names = export_file_names(pt, int8)
    check_new_files(out, names, trusted, force)
    source_sha = sha256_file(pt)
    with tempfile.TemporaryDirectory(prefix="inspector-export-") as tmp:
        work = Path(tmp)
        onnx = export_onnx(pt, imgsz, work / f"{pt.stem}.onnx")
        model = export_int8(onnx, list(calibration), work / names[0], subset_size=subset_size) if int8 else onnx
        accuracy = _compare(pt, source_sha, model, imgsz, dataset, held_out) if held_out and dataset else None
        made = [work / n for n in names[:-2]]
        check_new_files(out, names, trusted, force)  # again: the export took a while
        out.mkdir(parents=True, exist_ok=True)
        for f in made:
            _replace(f, out / f.name)
    card = _export_card(trusted_card(pt, trusted), pt, source_sha, [out / f.name for f in made], imgsz=imgsz,
                        int8=int8,
                        calibration=(data_name, min(len(calibration), subset_size)) if int8 else None,
                        accuracy=accuracy, command=command)
    from inspector.detection.card import write_card

    write_card(out, card)
    log.info("exported %s to %s (%s, not trusted yet)", pt, out, card.export.precision)
    return card


def _compare(pt: Path, sha: str, exported: Path, imgsz: int, dataset: Dataset,
             images: Sequence[LabelledImage]) -> dict:
    """mAP50 of the source model and of its export on the same held-out parts."""
    from inspector.core.config import RecipeConfig
    from inspector.detection.detector import UltralyticsDetector
    from inspector.detection.fast import FastDetector
    from inspector.inspection.rules import Recipe
    from inspector.training.evaluation import evaluate

    recipe = Recipe(RecipeConfig())
    source = evaluate(UltralyticsDetector(pt, sha, imgsz, conf=0.001), dataset, tuple(images), recipe)
    backend = "openvino" if exported.suffix == ".xml" else "onnxruntime"
    export = evaluate(FastDetector(exported, "", backend=backend, imgsz=imgsz, conf=0.001), dataset,
                      tuple(images), recipe)
    return {"images": len(images), "source_map50": round(source.map50, 4), "export_map50": round(export.map50, 4),
            "source_backend": "ultralytics", "export_backend": backend}


def _export_card(source_card: ModelCard | None, pt: Path, source_sha: str, files: list[Path], *, imgsz: int,
                 int8: bool, calibration: tuple[str, int] | None, accuracy: dict | None, command: str) -> ModelCard:
    """The exported model's card: what it was made from and how, and what it measured against its source."""
    import datetime as dt
    import platform

    from inspector.detection.card import CardExport, CardFile
    from inspector.detection.registry import sha256_file

    src = source_card if source_card is not None else ModelCard(name=pt.stem, architecture="?", base="?", data="?")
    return ModelCard(
        name=files[0].parent.name, task=src.task, classes=src.classes, imgsz=imgsz,
        architecture=src.architecture or "?", base=src.base or "?", data=src.data or "?", data_note=src.data_note,
        epochs_planned=src.epochs_planned, epochs_done=src.epochs_done, train_seconds=src.train_seconds,
        command=command, date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        auto_trust=False,  # a card beside the shipped ones must not trust its files: `inspector model add` does
        export=CardExport(source=str(pt.resolve()), source_sha256=source_sha, format="openvino" if int8 else "onnx",
                          precision="int8" if int8 else "f32",
                          calibration={"data": calibration[0], "images": calibration[1]} if calibration else None,
                          accuracy=accuracy),
        files=tuple(CardFile(f.name, sha256_file(f), f.stat().st_size) for f in files))
