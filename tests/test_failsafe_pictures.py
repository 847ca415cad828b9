"""Nothing passed that was not seen: real files cut and corrupted here, a real encoder's frozen stream.

Each test would fail on a build that judges a partial picture: a JPEG cut and re-terminated decodes
with libjpeg's grey fill, a damaged video frame decodes smeared, a re-encoded still is not
byte-identical, an 8x8 picture is upscaled into a confident PASS.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from inspector.core.config import QualityConfig, RecipeConfig
from inspector.core.errors import ConfigError, SourceIncomplete
from inspector.core.types import Frame, Verdict
from inspector.inspection.pipeline import Pipeline
from inspector.inspection.rules import Recipe
from inspector.sources.folder import FolderSource
from inspector.sources.images import read_image
from inspector.sources.video import VideoSource
from tests.conftest import ScriptedDetector

CRACK = [[("crack", 0.9, (10, 10, 60, 60))]]  # a detector that would FAIL every picture it is shown


def _encoded(image: np.ndarray, ext: str, params=()) -> bytes:
    ok, enc = cv2.imencode(ext, image, list(params))
    assert ok
    return enc.tobytes()


def _cut_cases(part_image: np.ndarray) -> dict[str, bytes]:
    jpg = _encoded(part_image, ".jpg")
    png = _encoded(part_image, ".png")
    bmp = _encoded(part_image, ".bmp")
    tif = _encoded(part_image, ".tif", (cv2.IMWRITE_TIFF_COMPRESSION, 1))
    prog = _encoded(part_image, ".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    return {
        "cut.jpg": jpg[: len(jpg) // 2],
        "cut_eoi.jpg": jpg[: len(jpg) // 2] + b"\xff\xd9",  # libjpeg fills the rest with grey: a "picture"
        "cut_eoi_late.jpg": jpg[: len(jpg) * 9 // 10] + b"\xff\xd9",
        "cut_rst_eoi.jpg": (lambda b: b[: len(b) // 2] + b"\xff\xd9")(
            _encoded(part_image, ".jpg", (cv2.IMWRITE_JPEG_RST_INTERVAL, 4))),
        "cut_prog_eoi.jpg": prog[: len(prog) * 3 // 4] + b"\xff\xd9",
        "cut.png": png[: len(png) // 2],
        "cut_iend.png": png[: len(png) // 2] + png[-12:],
        "flipped.png": png[: len(png) // 2] + bytes([png[len(png) // 2] ^ 0xFF]) + png[len(png) // 2 + 1:],
        "cut.bmp": bmp[: len(bmp) // 2],
        "cut.tif": tif[: len(tif) // 2],
    }


def test_cut_pictures_of_every_format_are_not_inspected_with_the_reason(tmp_path, part_image):
    cases = _cut_cases(part_image)
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    pipeline = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()))  # would PASS what it sees
    src = FolderSource(tmp_path)
    results = {}
    while (f := src.read()) is not None:
        insp = pipeline.inspect(f)
        results[f.name.rsplit("/", 1)[-1]] = insp
    assert set(results) == set(cases)
    passed = {n: i.reasons for n, i in results.items() if i.verdict != Verdict.NOT_INSPECTED}
    assert not passed, passed
    # the reason names the file and what was wrong, e.g. the decoder's own words
    assert "image incomplete" in results["cut_eoi.jpg"].reasons[0]
    assert "premature end" in results["cut_eoi.jpg"].reasons[0]
    assert "end-of-image marker" in results["cut.jpg"].reasons[0]
    assert "IEND" in results["cut.png"].reasons[0]
    assert "header declares" in results["cut.bmp"].reasons[0]


def test_whole_pictures_still_decode_and_a_jpeg_trailer_is_allowed(tmp_path, part_image):
    jpg = _encoded(part_image, ".jpg")
    for name, data in {"a.jpg": jpg, "trailer.jpg": jpg + b"vendor trailer", "b.png": _encoded(part_image, ".png"),
                       "c.bmp": _encoded(part_image, ".bmp"), "d.tif": _encoded(part_image, ".tif"),
                       "e.jpg": _encoded(part_image, ".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))}.items():
        (tmp_path / name).write_bytes(data)
        img, err, _ = read_image(tmp_path / name)
        assert err is None and img is not None and img.shape == part_image.shape, (name, err)


def test_other_threads_stderr_lines_are_passed_on_not_taken_for_decoder_messages(tmp_path, part_image, capfd):
    """The capture hears fd 2; a log line another thread writes meanwhile reaches stderr, and a whole
    picture is not refused because of it."""
    import threading

    from inspector.sources.decoding import native_messages

    jpg = _encoded(part_image, ".jpg")
    with native_messages() as msgs:
        t = threading.Thread(target=lambda: os.write(2, b"WARNING: from another thread\n"))
        t.start()
        t.join()
        cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    assert not msgs
    assert "WARNING: from another thread" in capfd.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX matter")
def test_a_folder_a_broken_link_and_a_fifo_named_like_images_are_records_not_skips_or_hangs(tmp_path,
                                                                                             part_image):
    cv2.imwrite(str(tmp_path / "a.jpg"), part_image)
    (tmp_path / "b.jpg").mkdir()
    (tmp_path / "c.png").symlink_to(tmp_path / "gone.png")
    os.mkfifo(tmp_path / "d.jpg")  # opening it for reading would block for ever
    src = FolderSource(tmp_path)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    reasons = {f.name.rsplit("/", 1)[-1]: f.error for f in frames}
    assert list(reasons) == ["a.jpg", "b.jpg", "c.png", "d.jpg"]
    assert reasons["a.jpg"] is None
    assert "folder" in reasons["b.jpg"] and "broken link" in reasons["c.png"] and "FIFO" in reasons["d.jpg"]


@pytest.mark.parametrize("size, verdict", [((8, 8), Verdict.NOT_INSPECTED), ((60, 400), Verdict.NOT_INSPECTED),
                                           ((80, 80), Verdict.FAIL), ((320, 320), Verdict.FAIL)])
def test_a_picture_below_the_minimum_size_is_not_judged(size, verdict):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    p = Pipeline(ScriptedDetector(CRACK), Recipe(RecipeConfig()))  # default: a quarter of 320 px
    insp = p.inspect(Frame(img, 0, "s", 0.0))
    assert insp.verdict == verdict
    if verdict == Verdict.NOT_INSPECTED:
        assert "too small" in insp.reasons[0]
    small = Pipeline(ScriptedDetector(CRACK), Recipe(RecipeConfig()), QualityConfig(min_side_px=4))
    assert small.inspect(Frame(img, 0, "s", 0.0)).verdict == Verdict.FAIL  # configurable


# videos -------------------------------------------------------------------------------------------

def _write_video(path, frames, fourcc="mp4v") -> None:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()


def _parts(n: int) -> list[np.ndarray]:
    from inspector.sources.synth import generate

    return [p.image for _, p in generate(n, seed=80021)]


def _read_all(src: VideoSource) -> tuple[list[Frame], SourceIncomplete | None]:
    frames: list[Frame] = []
    try:
        while (f := src.read()) is not None:
            frames.append(f)
    except SourceIncomplete as e:
        return frames, e
    finally:
        src.close()
    return frames, None


def _flip(data: bytes, lo: int, hi: int, seed: int, n: int = 300) -> bytes:
    b = bytearray(data)
    for i in np.random.default_rng(seed).integers(lo, hi, n):
        b[int(i)] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_frames_of_a_corrupted_video_that_differ_from_the_clean_ones_are_not_judged(tmp_path, seed):
    """Bytes flipped in the frame data of the second half: every frame that decodes differently from
    the clean file carries a reason (the decoder's report, or 'predicted from a damaged frame')."""
    clean = tmp_path / "clean.mp4"
    _write_video(clean, _parts(40))
    data = clean.read_bytes()
    mdat_end = data.rfind(b"moov") - 4  # OpenCV writes the index at the end: damage the pictures only
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(_flip(data, len(data) // 2, mdat_end, seed))
    good, err = _read_all(VideoSource(clean))
    assert err is None and len(good) == 40 and not any(f.error for f in good)
    damaged, _ = _read_all(VideoSource(bad))
    differs = [i for i, f in enumerate(damaged) if np.abs(f.image.astype(int) - good[i].image.astype(int)).mean() > 2]
    assert differs, "the flips changed no frame: the test proves nothing"
    unflagged = [i for i in differs if not damaged[i].error]
    assert not unflagged, unflagged
    reasons = {f.error.split(":")[0] for f in damaged if f.error}
    assert "video frame damaged" in reasons


def test_a_video_that_ends_before_its_declared_frames_says_read_n_of_m(tmp_path):
    clean = tmp_path / "clean.mp4"
    _write_video(clean, _parts(30))
    data = bytearray(clean.read_bytes())
    moov = data.rfind(b"moov")
    stsz = data.find(b"stsz", moov)
    # the size of frame 20 in the index made absurd: the demuxer stops there
    struct.pack_into(">I", data, stsz + 12 + 4 + 20 * 4, 0xFF000000)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    frames, err = _read_all(VideoSource(bad))
    assert err is not None and len(frames) < 30
    assert f"read {len(frames)} of the 30 frames" in str(err)


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed (CI installs it)")
def test_an_estimated_frame_count_alone_does_not_make_a_whole_video_incomplete(tmp_path):
    """MKV stores no frame count: OpenCV estimates duration x rate, too high for a variable frame rate.
    A whole such file is read to its end without complaint; the same file cut in half is incomplete."""
    src = tmp_path / "src.mp4"
    _write_video(src, _parts(30))
    vfr = tmp_path / "vfr.mkv"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-r", "29.97", "-c:v", "mpeg4",
                    str(vfr)], check=True, timeout=120)
    frames, err = _read_all(VideoSource(vfr))
    assert err is None and len(frames) == 30 and not any(f.error for f in frames)
    data = vfr.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    frames, err = _read_all(VideoSource(cut))
    assert err is not None and "read" in str(err)


# a frozen stream, really encoded -----------------------------------------------------------------

needs_ffmpeg = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed (CI installs it)")


def _encode_still(tmp_path, still: np.ndarray, seconds: float, noise: int = 12) -> str:
    """One picture looped through a real encoder with sensor-like temporal noise: no two frames equal."""
    png = tmp_path / "still.png"
    cv2.imwrite(str(png), still)
    out = tmp_path / "frozen.ts"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", str(png), "-t", str(seconds),
                    "-r", "25", "-vf", f"noise=alls={noise}:allf=t", "-c:v", "mpeg2video", "-q:v", "6", "-g", "12",
                    str(out)], check=True, timeout=120)
    return str(out)


@needs_ffmpeg
def test_a_frozen_stream_through_a_real_encoder_is_not_passed(tmp_path, part_image):
    path = _encode_still(tmp_path, part_image, 4)
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) >= 90
    assert not any(np.array_equal(frames[0], f) for f in frames[1:]), "frames identical: nothing to tolerate"
    p = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()), QualityConfig(frozen_frames=25))
    verdicts = [p.inspect(Frame(img, i, "s", 0.0), live=True) for i, img in enumerate(frames)]
    frozen = [v for v in verdicts[26:] if v.verdict == Verdict.NOT_INSPECTED and "frozen" in v.reasons[0]]
    assert len(frozen) == len(verdicts) - 26, [v.verdict for v in verdicts[26:]]
    assert all(v.verdict == Verdict.PASS for v in verdicts[:25])  # a still part is judged until it is frozen


def test_a_moving_line_is_not_frozen():
    parts = _parts(60)
    p = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()), QualityConfig(frozen_frames=3))
    verdicts = [p.inspect(Frame(img, i, "s", 0.0), live=True).verdict for i, img in enumerate(parts)]
    assert verdicts.count(Verdict.NOT_INSPECTED) == 0


class _Served:
    """Files of a folder served over HTTP on 127.0.0.1 (a stream a camera would send), until closed."""

    def __init__(self, folder) -> None:
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a, **k) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _run_cli(tmp_path, url: str, *extra: str, quality=None, camera=None, **popen):
    from inspector.core.config import CameraConfig, Config, to_toml

    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml(Config(quality=quality or QualityConfig(), camera=camera or CameraConfig())))
    cmd = [sys.executable, "-m", "inspector", "run", "--source", url, "--db", f"sqlite:///{tmp_path / 's.db'}",
           "--config", str(cfg), "--json", "--quiet", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _summary(out: str) -> dict:
    import json

    return json.loads(out.strip().splitlines()[-1])


@needs_ffmpeg
@pytest.mark.slow
def test_a_frozen_http_stream_is_not_passed_and_the_run_exits_cleanly(tmp_path, part_image):
    """A re-encoded still served over HTTP on 127.0.0.1, read as a live stream by ``inspector run``."""
    path = _encode_still(tmp_path, part_image, 6)
    served = _Served(tmp_path)
    try:
        p = _run_cli(tmp_path, served.url(os.path.basename(path)), "--max-frames", "60",
                     quality=QualityConfig(frozen_frames=10))
        out, err = p.communicate(timeout=300)
    finally:
        served.close()
    assert p.returncode == 0, err[-2000:]
    assert "FATAL" not in err and "Traceback" not in err
    summary = _summary(out)
    assert summary["frames"] == 60
    assert summary["pass"] <= 10 and summary["not_inspected"] >= 50, summary


@needs_ffmpeg
@pytest.mark.slow
def test_stream_gaps_are_events_not_parts_and_sigterm_ends_the_run_cleanly(tmp_path):
    """A stream that ends and comes back (each end is a drop, each return a reconnect): the summary
    counts the gaps, the parts are only the pictures, and SIGTERM closes the reader before exit
    (no 'FATAL: exception not rethrown', exit 0, the run 'stopped')."""
    import signal
    import sqlite3
    import time

    from inspector.core.config import CameraConfig

    clip = tmp_path / "line.avi"
    _write_video(clip, _parts(12), "MJPG")
    served = _Served(tmp_path)
    try:
        p = _run_cli(tmp_path, served.url(clip.name), "--mode", "part",
                     camera=CameraConfig(open_timeout_s=5, read_timeout_s=1, reconnect_initial_s=0.2,
                                         reconnect_max_s=0.2))
        db = tmp_path / "s.db"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.5)
            try:
                with sqlite3.connect(db) as con:
                    if con.execute("select count(*) from inspections").fetchone()[0] >= 20:
                        break
            except sqlite3.Error:
                pass
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        served.close()
    assert p.returncode == 0, err[-2000:]
    assert "FATAL" not in err and "Traceback" not in err, err[-2000:]
    summary = _summary(out)
    assert summary["camera_gaps"] >= 1 and summary["camera_reconnects"] >= 1, summary
    assert summary["not_inspected"] == 0, summary  # no part was made of a gap
    with sqlite3.connect(tmp_path / "s.db") as con:
        assert con.execute("select end_reason from runs").fetchall() == [("stopped",)]
        assert con.execute("select count(*) from inspections").fetchone()[0] == summary["frames"]


def test_closing_a_live_source_waits_for_its_reader_thread():
    """The reader is out of the capture library before ``close`` returns: nothing of it is left running
    when the interpreter exits."""
    from inspector.core.config import CameraConfig
    from inspector.sources.live import LiveSource
    from tests.fakes import FakeCameraDevice

    device = FakeCameraDevice([["frame", "hang:0.8"] + ["frame"] * 5])
    src = LiveSource("fake", device, CameraConfig(open_timeout_s=1, read_timeout_s=2))
    assert src.read().ok
    src.close()  # the reader is inside a read that takes 0.8 s
    assert not src._thread.is_alive()


# recipe classes -----------------------------------------------------------------------------------

def test_a_recipe_class_the_model_does_not_know_is_refused_with_the_known_names():
    from inspector.core.config import ClassRule

    recipe = Recipe(RecipeConfig(classes={"scrach": ClassRule(fail_conf=0.3)}))
    with pytest.raises(ConfigError, match=r"\[classes.scrach\].*scratch, dent"):
        recipe.check_classes(("scratch", "dent", "stain"), "parts.onnx")
    Recipe(RecipeConfig(classes={"dent": ClassRule(fail_conf=0.3)})).check_classes(("scratch", "dent"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ))


def test_run_refuses_a_misspelt_recipe_class_and_an_empty_source(tmp_path, part_image):
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "line 2"\n[classes.scrach]\nfail_conf = 0.3\n')
    cv2.imwrite(str(tmp_path / "a.jpg"), part_image)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    r = _cli("run", "--source", str(tmp_path), "--recipe", str(recipe), "--db", db)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "[classes.scrach]" in r.stderr and "scratch, dent, stain, crack, chip" in r.stderr
    r = _cli("run", "--source", "", "--db", db)
    assert r.returncode == 2 and "--source is empty" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_run_of_a_video_read_in_part_says_read_n_of_m_and_exits_3(tmp_path):
    clean = tmp_path / "clean.mp4"
    _write_video(clean, _parts(24))
    data = bytearray(clean.read_bytes())
    stsz = data.find(b"stsz", data.rfind(b"moov"))
    struct.pack_into(">I", data, stsz + 16 + 12 * 4, 0xFF000000)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    r = _cli("run", "--source", str(bad), "--db", f"sqlite:///{tmp_path / 'v.db'}", "--json", "--quiet")
    assert r.returncode == 3, r.stderr[-1000:]
    assert "Traceback" not in r.stderr and "read 12 of the 24 frames" in r.stderr
    summary = _summary(r.stdout)
    assert summary["frames"] == 12 and "read 12 of the 24" in summary["incomplete"]
    import sqlite3

    with sqlite3.connect(tmp_path / "v.db") as con:
        (reason,), = con.execute("select end_reason from runs").fetchall()
    assert reason.startswith("error: ") and "read 12 of the 24 frames" in reason


@pytest.mark.model
def test_a_camera_that_gives_up_ends_the_run_with_exit_3_and_says_why(tmp_path, tiny_model, monkeypatch, capsys):
    import inspector.sources.opening as sources
    from inspector.cli import main
    from tests.conftest import trust_models
    from tests.fakes import FakeCameraDevice

    trust_models(f"sqlite:///{tmp_path / 'c.db'}", tiny_model)
    device = FakeCameraDevice([["frame"] * 5 + ["drop"], None, None])
    monkeypatch.setattr(sources, "opencv_opener", lambda target, cfg: device)
    cfg = tmp_path / "cam.toml"
    cfg.write_text("[camera]\nread_timeout_s = 0.5\nreconnect_initial_s = 0.05\nmax_reconnects = 2\n")
    from tests.conftest import trust_models

    db = trust_models(f"sqlite:///{tmp_path / 'c.db'}", tiny_model)  # a new database trusts nothing yet
    rc = main(["run", "--source", "0", "--model", str(tiny_model), "--db", db,
               "--config", str(cfg), "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 3
    assert "the camera stopped: camera dropped; gave up after 2 attempts" in err
    summary = _summary(out)
    assert summary["not_inspected"] == 0 and summary["camera_gaps"] == 1 and "gave up" in summary["incomplete"]
    import sqlite3

    with sqlite3.connect(tmp_path / "c.db") as con:
        (reason,), = con.execute("select end_reason from runs").fetchall()
    assert reason == "error: the camera stopped: camera dropped; gave up after 2 attempts"
