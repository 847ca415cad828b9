"""The pure pipeline: frames that cannot be judged are NOT_INSPECTED, never PASS."""

import numpy as np
import pytest

from inspector.core.config import QualityConfig, RecipeConfig
from inspector.core.errors import ModelError
from inspector.core.types import Frame, Verdict
from inspector.inspection.pipeline import Pipeline
from inspector.inspection.rules import Recipe
from tests.conftest import ScriptedDetector, trusted_registry


def frame(img, seq=0, error=None):
    return Frame(img, seq, "test", 0.0, f"f{seq}", error)


@pytest.mark.parametrize("image, error, reason", [
    (None, "cannot decode x.jpg: not an image or corrupt", "cannot decode"),
    (np.zeros((480, 640, 3), np.uint8), None, "black frame"),
    (np.full((480, 640, 3), 128, np.uint8), None, "blank frame"),
    (np.full((480, 640, 3), 255, np.uint8), None, "blank frame"),
])
def test_unjudgeable_frames(image, error, reason):
    det = ScriptedDetector([[]])
    insp = Pipeline(det, Recipe(RecipeConfig())).inspect(frame(image, error=error))
    assert insp.verdict == Verdict.NOT_INSPECTED
    assert reason in insp.reasons[0]
    assert det.calls == 0, "the model must not be asked about a frame that cannot be judged"


def test_model_error_is_not_inspected(part_image):
    det = ScriptedDetector([ModelError("boom")])
    insp = Pipeline(det, Recipe(RecipeConfig())).inspect(frame(part_image))
    assert insp.verdict == Verdict.NOT_INSPECTED and "model error" in insp.reasons[0]


def test_frozen_live_stream(part_image):
    p = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()), QualityConfig(frozen_frames=3))
    verdicts = [p.inspect(frame(part_image, i), live=True).verdict for i in range(5)]
    assert verdicts == [Verdict.PASS] * 3 + [Verdict.NOT_INSPECTED] * 2
    # a folder of identical images is not a frozen camera
    p2 = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()), QualityConfig(frozen_frames=3))
    assert all(p2.inspect(frame(part_image, i)).verdict == Verdict.PASS for i in range(5))


def test_defect_fails_with_reason(part_image):
    det = ScriptedDetector([[("scratch", 0.91, (10, 10, 40, 20))]])
    insp = Pipeline(det, Recipe(RecipeConfig())).inspect(frame(part_image))
    assert insp.verdict == Verdict.FAIL
    assert insp.reasons[0].startswith("scratch 0.91")
    assert insp.detections.items[0].label == "scratch"


@pytest.mark.model
def test_real_model_on_real_images(tiny_model, synth_data):
    from inspector.core.config import ModelConfig
    from inspector.detection.detector import load_detector
    from inspector.sources.folder import FolderSource

    det = load_detector(ModelConfig(path=tiny_model, backend="ultralytics"), conf=0.001,
                        registry=trusted_registry(tiny_model))
    p = Pipeline(det, Recipe(RecipeConfig()))
    src = FolderSource(synth_data / "images")
    results = [p.inspect(src.read()) for _ in range(5)]
    assert all(r.verdict != Verdict.NOT_INSPECTED for r in results)
    assert all(r.model_sha256 == det.sha256 for r in results)
    assert all(r.detections.image_width == 320 for r in results)


def test_model_timeout_and_busy_are_not_inspected(part_image):
    import threading
    import time

    from inspector.inspection.pipeline import TimedDetector

    release = threading.Event()

    class Stuck(ScriptedDetector):
        def detect(self, image):
            if self.calls == 0:
                self.calls += 1
                release.wait(60)  # stuck until the test lets it go (bounded)
                return super().detect(image)
            return super().detect(image)

    det = TimedDetector(Stuck([[("scratch", 0.9, (1, 1, 9, 9))]]), timeout_s=0.2)
    p = Pipeline(det, Recipe(RecipeConfig()))
    first = p.inspect(frame(part_image, 0))
    second = p.inspect(frame(part_image, 1))
    assert first.verdict == Verdict.NOT_INSPECTED and "timeout" in first.reasons[0]
    assert second.verdict == Verdict.NOT_INSPECTED and "busy" in second.reasons[0]
    release.set()
    end = time.monotonic() + 30
    while not det._busy.done():  # a bounded poll: the stuck inference ends once released
        assert time.monotonic() < end, "the released inference did not end"
        time.sleep(0.01)
    assert p.inspect(frame(part_image, 2)).verdict == Verdict.FAIL
