"""YOLO on OpenVINO or ONNX Runtime without PyTorch or Ultralytics: the fast CPU detector.

Gives what ``UltralyticsDetector`` gives for the same exported model (same letterbox, same
class-wise NMS, boxes mapped back and clipped), at a fraction of the cost: the letterbox canvas
and the input tensor are allocated once, OpenVINO does the BGR->RGB, /255 and NCHW conversion
inside its graph, and ONNX Runtime reads and writes through bound, reused buffers.

Accepted files: a static-shape ``.onnx`` exported by Ultralytics, and with OpenVINO also an
OpenVINO IR ``.xml`` (+ ``.bin``), such as the INT8 model ``inspector.lifecycle.export.export_int8`` writes.
"""

from __future__ import annotations

import ast
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import ModelError
from inspector.core.ports import Ready
from inspector.core.privacy import block_openvino_telemetry
from inspector.core.types import Detection, Detections, RunSetup
from inspector.detection.letterbox import Letterbox
from inspector.detection.nms import MAX_DET, decode, decode_end2end, to_image

log = logging.getLogger(__name__)

BACKENDS = ("openvino", "onnxruntime")
PRECISIONS = ("f32", "bf16")
META_KEY = "inspector_meta"  # rt_info section where export_int8 keeps the ONNX metadata in an IR


def auto_threads() -> int:
    """Inference threads when the user leaves it to us: all usable cores but one, at least one.

    The station also captures, writes the database and draws the screen; and on a small (2-core)
    machine one inference thread measured faster than two for both runtimes as soon as anything
    else ran (ONNX Runtime's two spinning threads halved its frame rate).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def parse_names(text: str | None) -> tuple[str, ...] | None:
    """Ultralytics' ``names`` metadata (``"{0: 'scratch', 1: 'dent'}"``) -> class names by index."""
    if not text:
        return None
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names or sorted(names) != list(range(len(names))):
        return None  # class indices must be 0..n-1
    return tuple(str(names[i]) for i in range(len(names)))


def onnx_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (Ultralytics writes names, stride, imgsz there)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises many kinds on a corrupt file
        raise ModelError(f"cannot load model {path}: the file is corrupt or not an ONNX model "
                         f"({type(e).__name__}); export it again with 'inspector export'.") from e
    return {p.key: p.value for p in model.metadata_props}


def _static_hw(shape: list[Any], path: Path, layout: str) -> tuple[int, int] | None:
    """(h, w) of a static NCHW/NHWC input shape, or None when dynamic."""
    if len(shape) != 4:
        raise ModelError(f"{path}: expected one image input of rank 4, got shape {shape}.")
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    return None


class _OpenVinoRunner:
    """Compiled OpenVINO model with uint8 BGR NHWC input: conversion runs inside the graph."""

    def __init__(self, path: Path, imgsz: int, threads: int, precision: str = "f32", streams: int = 1) -> None:
        block_openvino_telemetry()
        import openvino as ov  # type: ignore[import-untyped]
        from openvino.preprocess import ColorFormat, PrePostProcessor  # type: ignore[import-untyped]

        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses with long texts
            raise ModelError(f"cannot load model {path}: the file is corrupt or not a model OpenVINO reads "
                             f"({type(e).__name__}); export it again with 'inspector export'.") from e
        if len(model.inputs) != 1:
            raise ModelError(f"{path}: expected a detector with one image input, got {len(model.inputs)}.")
        pshape = model.input(0).get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in pshape]
        hw = _static_hw(dims, path, "NCHW") or (imgsz, imgsz)
        if pshape.is_dynamic:
            model.reshape({model.input(0).get_any_name(): [1, 3, hw[0], hw[1]]})
        ppp = PrePostProcessor(model)
        inp = ppp.input(0)
        inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
        inp.model().set_layout(ov.Layout("NCHW"))
        inp.preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        model = ppp.build()
        config: dict[str, Any] = {
            # one stream: each image on all ``threads``; several: that many images at once, ``threads`` shared
            # among them (a small model on few cores keeps each core busier with an image of its own)
            "PERFORMANCE_HINT": "LATENCY" if streams <= 1 else "THROUGHPUT",
            # OpenVINO picks bf16 on CPUs that have it; keep f32 so results match PyTorch
            "INFERENCE_PRECISION_HINT": precision,
        }
        config["INFERENCE_NUM_THREADS"] = threads
        if streams > 1:
            config["NUM_STREAMS"] = streams
        try:
            compiled = core.compile_model(model, "CPU", config)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"OpenVINO cannot compile {path} for this CPU ({type(e).__name__}: {e}).") from e
        self.input_hw = hw
        self.model = model
        self._compiled = compiled
        self._request, self._input = self.request()
        self._output = self._request.get_output_tensor(0)

    def request(self) -> tuple[Any, np.ndarray]:
        """A new infer request on the compiled model, reading its own uint8 NHWC input buffer."""
        import openvino as ov  # type: ignore[import-untyped]

        req = self._compiled.create_infer_request()
        buf = np.zeros((1, self.input_hw[0], self.input_hw[1], 3), np.uint8)
        req.set_input_tensor(ov.Tensor(buf, shared_memory=True))
        return req, buf

    def run(self, canvas: np.ndarray) -> np.ndarray:
        if canvas.ctypes.data != self._input.ctypes.data:
            self._input[0] = canvas
        self._request.infer()
        return self._output.data

    def canvas(self) -> np.ndarray:
        """The input buffer itself: letterboxing into it saves a copy."""
        return self._input[0]


class _Slot:
    """One queued-inference request of an OpenVINO ``FastDetector``, with its own input canvas."""

    def __init__(self, request: Any, buf: np.ndarray, size: tuple[int, int]) -> None:
        self.request = request
        self.letterbox = Letterbox(size, out=buf[0])
        self.output = request.get_output_tensor(0)
        self.in_flight = False  # started and its result not yet taken (or it timed out while running)
        self.abandoned = False  # its result timed out: nobody will take it once the late inference ends

    def free(self) -> bool:
        # only an abandoned inference frees its slot by finishing: a finished one whose result is still to be
        # taken keeps its output buffer until then (a new image there would hand its boxes to the older part)
        if self.in_flight and self.abandoned and self.request.wait_for(0):
            self.in_flight = self.abandoned = False
        return not self.in_flight


class _OpenVinoPending:
    """An image in OpenVINO's queue (``FastDetector.submit``)."""

    def __init__(self, det: FastDetector, slot: _Slot, geo: Any, shape: tuple[int, ...], pre_ms: float) -> None:
        self._det, self._slot, self._geo, self._shape, self._pre_ms = det, slot, geo, shape, pre_ms
        self._taken = False

    def done(self) -> bool:
        return bool(self._slot.request.wait_for(0))

    def result(self, timeout_s: float | None = None) -> Detections:
        if self._taken:
            raise RuntimeError("this result was already taken")
        req = self._slot.request
        try:
            if timeout_s is None:
                req.wait()
            elif not req.wait_for(max(1, int(timeout_s * 1000))):
                self._slot.abandoned = True
                raise ModelError(f"model timeout: no answer within {timeout_s:g} s")
        except ModelError:
            raise  # the slot stays in flight: ``submit`` refuses it until the late inference ends
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError with the plugin's text
            self._slot.in_flight = False
            raise ModelError(f"inference failed on the openvino backend: {type(e).__name__}: {e}") from e
        self._taken = True
        t0 = time.perf_counter()
        # the request's latency includes the wait behind the image before it: when the runtime was busy
        # all along, the time since the previous result is this image's own share
        since = (t0 - self._det._last_result) * 1000 if self._det._last_result else float("inf")
        self._det._last_result = t0
        try:
            return self._det._detections(self._slot.output.data, self._geo, self._shape,
                                         self._pre_ms + min(float(req.latency), since), t0)
        finally:
            self._slot.in_flight = False


class _OnnxRuntimeRunner:
    """ONNX Runtime session on the CPU, reading and writing bound, preallocated buffers."""

    def __init__(self, path: Path, imgsz: int, threads: int) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - InvalidProtobuf, Fail, InvalidGraph, ...
            raise ModelError(f"cannot load model {path}: the file is corrupt or not an ONNX model "
                             f"({type(e).__name__}); export it again with 'inspector export'.") from e
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected a detector with one image input, got {len(inputs)}.")
        hw = _static_hw(list(inputs[0].shape), path, "NCHW")
        if hw is None:
            hw = (imgsz, imgsz)
        self.input_hw = hw
        self.metadata = dict(sess.get_modelmeta().custom_metadata_map)
        self._sess = sess
        self._blob = np.zeros((1, 3, hw[0], hw[1]), np.float32)
        self._planes = self._blob[0]
        self._io = sess.io_binding()
        self._io.bind_cpu_input(inputs[0].name, self._blob)
        oshape = outputs[0].shape
        self._out: np.ndarray | None = None
        if all(isinstance(d, int) for d in oshape):
            self._out = np.empty(oshape, np.float32)
            self._io.bind_ortvalue_output(outputs[0].name, ort.OrtValue.ortvalue_from_numpy(self._out))
        else:
            self._io.bind_output(outputs[0].name, "cpu")

    def run(self, canvas: np.ndarray) -> np.ndarray:
        # BGR HWC uint8 -> RGB CHW float32 / 255, straight into the bound input buffer
        np.divide(canvas[:, :, ::-1].transpose(2, 0, 1), np.float32(255.0), out=self._planes, dtype=np.float32)
        self._sess.run_with_iobinding(self._io)
        if self._out is not None:
            return self._out
        return self._io.get_outputs()[0].numpy()


class FastDetector:
    """A ``Detector`` on OpenVINO or ONNX Runtime; ``detect`` matches Ultralytics' predict.

    ``threads`` 0 means ``auto_threads()``: all cores but one. ``precision`` is OpenVINO's
    inference precision for the layers that are not INT8: "f32" (default) reproduces Ultralytics'
    PyTorch numbers; "bf16" is faster on CPUs with AVX512-BF16/AMX but moves confidences by up to
    about 0.015. The buffers are reused: use one detector per thread.

    ``submit`` (OpenVINO) queues up to ``queue_depth`` images inside the runtime, each with its own
    request and input buffer; ``detect`` uses a request of its own, apart from them.
    """

    def __init__(self, path: Path, sha256: str, backend: str = "openvino", imgsz: int = 320,
                 conf: float = 0.25, iou: float = 0.5, threads: int = 0, max_det: int = MAX_DET,
                 precision: str = "f32", queue_depth: int = 2, streams: int = 1, quantised: bool = False,
                 tune: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.sha256 = sha256
        self.backend = str(getattr(backend, "value", backend))
        if self.backend not in BACKENDS:
            raise ModelError(f"unknown inference backend {self.backend!r}; use one of {', '.join(BACKENDS)}.")
        if not (0.0 <= conf <= 1.0 and 0.0 <= iou <= 1.0):
            raise ValueError(f"expected conf and iou in [0, 1], got conf={conf!r}, iou={iou!r}")
        self.conf, self.iou, self.max_det = float(conf), float(iou), int(max_det)
        if precision not in PRECISIONS:
            raise ValueError(f"expected precision in {PRECISIONS}, got {precision!r}")
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        suffix = self.path.suffix.lower()
        if suffix not in (".onnx", ".xml"):
            raise ModelError(f"{self.path}: the {self.backend} backend loads .onnx files"
                             f"{' and OpenVINO .xml files' if self.backend == 'openvino' else ''}; "
                             f"export one with 'inspector export --model {self.path} --format onnx'.")
        if suffix == ".xml" and self.backend != "openvino":
            raise ModelError(f"{self.path} is an OpenVINO model: load it with the openvino backend.")
        threads = int(threads) if threads and threads > 0 else auto_threads()
        runner: _OpenVinoRunner | _OnnxRuntimeRunner
        if self.backend == "openvino":
            meta = onnx_metadata(self.path) if suffix == ".onnx" else {}
            runner = _OpenVinoRunner(self.path, imgsz, threads, precision, streams)
            queue_depth = max(queue_depth, streams + 1)  # every stream busy while Python finishes one result
            if suffix == ".xml":
                meta = _ir_metadata(runner.model)
                _check_weights(self.path, meta.get("weights_sha256"))
            self._canvas_buffer: np.ndarray | None = runner.canvas()
        else:
            runner = _OnnxRuntimeRunner(self.path, imgsz, threads)
            meta = runner.metadata
            self._canvas_buffer = None
        self._runner = runner
        classes = parse_names(meta.get("names"))
        if not classes:
            raise ModelError(f"{self.path} carries no class names: export it with Ultralytics "
                             "('inspector export') so that its metadata names the classes.")
        self.classes: tuple[str, ...] = classes
        self.end2end = meta.get("end2end", "False") == "True"
        self.imgsz = runner.input_hw[0]
        self.input_hw: tuple[int, int] = runner.input_hw  # (h, w) the model takes: sources decode for it
        # an INT8 model (``quantised``) runs its other layers in ``precision``; ``tune``: what load_detector applied
        self.setup = RunSetup(self.backend, "int8" if quantised else precision if self.backend == "openvino" else "f32",
                              threads, max(1, streams) if self.backend == "openvino" else 1, tune)
        if imgsz != self.imgsz:
            log.info("%s has a fixed input size %s: imgsz %d is not used", self.path.name, runner.input_hw, imgsz)
        self.name = self.path.parent.name if self.path.parent.name not in ("models", "") else self.path.stem
        self._letterbox = Letterbox(runner.input_hw, out=self._canvas_buffer)  # OpenVINO: straight into its input
        shape = tuple(runner.run(self._letterbox.canvas).shape)
        want = "(1, N, 6)" if self.end2end else f"(1, {4 + len(classes)}, N)"
        if len(shape) != 3 or shape[0] != 1 or (shape[2] != 6 if self.end2end else shape[1] != 4 + len(classes)):
            raise ModelError(f"{self.path} is not a YOLO detector for its {len(classes)} classes: "
                             f"its output has shape {shape}, expected {want}.")
        # queued inference (OpenVINO): the next image waits inside the runtime, so the core that runs
        # the model never idles while Python letterboxes, decodes or writes
        self._slots: list[_Slot] = []
        if isinstance(runner, _OpenVinoRunner) and queue_depth > 1:
            self._slots = [_Slot(*runner.request(), runner.input_hw) for _ in range(queue_depth)]
        self.depth = max(1, len(self._slots))
        self._next_slot = 0
        self._last_result = 0.0
        warm = np.full((self.imgsz, self.imgsz, 3), 114, np.uint8)
        for _ in range(2):  # first runs allocate and pick kernels
            self.detect(warm)
        for _ in self._slots:
            self.submit(warm).result()

    @staticmethod
    def _check(image: np.ndarray) -> None:
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3 and image.size > 0):
            raise ValueError(f"expected a non-empty HxWx3 uint8 BGR image, got "
                             f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")

    def detect(self, image: np.ndarray) -> Detections:
        """Boxes on one BGR uint8 HxWx3 image, in its pixels."""
        self._check(image)
        t0 = time.perf_counter()
        canvas, geo = self._letterbox(image)
        try:
            out = self._runner.run(canvas)
        except Exception as e:  # noqa: BLE001 - runtime failures of either backend
            raise ModelError(f"inference failed on the {self.backend} backend: {type(e).__name__}: {e}") from e
        return self._detections(out, geo, image.shape, 0.0, t0)

    def submit(self, image: np.ndarray) -> _OpenVinoPending | Ready:
        """Hand over one image and return at once (OpenVINO; ONNX Runtime answers before returning).

        Up to ``depth`` images may be in flight; take their results in the order they went in.
        """
        if not self._slots:
            return Ready(self.detect(image))
        self._check(image)
        slot = self._slots[self._next_slot]
        if not slot.free():
            raise ModelError("model busy: an earlier inference has not finished (more images in flight than "
                             f"the {self.depth} the detector holds, or one ran over its time limit)")
        t0 = time.perf_counter()
        _, geo = slot.letterbox(image)
        try:
            slot.request.start_async()
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"inference failed on the {self.backend} backend: {type(e).__name__}: {e}") from e
        slot.in_flight, slot.abandoned = True, False
        self._next_slot = (self._next_slot + 1) % len(self._slots)
        return _OpenVinoPending(self, slot, geo, image.shape, (time.perf_counter() - t0) * 1000)

    def _detections(self, out: np.ndarray, geo: Any, shape: tuple[int, ...], extra_ms: float,
                    t0: float) -> Detections:
        """Raw output -> ``Detections``; ``inference_ms`` is ``extra_ms`` plus the time since ``t0``."""
        rows = decode_end2end(out[0], self.conf, self.max_det) if self.end2end \
            else decode(out[0], self.conf, self.iou, self.max_det)
        rows = to_image(rows, geo).tolist()
        classes = self.classes
        items = tuple(Detection(int(c), classes[int(c)], min(max(p, 0.0), 1.0), x1, y1, x2, y2)
                      for x1, y1, x2, y2, p, c in rows)
        ms = extra_ms + (time.perf_counter() - t0) * 1000
        return Detections(items, int(shape[1]), int(shape[0]), ms, self.sha256)


def _ir_metadata(model: Any) -> dict[str, str]:
    """Class names of an OpenVINO IR: kept under ``inspector_meta``, or Ultralytics' ``model_info`` labels."""
    meta: dict[str, str] = {}
    for key in ("names", "end2end", "imgsz", "stride", "quantization", "weights_sha256"):
        if model.has_rt_info([META_KEY, key]):
            meta[key] = model.get_rt_info([META_KEY, key]).astype(str)
    if "names" not in meta and model.has_rt_info(["model_info", "labels"]):
        labels = model.get_rt_info(["model_info", "labels"]).astype(str).split()
        meta["names"] = repr(dict(enumerate(labels)))
    return meta


def _check_weights(xml: Path, expected: str | None) -> None:
    """The .bin beside an IR must be the one its .xml recorded (export_int8 writes the hash)."""
    if not expected:
        log.warning("%s records no hash of its weights file; only the .xml is checked", xml.name)
        return
    from inspector.detection.registry import sha256_file

    if sha256_file(xml.with_suffix(".bin")) != expected:
        raise ModelError(f"refusing to load {xml}: its weights file {xml.with_suffix('.bin').name} is not the one "
                         "it was exported with; export the INT8 model again.")
