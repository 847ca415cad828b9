"""The exported anomaly model as a ``Detector``: a score per picture, a heat map, a box around each hot region.

The ONNX graph (``inspector.training.anomaly.export_onnx``) takes the picture resized whole to its input size
(uint8 BGR NHWC) and gives ``score`` (1,) and ``heatmap`` (1, 1, h, w) in [0, 1], 0.5 at the threshold set on
held-out good parts. Each region of the map at or above ``conf`` (the recipe's lowest rule) becomes one
``Detection`` labelled ``anomaly`` whose confidence is the region's peak, so the recipe, the review screen,
reports and the training export treat it as they treat a detector's box.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspector.core.errors import ModelError
from inspector.core.privacy import block_openvino_telemetry
from inspector.core.types import Detection, Detections, RunSetup

log = logging.getLogger(__name__)

LABEL = "anomaly"
BACKENDS = ("openvino", "onnxruntime")


def anomaly_metadata(path: Path) -> dict[str, str] | None:
    """The ONNX metadata of an anomaly model, or None when the file is not one."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - protobuf raises many kinds on a corrupt file
        return None
    meta = {p.key: p.value for p in model.metadata_props}
    return meta if meta.get("inspector_task") == "anomaly" else None


class AnomalyDetector:
    """A ``Detector`` on an exported anomaly model (ONNX Runtime or OpenVINO, f32). One per thread."""

    def __init__(self, path: Path, sha256: str, backend: str = "openvino", conf: float = 0.25,
                 threads: int = 0) -> None:
        self.path = Path(path)
        self.sha256 = sha256
        self.backend = str(getattr(backend, "value", backend))
        if self.backend not in BACKENDS:
            raise ModelError(f"unknown inference backend {self.backend!r} for an anomaly model; use one of "
                             f"{', '.join(BACKENDS)}.")
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"expected conf in [0, 1], got {conf!r}")
        meta = anomaly_metadata(self.path)
        if meta is None:
            raise ModelError(f"{self.path} is not an anomaly model: train one with 'inspector train --kind anomaly'.")
        self.conf = float(conf)
        self.size = int(meta.get("imgsz", "256"))
        self.input_hw = (self.size, self.size)
        self.classes: tuple[str, ...] = (LABEL,)
        self.task = "anomaly"
        self.name = self.path.parent.name if self.path.parent.name not in ("models", "") else self.path.stem
        if threads <= 0:
            from inspector.detection.fast import auto_threads

            threads = auto_threads()
        self.setup = RunSetup(self.backend, "f32", threads, 1)  # what it runs on, fixed here
        self._run = self._openvino(threads) if self.backend == "openvino" else self._onnxruntime(threads)
        self.score(np.full((self.size, self.size, 3), 128, np.uint8))  # warm-up

    def _onnxruntime(self, threads: int):
        import onnxruntime as ort  # type: ignore[import-untyped]

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"cannot load model {self.path}: the file is corrupt or not an ONNX model "
                             f"({type(e).__name__}).") from e

        def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            score, heat = sess.run(None, {"image": x})
            return score, heat
        return run

    def _openvino(self, threads: int):
        block_openvino_telemetry()
        import openvino as ov  # type: ignore[import-untyped]

        core = ov.Core()
        try:
            compiled = core.compile_model(str(self.path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                  "INFERENCE_PRECISION_HINT": "f32",
                                                                  "INFERENCE_NUM_THREADS": threads})
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"OpenVINO cannot load {self.path} ({type(e).__name__}: {e}).") from e
        req: Any = compiled.create_infer_request()

        def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            res = req.infer({0: x})
            return res[compiled.output(0)], res[compiled.output(1)]
        return run

    def score(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        """(score, heat map h x w float32) of one BGR uint8 picture."""
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3 and image.size > 0):
            raise ValueError(f"expected a non-empty HxWx3 uint8 BGR image, got "
                             f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
        x = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)[None]
        try:
            score, heat = self._run(np.ascontiguousarray(x))
        except Exception as e:  # noqa: BLE001 - runtime failures of either backend
            raise ModelError(f"inference failed on the {self.backend} backend: {type(e).__name__}: {e}") from e
        return float(score.reshape(-1)[0]), np.asarray(heat, np.float32).reshape(heat.shape[-2:])

    def detect(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        score, heat = self.score(image)
        h, w = image.shape[:2]
        items = hot_regions(heat, self.conf, w, h)
        ms = (time.perf_counter() - t0) * 1000
        return Detections(items, w, h, ms, self.sha256, score=score, heatmap=heat)


def hot_regions(heat: np.ndarray, floor: float, width: int, height: int) -> tuple[Detection, ...]:
    """One box (in picture pixels) around each 8-connected region of the map at or above ``floor``, with the
    region's peak as its confidence; the hottest first."""
    hot = (heat >= floor).astype(np.uint8)
    if not hot.any():
        return ()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    sx, sy = width / heat.shape[1], height / heat.shape[0]
    out = []
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        peak = float(heat[labels == i].max())
        out.append(Detection(0, LABEL, min(max(peak, 0.0), 1.0), x * sx, y * sy, (x + bw) * sx, (y + bh) * sy))
    return tuple(sorted(out, key=lambda d: -d.confidence))
