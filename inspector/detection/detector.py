"""The Ultralytics detector: the only module (with the fast backends) that touches Ultralytics.

``load_detector`` is the factory: it resolves the model file, refuses an untrusted hash, picks the
backend and warms the model up. Ultralytics' ``Results`` never leave this module.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from inspector.core.config import Backend, ModelConfig
from inspector.core.errors import ModelError
from inspector.core.ports import Detector
from inspector.core.types import Detection, Detections, RunSetup
from inspector.detection.card import load_card
from inspector.detection.offline import keep_data_local
from inspector.detection.registry import ModelRegistry, resolve_model

log = logging.getLogger(__name__)


class UltralyticsDetector:
    """YOLO through Ultralytics' own predict (PyTorch for .pt, ONNX Runtime for .onnx)."""

    def __init__(self, path: Path, sha256: str, imgsz: int = 320, conf: float = 0.25, iou: float = 0.5) -> None:
        keep_data_local()
        from ultralytics import YOLO

        self.path = Path(path)
        self.sha256 = sha256
        self.imgsz, self.conf, self.iou = imgsz, conf, iou
        self.input_hw = (imgsz, imgsz)  # the longest side Ultralytics letterboxes to
        self.setup = RunSetup("ultralytics")  # PyTorch's own threads; not tunable
        try:
            if self.path.suffix.lower() == ".pt":  # never the file itself: a network rebuilt from its tensors
                import tempfile

                from inspector.detection.checkpoint import rebuild

                with tempfile.TemporaryDirectory(prefix="inspector-model-") as tmp:
                    self._model = YOLO(str(rebuild(self.path, Path(tmp) / self.path.name)), task="detect")
            else:
                self._model = YOLO(str(self.path), task="detect")
            names = self._model.names
        except ModelError:
            raise
        except Exception as e:  # corrupt pickles and foreign files raise many kinds
            raise ModelError(f"cannot load model {self.path}: the file is corrupt or not a YOLO model "
                             f"({type(e).__name__}).") from e
        self.classes = tuple(names[i] for i in sorted(names))
        self.name = self.path.parent.name if self.path.parent.name != "models" else self.path.stem
        self.detect(np.zeros((imgsz, imgsz, 3), np.uint8))  # warm-up

    def detect(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        try:
            r = self._model.predict(image, imgsz=self.imgsz, conf=self.conf, iou=self.iou, verbose=False,
                                    device="cpu")[0]
        except Exception as e:
            raise ModelError(f"inference failed: {type(e).__name__}: {e}") from e
        b = r.boxes
        xyxy = b.xyxy.cpu().numpy().astype(float)
        confs = b.conf.cpu().numpy().astype(float)
        cls = b.cls.cpu().numpy().astype(int)
        items = tuple(
            Detection(int(c), self.classes[int(c)], float(min(max(p, 0.0), 1.0)), *map(float, box))
            for box, p, c in zip(xyxy, confs, cls, strict=True)
        )
        ms = (time.perf_counter() - t0) * 1000
        return Detections(items, int(image.shape[1]), int(image.shape[0]), ms, self.sha256)


def available_backends() -> list[Backend]:
    """Backends that can run here, fastest first."""
    out = []
    for mod, backend in (("openvino", Backend.OPENVINO), ("onnxruntime", Backend.ONNXRUNTIME)):
        try:
            __import__(mod)
            out.append(backend)
        except ImportError:
            pass
    out.append(Backend.ULTRALYTICS)
    return out


def pick_model(cfg: ModelConfig) -> tuple[Path, Backend]:
    """The exact model file and backend a configuration means (ONNX preferred where it can run)."""
    backend = Backend(cfg.backend)
    if backend == Backend.AUTO:
        backend = available_backends()[0]
    prefer = (".pt", ".onnx") if backend == Backend.ULTRALYTICS else (".onnx", ".xml", ".pt")
    path = resolve_model(cfg.path, prefer)
    if path.suffix.lower() == ".pt" and backend != Backend.ULTRALYTICS:
        onnx = path.with_suffix(".onnx")
        if onnx.exists():
            path = onnx
        elif Backend(cfg.backend) == Backend.AUTO:
            backend = Backend.ULTRALYTICS
        else:
            raise ModelError(f"the {backend.value} backend needs an ONNX file; export one with "
                             f"'inspector export --model {path} --format onnx'.")
    if path.suffix.lower() == ".xml" and backend != Backend.OPENVINO:
        if Backend(cfg.backend) != Backend.AUTO:
            raise ModelError(f"{path.name} is an OpenVINO model: use the openvino backend.")
        backend = Backend.OPENVINO
    return path, backend


def load_detector(cfg: ModelConfig, conf: float, registry: ModelRegistry | None = None) -> Detector:
    """Build the configured detector on a trusted model file, warmed up."""
    registry = registry or ModelRegistry()
    path, backend = pick_model(cfg)
    sha = registry.check(path)
    imgsz = model_imgsz(path, registry.trusted(), cfg.imgsz)  # the size the model was trained at
    log.info("loading %s with the %s backend (sha256 %s)", path, backend.value, sha[:12])
    if is_anomaly_model(path):
        from inspector.detection.anomaly import AnomalyDetector

        if backend == Backend.ULTRALYTICS:
            raise ModelError(f"{path.name} is an anomaly model: run it with the openvino or onnxruntime backend.")
        return AnomalyDetector(path, sha, backend=backend.value, conf=conf, threads=cfg.threads)
    if backend == Backend.ULTRALYTICS:
        return UltralyticsDetector(path, sha, imgsz, conf, cfg.iou)
    from inspector.detection.setup import choice

    threads, precision, name, streams = cfg.threads, cfg.precision, backend.value, 1
    variant = trusted_int8_variant(path, registry)
    tuned, shown = choice(sha, Backend(cfg.backend).value, cfg.threads, cfg.precision, path.suffix.lower(),
                          int8_ok=variant is not None)
    if tuned is not None and tuned.backend in {b.value for b in available_backends()}:
        name, precision, threads, streams = tuned.backend, tuned.precision, tuned.threads, tuned.streams
        log.info("tuned for this machine: %s", tuned.label)
    # ``tune=shown``: what the health panel and the run's summary show
    return setup_detector(path, sha, variant, backend=name, precision=precision, threads=threads, streams=streams,
                          imgsz=imgsz, conf=conf, iou=cfg.iou, tune=shown)


def model_imgsz(path: Path, trusted, default: int) -> int:
    """The image size a trusted model file was trained at: from its card when the card is trusted too, else from
    the file itself (a ``.pt``'s training arguments, read as data; a fixed-size ONNX/OpenVINO input wins anyway)."""
    from inspector.detection.registry import trusted_card

    card = trusted_card(path, trusted)
    size = card.imgsz if card is not None else None
    if not size and path.suffix.lower() == ".pt":
        from inspector.detection.checkpoint import read_checkpoint

        args = read_checkpoint(path).plain.get("train_args") or {}
        size = args.get("imgsz") if isinstance(args, dict) else None
    ok = isinstance(size, int) and not isinstance(size, bool) and 32 <= size <= 8192
    return size if ok else default


def is_anomaly_model(path: Path) -> bool:
    """An exported anomaly model (``inspector train --kind anomaly``) rather than a YOLO detector."""
    card = load_card(path)
    if card is not None and card.task == "anomaly":
        return True
    if path.suffix.lower() != ".onnx":
        return False
    from inspector.detection.anomaly import anomaly_metadata

    return anomaly_metadata(path) is not None


def trusted_int8_variant(path: Path, registry: ModelRegistry) -> tuple[Path, str] | None:
    """The model's INT8 variant and its hash, when its card names one and the registry trusts it."""
    from inspector.detection.registry import int8_variant

    variant = int8_variant(path)
    if variant is None:
        return None
    try:
        return variant, registry.check(variant)
    except ModelError:
        log.warning("%s names an INT8 variant %s that is not trusted here: not used", path.name, variant.name)
        return None


def setup_detector(path: Path, sha: str, variant: tuple[Path, str] | None, *, precision: str, **kw):
    """A FastDetector for one inference set-up (the tune's candidates, the station's model): "int8" runs the
    model's trusted INT8 variant (``trusted_int8_variant``; its other layers in f32), the rest the model itself."""
    from inspector.detection.fast import FastDetector

    if precision != "int8":
        return FastDetector(path, sha, precision=precision, **kw)
    if variant is None:
        raise ModelError(f"{path.name} has no trusted INT8 variant to run")
    return FastDetector(variant[0], variant[1], precision="f32", quantised=True, **kw)
