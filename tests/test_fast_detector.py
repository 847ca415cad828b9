"""FastDetector gives what Ultralytics' predict gives, on both runtimes, without torch or Ultralytics."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.core.errors import ModelError
from inspector.detection.fast import FastDetector, parse_names
from inspector.detection.letterbox import Letterbox
from inspector.detection.nms import MAX_WH, nms

BACKENDS = ("onnxruntime", "openvino")
IMGSZ = 160


@dataclass(frozen=True)
class Tiny:
    pt: Path
    onnx: Path
    lively_pt: Path  # the same network with its BatchNorm statistics measured on images: many boxes
    lively: Path
    classes: tuple[str, ...]
    images: tuple[Path, ...]


def _liven(pt: Path, images: list[Path], out: Path) -> None:
    """Recalibrate a barely trained model's BatchNorm statistics on real images, lift its class logits.

    After one epoch from scratch the features fade out layer by layer (PyTorch's default conv init
    shrinks them), so the model outputs the same few boxes whatever the image, which would leave
    NMS and the box mapping untested. With BN statistics measured on images each layer passes a
    unit-variance signal on; the detections then depend on the image: hundreds of diverse,
    overlapping boxes of every class, from a real network and a real export.
    """
    import torch

    ckpt = torch.load(pt, map_location="cpu", weights_only=False)
    model = (ckpt.get("ema") or ckpt["model"]).float()
    batch = np.stack([cv2.resize(cv2.imread(str(p)), (IMGSZ, IMGSZ))[:, :, ::-1].transpose(2, 0, 1) for p in images])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batch
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(batch).float() / 255)
        for branch in model.model[-1].cv3:
            branch[-1].bias += 4.0  # class logits from about -8 to about -4
    model.eval()
    ckpt["model"], ckpt["ema"] = model.half(), None
    torch.save(ckpt, out)


def build_tiny(root: Path, pt: Path, data: Path) -> Tiny:
    """The session's tiny trained model (conftest's ``tiny_model``), its livened twin, and 10 frames.

    Built once under ``root`` and reused by every module that asks.
    """
    from inspector.lifecycle.export import export_onnx
    from inspector.sources.synth import write_dataset

    if not (root / "lively.onnx").exists():
        write_dataset(root / "frames", 10, 77)
        _liven(pt, sorted((data / "images").glob("*.jpg"))[:16], root / "lively.pt")
        export_onnx(root / "lively.pt", IMGSZ)
    card = json.loads((pt.parent / "card.json").read_text())
    return Tiny(pt, pt.with_suffix(".onnx"), root / "lively.pt", root / "lively.onnx",
                tuple(card["classes"]), tuple(sorted((root / "frames" / "images").glob("*.jpg"))))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model: Path, synth_data: Path) -> Tiny:
    return build_tiny(tmp_path_factory.getbasetemp() / "fast-detector", tiny_model, synth_data)


def _test_images(tiny: Tiny) -> list[np.ndarray]:
    """The synthetic frames plus letterbox cases: wide, tall, upscaled, odd sizes."""
    imgs = [cv2.imread(str(p)) for p in tiny.images]
    return imgs + [cv2.resize(imgs[0], (320, 240)), np.ascontiguousarray(imgs[1][:200, :301]),
                   cv2.resize(imgs[2], (123, 457)), cv2.resize(imgs[3], (97, 61)), cv2.resize(imgs[4], (640, 480))]


def _assert_same(got, want, what: str) -> int:
    assert len(got) == len(want), f"{what}: {len(got)} boxes, Ultralytics {len(want)}"
    assert (got.image_width, got.image_height) == (want.image_width, want.image_height)
    for g, w in zip(got, want, strict=True):  # both come sorted by confidence, best first
        assert g.cls == w.cls and g.label == w.label, f"{what}: class {g} vs {w}"
        assert abs(g.confidence - w.confidence) <= 0.01, f"{what}: confidence {g} vs {w}"
        assert max(abs(g.x1 - w.x1), abs(g.y1 - w.y1), abs(g.x2 - w.x2), abs(g.y2 - w.y2)) <= 1.0, f"{what}: {g} vs {w}"
    return len(got)


@pytest.mark.model
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("which,conf", [("lively", 0.02), ("onnx", 0.001)])
def test_matches_ultralytics_predict_on_the_same_onnx(tiny: Tiny, backend: str, which: str, conf: float) -> None:
    from inspector.detection.detector import UltralyticsDetector

    path = getattr(tiny, which)
    ours = FastDetector(path, "abc", backend=backend, imgsz=IMGSZ, conf=conf, iou=0.5)
    ref = UltralyticsDetector(path, "abc", imgsz=IMGSZ, conf=conf, iou=0.5)
    total = sum(_assert_same(ours.detect(im), ref.detect(im), f"{backend} image {i}")
                for i, im in enumerate(_test_images(tiny)))
    assert total >= (300 if which == "lively" else 15), f"only {total} boxes compared"
    print(f"{total} boxes compared")


@pytest.mark.model
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_ultralytics_pytorch_predict(tiny: Tiny, backend: str) -> None:
    """Square frames: PyTorch's minimal-rectangle letterbox is then the same as the static one."""
    from inspector.detection.detector import UltralyticsDetector

    ours = FastDetector(tiny.lively, "abc", backend=backend, imgsz=IMGSZ, conf=0.05)
    ref = UltralyticsDetector(tiny.lively_pt, "abc", imgsz=IMGSZ, conf=0.05)
    total = sum(_assert_same(ours.detect(im), ref.detect(im), f"{backend} vs PyTorch, image {i}")
                for i, im in enumerate(cv2.imread(str(p)) for p in tiny.images))
    assert total >= 30, f"only {total} boxes compared"


@pytest.mark.model
@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_classes_and_reports_the_frame(tiny: Tiny, backend: str) -> None:
    det = FastDetector(tiny.lively, "f00d", backend=backend, imgsz=IMGSZ, conf=0.05)
    assert det.classes == tiny.classes
    assert (det.sha256, det.backend, det.imgsz) == ("f00d", backend, IMGSZ)
    res = det.detect(np.full((90, 130, 3), 40, np.uint8))
    assert (res.image_width, res.image_height, res.model_sha256) == (130, 90, "f00d")
    assert res.inference_ms > 0
    for d in res:
        assert 0 <= d.x1 <= d.x2 <= 130 and 0 <= d.y1 <= d.y2 <= 90
        assert d.label == tiny.classes[d.cls]


@pytest.mark.model
def test_imports_neither_torch_nor_ultralytics(tiny: Tiny) -> None:
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from inspector.detection.fast import FastDetector\n"
        "for b in ('openvino', 'onnxruntime'):\n"
        f"    d = FastDetector(Path({str(tiny.lively)!r}), 'x', backend=b, imgsz={IMGSZ}, conf=0.05)\n"
        "    assert len(d.detect(np.full((120, 200, 3), 90, np.uint8))) >= 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'ultralytics'))\n"
        "print('LOADED', bad)\n"
        "print('TELEMETRY', sys.modules.get('openvino_telemetry', 'absent'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout
    assert "TELEMETRY None" in out.stdout, out.stdout  # openvino_telemetry blocked: nothing can be sent


def _corrupt(kind: str, tiny: Tiny, tmp_path: Path) -> Path:
    p = tmp_path / "model.onnx"
    if kind == "garbage":
        p.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        p.write_bytes(tiny.onnx.read_bytes()[: tiny.onnx.stat().st_size // 2])
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not a model\n")
    elif kind == "missing":
        p = tmp_path / "nowhere.onnx"
    elif kind == "pt":
        p = tiny.pt
    return p


@pytest.mark.model
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty", "text", "missing", "pt"])
def test_unloadable_file_gives_model_error(tiny: Tiny, tmp_path: Path, backend: str, kind: str) -> None:
    path = _corrupt(kind, tiny, tmp_path)
    with pytest.raises(ModelError) as e:
        FastDetector(path, "x", backend=backend, imgsz=IMGSZ)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg and len(msg) < 300


@pytest.mark.model
def test_unknown_backend_and_ir_on_onnxruntime_are_refused(tiny: Tiny, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown inference backend"):
        FastDetector(tiny.onnx, "x", backend="tensorrt")
    xml = tmp_path / "m.xml"
    xml.write_text("<net/>")
    with pytest.raises(ModelError, match="openvino backend"):
        FastDetector(xml, "x", backend="onnxruntime")


@pytest.mark.model
@pytest.mark.parametrize("image", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                   np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10, 4), np.uint8)])
def test_bad_image_is_refused(tiny: Tiny, image: np.ndarray) -> None:
    det = FastDetector(tiny.onnx, "x", backend="onnxruntime", imgsz=IMGSZ)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        det.detect(image)


@pytest.mark.parametrize("shape", [(320, 320), (240, 320), (480, 640), (300, 200), (1000, 37), (160, 160),
                                   (33, 1200), (1, 1)])
def test_letterbox_is_ultralytics_letterbox(shape: tuple[int, int]) -> None:
    from ultralytics.data.augment import LetterBox

    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    lb = Letterbox((320, 320))
    lb(np.zeros((50, 70, 3), np.uint8))  # a previous frame of another size must leave no trace
    canvas, _ = lb(img)
    np.testing.assert_array_equal(canvas, LetterBox((320, 320), auto=False, stride=32)(image=img))


@pytest.mark.parametrize("seed", range(8))
def test_nms_is_torchvision_batched_nms(seed: int) -> None:
    import torch
    import torchvision

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    xy = rng.uniform(0, 300, (n, 2)).astype(np.float32)
    wh = rng.uniform(2, 120, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    cls = rng.integers(0, 3, n).astype(np.float32)
    shifted = boxes + cls[:, None] * np.float32(MAX_WH)
    want = torchvision.ops.nms(torch.from_numpy(shifted), torch.from_numpy(scores), 0.5).numpy()
    np.testing.assert_array_equal(nms(shifted, scores, 0.5, max_det=10_000), want)


@pytest.mark.parametrize("boxes,scores,iou,kept", [
    ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.9, 0.8], 0.5, [0]),          # heavy overlap: the weaker goes
    ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.8, 0.9], 0.5, [1]),          # the better one stays, whatever the order
    ([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], 0.5, [0, 1]),     # apart: both stay
    ([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.5, [0, 1]),        # IoU exactly at the threshold stays
    ([[0, 0, 10, 10]], [0.5], 0.5, [0]),
    (np.zeros((0, 4)), [], 0.5, []),
])
def test_nms_cases(boxes, scores, iou, kept) -> None:
    got = nms(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32), iou)
    assert got.tolist() == kept


@pytest.mark.parametrize("text,want", [
    ("{0: 'scratch', 1: 'dent'}", ("scratch", "dent")),
    ("{1: 'b', 0: 'a'}", ("a", "b")),
    ("['a', 'b']", ("a", "b")),
    ("", None), (None, None), ("{0: os.system('x')}", None), ("42", None), ("{'a': 'b'}", None),
    ("{0: 'a', 2: 'c'}", None), ("{}", None),
])
def test_parse_names(text, want) -> None:
    assert parse_names(text) == want


@pytest.mark.parametrize("preloaded", [False, True])
def test_openvino_sends_no_telemetry(preloaded: bool) -> None:
    """``import openvino`` sends an analytics event unless told otherwise; after the block it sends none.

    The sender is replaced by a recorder, so nothing leaves the machine during the test either.
    """
    code = (
        "import sys\n"
        "from openvino_telemetry.utils import sender\n"
        "calls = []\n"
        "sender.TelemetrySender.send = lambda self, *a, **k: calls.append(a)\n"
        + ("" if preloaded else "del sys.modules['openvino_telemetry']\n")
        + "from inspector.detection.fast import block_openvino_telemetry\n"
        "block_openvino_telemetry()\n"
        "import openvino\n"
        "from openvino.tools.ovc import telemetry_utils\n"
        "telemetry_utils.init_ovc_telemetry('test').send_event('a', 'b', 'c')\n"
        "print('SENT', len(calls))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SENT 0" in out.stdout, out.stdout


@pytest.mark.model
def test_queued_inference_gives_the_same_detections_in_order(tiny: Tiny) -> None:
    """``submit`` (the runner's path) answers exactly as ``detect``, image for image, in order."""
    det = FastDetector(tiny.lively, "abc", backend="openvino", imgsz=IMGSZ, conf=0.02)
    assert det.depth == 2
    imgs = _test_images(tiny)
    want = [det.detect(im) for im in imgs]
    pending, got = [], []
    for im in imgs:
        if len(pending) == det.depth:
            got.append(pending.pop(0).result(5.0))
        pending.append(det.submit(im))
    got += [p.result(5.0) for p in pending]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.items, g.image_width, g.image_height) == (w.items, w.image_width, w.image_height)
        assert g.inference_ms > 0
    assert sum(len(w) for w in want) >= 300


@pytest.mark.model
def test_queue_overflow_is_refused_not_mixed_up(tiny: Tiny) -> None:
    """More images in flight than the detector holds: a clear ModelError, and the queued ones still
    come back right (no buffer is overwritten under a running inference)."""
    det = FastDetector(tiny.lively, "abc", backend="openvino", imgsz=IMGSZ, conf=0.02)
    imgs = _test_images(tiny)[:3]
    # submitted back to back: the queue fills and the next one is refused
    accepted, refused = [], None
    for i in range(200):
        try:
            accepted.append((imgs[i % 3], det.submit(imgs[i % 3])))
        except ModelError as e:
            refused = e
            break
    assert refused is not None and "busy" in str(refused)
    # a finished inference keeps its slot until its result is taken: the refusal comes right after the last slot
    assert len(accepted) == det.depth
    for im, pending in accepted:
        assert pending.result(5.0).items == det.detect(im).items
    assert det.submit(imgs[2]).result(5.0).items == det.detect(imgs[2]).items


@pytest.mark.model
def test_a_finished_result_not_yet_taken_keeps_its_slot(tiny: Tiny) -> None:
    """Found under load: an inference that had finished, its result not yet taken, gave its slot (and output
    buffer) to the next image, so the older part got the newer one's boxes. Now the next image is refused."""
    det = FastDetector(tiny.lively, "abc", backend="openvino", imgsz=IMGSZ, conf=0.02)
    imgs = _test_images(tiny)[:3]
    pending = [det.submit(imgs[i % 3]) for i in range(det.depth)]
    end = time.monotonic() + 30
    while not all(p.done() for p in pending):
        assert time.monotonic() < end
        time.sleep(0.005)
    with pytest.raises(ModelError, match="busy"):
        det.submit(imgs[1])
    for i, p in enumerate(pending):
        assert p.result(5.0).items == det.detect(imgs[i % 3]).items


@pytest.mark.model
def test_onnxruntime_has_no_queue(tiny: Tiny) -> None:
    det = FastDetector(tiny.lively, "abc", backend="onnxruntime", imgsz=IMGSZ, conf=0.02)
    im = cv2.imread(str(tiny.images[0]))
    assert det.depth == 1
    p = det.submit(im)
    assert p.done() and p.result().items == det.detect(im).items
