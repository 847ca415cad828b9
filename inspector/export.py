"""Export a trained YOLO model for the fast CPU backends: static FP32 ONNX, and calibrated INT8.

``export_onnx`` goes through Ultralytics (static shape, opset 17, simplified), so the file carries
the class names in its metadata. ``export_int8`` quantises that ONNX file post-training with NNCF on
calibration images, leaving the box-decoding tail of the head in float.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path

from inspector.errors import ModelError
from inspector.privacy import keep_data_local

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
        # export from a copy: Ultralytics writes beside its input, which may be read-only or shared
        src = Path(tmp) / pt.name
        shutil.copy2(pt, src)
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


# The box-decoding tail of the YOLO head (DFL softmax/conv, anchor arithmetic, concat, class
# sigmoid) stays in float: it is cheap, and 8-bit box offsets cost accuracy. The head's convolutions
# (cv2/cv3 branches) are quantised: leaving them in float, as Ultralytics' INT8 export does, keeps
# a third of the compute in FP32 and the INT8 model no faster than FP32.
_SCOPES = {
    "tail": [r"{head}/(?!cv[234]\.).*"],
    "tail+attn": [r"{head}/(?!cv[234]\.).*", r".*/attn/.*"],  # also the C2PSA attention
    "head": [r"{head}/.*"],  # all of the head, like Ultralytics' own INT8 export
    "tail+stem": [r"{head}/(?!cv[234]\.).*", r"/model\.[01]/.*"],
    "tail+stem2": [r"{head}/(?!cv[234]\.).*", r"/model\.[012]/.*"],
}
MIN_CALIBRATION = 10


def export_int8(onnx_path: Path, calibration_images: list[Path], out: Path | None = None,
                *, keep_float: str = "tail", subset_size: int = 300) -> Path:
    """Quantise an FP32 ONNX detector to INT8 (static, post-training, NNCF); return the new file.

    The result is an INT8 ONNX file (QuantizeLinear/DequantizeLinear pairs, per-channel weights)
    that FastDetector runs on OpenVINO, where it gets the CPU's VNNI/AMX int8 kernels. It keeps the
    source's metadata (class names). ``calibration_images`` are ~100-300 images like those the
    model will see (the training images); more than ``subset_size`` are thinned evenly.
    """
    import cv2
    import numpy as np
    import onnx

    from inspector.fast_detector import block_openvino_telemetry, onnx_metadata
    from inspector.letterbox import Letterbox

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"model file not found: {onnx_path}")
    if keep_float not in _SCOPES:
        raise ValueError(f"expected keep_float in {sorted(_SCOPES)}, got {keep_float!r}")
    images = [Path(p) for p in calibration_images]
    if len(images) > subset_size:
        images = [images[round(i * len(images) / subset_size)] for i in range(subset_size)]
    if len(images) < MIN_CALIBRATION:
        raise ModelError(f"INT8 calibration needs at least {MIN_CALIBRATION} images like the ones to inspect; "
                         f"got {len(images)}.")
    out = Path(out) if out is not None else onnx_path.with_name(f"{onnx_path.stem}_int8.onnx")
    onnx_metadata(onnx_path)  # a clear ModelError on a corrupt file
    model = onnx.load(str(onnx_path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims):
        raise ModelError(f"{onnx_path} has no fixed input size; export it with a static shape first.")
    input_name = model.graph.input[0].name
    head = _head_prefix(model, onnx_path)
    letterbox = Letterbox((dims[2], dims[3]))

    def blob(path: Path) -> dict[str, np.ndarray]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ModelError(f"cannot read calibration image {path}.")
        canvas, _ = letterbox(image)
        return {input_name: (canvas[:, :, ::-1].transpose(2, 0, 1)[None] / np.float32(255)).astype(np.float32)}

    block_openvino_telemetry()
    import nncf  # type: ignore[import-untyped]

    try:
        quantised = nncf.quantize(
            model, nncf.Dataset(images, blob), preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(images), fast_bias_correction=True,
            ignored_scope=nncf.IgnoredScope(patterns=[p.format(head=re.escape(head)) for p in _SCOPES[keep_float]],
                                          validate=False))
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - NNCF fails in many ways on foreign graphs
        raise ModelError(f"INT8 quantisation of {onnx_path} failed: {type(e).__name__}: {e}") from e
    del quantised.metadata_props[:]
    for p in model.metadata_props:
        quantised.metadata_props.add(key=p.key, value=p.value)
    quantised.metadata_props.add(key="quantization", value=f"int8 static (nncf {nncf.__version__}, "
                                 f"{len(images)} calibration images, float {keep_float})")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    onnx.save(quantised, str(part))
    part.replace(out)
    log.info("wrote INT8 model %s (%d calibration images)", out, len(images))
    return out


def _head_prefix(model, path: Path) -> str:
    """Name prefix of the Detect head's nodes (``/model.23`` in YOLO11): the module holding the DFL."""
    for node in model.graph.node:
        m = re.match(r"(.*/model\.\d+)/dfl/", node.name)
        if m:
            return m.group(1)
    raise ModelError(f"{path} does not look like an Ultralytics YOLO detector (no DFL in its head); "
                     "INT8 export supports YOLOv8/YOLO11 detection models.")
