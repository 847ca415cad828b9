"""What a detector runs on is one typed value fixed at construction (``detector.setup``), never probed."""

from __future__ import annotations

import dataclasses

import pytest

from inspector.core.types import RunSetup


@pytest.mark.parametrize("kw, says", [
    ({"backend": ""}, "a backend name"),
    ({"backend": "openvino", "precision": "fp8"}, "a precision in"),
    ({"backend": "openvino", "threads": -1}, "threads >= 0"),
    ({"backend": "openvino", "streams": 0}, "streams >= 1"),
])
def test_a_setup_that_cannot_run_is_refused(kw: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        RunSetup(**kw)


def test_a_setup_is_frozen_and_shows_what_runs() -> None:
    s = RunSetup("openvino", "int8", 4, 2, {"status": "applied"})
    assert s.running == {"backend": "openvino", "precision": "int8", "threads": 4, "streams": 2}
    assert s.label == "openvino int8 x4 2 streams" and RunSetup("onnxruntime", threads=3).label == "onnxruntime f32 x3"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.precision = "f32"  # type: ignore[misc]


def test_the_timeout_wrapper_carries_the_inner_setup() -> None:
    from inspector.inspection.pipeline import TimedDetector
    from tests.conftest import ScriptedDetector

    inner = ScriptedDetector([[]])
    det = TimedDetector(inner, timeout_s=1.0)
    assert det.setup is inner.setup and det.setup.backend == "scripted"


def test_the_fast_detector_fixes_its_setup_when_built(tmp_path) -> None:
    """The shipped ONNX model on ONNX Runtime: the set-up says f32, one stream, the threads asked, no tune."""
    from pathlib import Path

    pytest.importorskip("onnxruntime")
    from inspector.detection.fast import FastDetector

    onnx = Path(__file__).resolve().parents[1] / "models" / "parts-v2" / "parts-v2.onnx"
    det = FastDetector(onnx, "f00d", backend="onnxruntime", threads=2, precision="bf16", streams=3,
                       tune={"status": "fixed by the configuration"})
    assert det.setup == RunSetup("onnxruntime", "f32", 2, 1, {"status": "fixed by the configuration"})
    assert not hasattr(det, "precision") and not hasattr(det, "tune")
