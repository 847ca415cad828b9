"""Pictures a stream decoder gives without complaint but that are not a new, whole part: a frozen picture that
flickers, a loop of a few pictures, blocks a decoder smeared to hide damage. Real encoders (ffmpeg) and real
decoding (OpenCV's FFmpeg), the pipeline's own checks; nothing of it is judged PASS."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from inspector.core.config import CameraConfig, QualityConfig, RecipeConfig
from inspector.core.types import Frame, Verdict
from inspector.inspection.pipeline import Pipeline, smeared_share
from inspector.inspection.rules import Recipe
from tests.conftest import ScriptedDetector

needs_ffmpeg = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed (CI installs it)")


def _parts(n: int) -> list[np.ndarray]:
    from inspector.sources.synth import generate

    return [p.image for _, p in generate(n, seed=4242)]


def _noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    """A fresh exposure of the same scene: sensor noise in every pixel."""
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _judge(frames: list[np.ndarray], quality: QualityConfig, live: bool = True, stream: bool = False):
    p = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()), quality)
    return [p.inspect(Frame(img, i, "s", 0.0), live=live, stream=stream) for i, img in enumerate(frames)]


def test_a_frozen_picture_that_flickers_is_frozen():
    """±10 grey levels over one still picture (an auto-exposure hunting over a frozen feed) is not a new part."""
    rng = np.random.default_rng(1)
    still = _parts(1)[0]
    frames = [np.clip(_noisy(still, rng).astype(np.int16) + (10 if i % 2 else -10), 0, 255).astype(np.uint8)
              for i in range(40)]
    v = _judge(frames, QualityConfig(frozen_frames=10))
    assert all(x.verdict == Verdict.PASS for x in v[:10])
    assert all(x.verdict == Verdict.NOT_INSPECTED and "frozen stream" in x.reasons[0] for x in v[10:]), \
        [x.reasons for x in v[10:14]]


def test_a_loop_of_two_pictures_is_caught_and_named():
    rng = np.random.default_rng(2)
    a, b = _parts(2)
    frames = [_noisy(a if i % 2 == 0 else b, rng) for i in range(40)]
    v = _judge(frames, QualityConfig(frozen_frames=10))
    assert all(x.verdict == Verdict.PASS for x in v[:11])  # two new pictures, then 9 repeats
    caught = [x for x in v[11:] if x.verdict == Verdict.NOT_INSPECTED]
    assert len(caught) == len(v) - 11 and all("looped stream" in x.reasons[0] for x in caught), v[11].reasons


def test_a_loop_longer_than_the_memory_is_not_claimed_and_loop_frames_0_compares_the_last_only():
    rng = np.random.default_rng(3)
    parts = _parts(5)
    frames = [_noisy(parts[i % 5], rng) for i in range(30)]
    assert all(x.verdict == Verdict.PASS for x in _judge(frames, QualityConfig(frozen_frames=5, loop_frames=4)))
    assert all(x.verdict == Verdict.PASS for x in _judge(frames, QualityConfig(frozen_frames=5, loop_frames=0)))
    caught = _judge(frames, QualityConfig(frozen_frames=5, loop_frames=5))
    assert sum(x.verdict == Verdict.NOT_INSPECTED for x in caught) == 30 - 9  # 5 new, then the 5th repeat


def test_a_moving_line_of_many_parts_is_never_frozen_nor_smeared():
    rng = np.random.default_rng(4)
    frames = [_noisy(p, rng) for p in _parts(80)]
    v = _judge(frames, QualityConfig(frozen_frames=3), stream=True)
    assert [x.reasons for x in v if x.verdict != Verdict.PASS] == []


def test_a_folder_is_not_checked_for_smears_or_loops():
    """A folder of pictures may hold the same part twice, and a picture with streaks down it: judged."""
    smear = _noisy(_parts(1)[0], np.random.default_rng(7))
    smear[40:200, :] = smear[40:41, :]  # rows repeated down most of the picture
    assert smeared_share(smear) > 0.3
    v = _judge([smear, smear, smear, smear], QualityConfig(frozen_frames=2), live=False)
    assert all(x.verdict == Verdict.PASS for x in v)


def test_a_smeared_picture_is_named_in_a_stream():
    part = _noisy(_parts(1)[0], np.random.default_rng(8))
    smear = part.copy()
    smear[150:, :] = smear[150:151, :]
    v = _judge([smear], QualityConfig(), live=False, stream=True)
    assert v[0].verdict == Verdict.NOT_INSPECTED and "smeared picture" in v[0].reasons[0]
    assert _judge([part], QualityConfig(), live=False, stream=True)[0].verdict == Verdict.PASS
    assert _judge([smear], QualityConfig(max_smeared=0), live=False, stream=True)[0].verdict == Verdict.PASS


def test_real_pictures_and_a_clean_encode_are_not_smeared(tmp_path):
    """What real parts look like (the shipped sample pictures, NEU steel and magnetic tiles when ../shared is
    there) stays under the default limit."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    paths = sorted((root / "sample_images").glob("*.jpg"))
    shared = root.parent / "shared" / "datasets"
    paths += sorted((shared / "neu-det").rglob("*.jpg"))[:150] + sorted((shared / "magnetic-tile").rglob("*.jpg"))[:150]
    shares = [smeared_share(cv2.imread(str(p))) for p in paths]
    assert len(shares) >= 40 and max(shares) <= QualityConfig().max_smeared / 2, max(shares)


def _encode(tmp_path, frames: list[np.ndarray], codec: str, name: str) -> str:
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), f)
    out = tmp_path / name
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-framerate", "10", "-i", str(tmp_path / "f%03d.png"),
                    "-c:v", codec, "-g", "12", "-pix_fmt", "yuv420p", "-f", "mpegts", str(out)],
                   check=True, timeout=120)
    return str(out)


def _damage(src: str, dst: str, amount: int = 2000) -> str:
    """The bit stream with random bytes changed (ffmpeg's noise filter), container left whole."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", src, "-c", "copy", "-bsf:v", f"noise=amount={amount}",
                    "-f", "mpegts", dst], check=True, timeout=120)
    return dst


def _decode(path: str) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


@needs_ffmpeg
def test_an_h264_stream_with_bit_errors_is_not_passed_where_smeared(tmp_path):
    """Decoded without the decoder's words (picture level alone): most damaged pictures are caught as smeared,
    no clean one is."""
    rng = np.random.default_rng(5)
    parts = [_noisy(p, rng, 2.0) for p in _parts(40)]
    clean = _encode(tmp_path, parts, "libx264", "clean.ts")
    noisy = _damage(clean, str(tmp_path / "noisy.ts"))
    q = QualityConfig()
    clean_v = _judge(_decode(clean), q, live=False, stream=True)
    assert [x.reasons for x in clean_v if x.verdict != Verdict.PASS] == []
    noisy_v = _judge(_decode(noisy), q, live=False, stream=True)
    smeared = sum(x.verdict == Verdict.NOT_INSPECTED and "smeared" in x.reasons[0] for x in noisy_v)
    assert smeared >= len(noisy_v) // 3, (smeared, len(noisy_v))


@needs_ffmpeg
def test_a_live_http_stream_with_bit_errors_marks_the_damaged_pictures(tmp_path):
    """Served over HTTP on 127.0.0.1 and read as a live stream: the decoder's complaints reach the pictures."""
    from inspector.sources.live import LiveSource, opencv_opener
    from tests.test_failsafe_pictures import _Served

    rng = np.random.default_rng(6)
    parts = [_noisy(p, rng, 2.0) for p in _parts(40)]
    clean = _encode(tmp_path, parts, "mpeg2video", "clean.ts")
    _damage(clean, str(tmp_path / "noisy.ts"))
    served = _Served(tmp_path)
    cfg = CameraConfig()
    try:
        results = {}
        for name in ("clean.ts", "noisy.ts"):
            src = LiveSource(name, opencv_opener(served.url(name), cfg), cfg.model_copy(update={"max_reconnects": 1}))
            frames = []
            try:
                while (f := src.read()) is not None and len(frames) < 200:
                    if getattr(f, "image", None) is not None:
                        frames.append(f)
            finally:
                src.close()
            results[name] = frames
    finally:
        served.close()
    assert len(results["clean.ts"]) >= 30 and not any(f.error for f in results["clean.ts"])
    damaged = [f for f in results["noisy.ts"] if f.error]
    assert len(damaged) >= 5 and all("damaged" in f.error for f in damaged), [f.error for f in damaged[:3]]
