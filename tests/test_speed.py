"""Speed without cutting corners (issue 16): a JPEG decoded at the model's scale is still checked whole,
stored byte for byte, and judged in the picture's own pixels; tuning keeps only verified configurations.

No timings are asserted here: the figures belong to ``bench/pipeline.py``.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from inspector.core.config import RecipeConfig
from inspector.core.images import ImageStore
from inspector.core.types import Verdict
from inspector.inspection.pipeline import Pipeline
from inspector.inspection.rules import Recipe
from inspector.sources.decoding import dct_reduction, jpeg_size
from inspector.sources.folder import FolderSource
from tests.conftest import ScriptedDetector


@pytest.mark.parametrize("w, h, target, want", [
    (2448, 2048, (320, 320), 4),   # 612x512 >= the 320x268 the model sees; 1/8 (306x256) would be upscaled
    (4000, 3000, (320, 320), 8),   # 500x375
    (2448, 2048, (640, 640), 2),   # 1224x1024; 1/4 (612) < 640
    (640, 640, (320, 320), 2),
    (639, 639, (320, 320), 1),     # 1/2 would be 319.5 < 320
    (320, 320, (320, 320), 1),
    (100, 80, (320, 320), 1),      # smaller than the model: never reduced
    (1280, 320, (320, 320), 4),    # letterboxed to 320x80: 1/4 gives 320x80
    (2448, 2048, None, 1),         # no model size known: full decode
])
def test_the_dct_scale_never_leaves_the_picture_smaller_than_the_model_input(w, h, target, want):
    assert dct_reduction(w, h, target) == want


def _jpeg(img: np.ndarray, *params) -> bytes:
    ok, enc = cv2.imencode(".jpg", img, list(params))
    assert ok
    return enc.tobytes()


@pytest.fixture
def big_part(part_image) -> np.ndarray:
    return cv2.resize(part_image, (1280, 960), interpolation=cv2.INTER_LINEAR)


def test_jpeg_size_reads_the_frame_header_of_baseline_and_progressive_files(big_part):
    assert jpeg_size(_jpeg(big_part)) == (1280, 960)
    assert jpeg_size(_jpeg(big_part, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)) == (1280, 960)
    assert jpeg_size(b"\x89PNG\r\n\x1a\n") is None
    assert jpeg_size(b"\xff\xd8\xff\xe0\x00") is None  # cut inside the first segment


def test_a_reduced_decode_is_stored_byte_identical_and_judged_in_the_pictures_own_pixels(tmp_path, big_part):
    raw = _jpeg(big_part, cv2.IMWRITE_JPEG_QUALITY, 93)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(raw)
    src = FolderSource(tmp_path / "in", target_hw=(320, 320))
    frame = src.read()
    assert frame.image.shape == (240, 320, 3) and frame.full_size == (1280, 960) and frame.size == (1280, 960)
    # the scripted detector answers in the pixels it was shown (the 320x240 decode)
    det = ScriptedDetector([[("crack", 0.9, (10, 20, 30, 60))]])
    insp = Pipeline(det, Recipe(RecipeConfig()), min_side_px=300).inspect(frame)  # 960 >= 300 though 240 < 300
    assert insp.verdict == Verdict.FAIL
    d = insp.detections
    assert (d.image_width, d.image_height) == (1280, 960)
    assert (d.items[0].x1, d.items[0].y1, d.items[0].x2, d.items[0].y2) == (40, 80, 120, 240)
    rel = ImageStore(tmp_path / "out", "images").save(insp)
    assert (tmp_path / "out" / rel).read_bytes() == raw


def test_a_cut_jpeg_is_not_inspected_with_the_reduced_decode_too(tmp_path, big_part):
    raw = _jpeg(big_part)
    (tmp_path / "cut_eoi.jpg").write_bytes(raw[: len(raw) // 2] + b"\xff\xd9")  # libjpeg fills grey: a "picture"
    (tmp_path / "cut.jpg").write_bytes(raw[: len(raw) // 2])
    src = FolderSource(tmp_path, target_hw=(320, 320))
    pipeline = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()))  # would PASS what it sees
    got = {}
    while (f := src.read()) is not None:
        got[f.name.rsplit("/", 1)[-1]] = pipeline.inspect(f)
    assert {n: i.verdict for n, i in got.items()} == {"cut.jpg": Verdict.NOT_INSPECTED,
                                                      "cut_eoi.jpg": Verdict.NOT_INSPECTED}
    assert "premature end" in got["cut_eoi.jpg"].reasons[0]
    assert "end-of-image marker" in got["cut.jpg"].reasons[0]


# tuning ------------------------------------------------------------------------------------------------
def test_tune_refuses_what_costs_accuracy_or_verdicts_and_picks_the_fastest_allowed():
    from inspector.detection.setup import Candidate, Measured, judge, pick

    ref = ["PASS"] * 99 + ["FAIL"]
    assert judge(0.90, ref, 0.895, ref)[0]
    assert not judge(0.90, ref, 0.889, ref)[0]  # more than 0.01 mAP50 lost
    assert not judge(0.90, ref, 0.90, ["PASS"] * 98 + ["FAIL", "PASS"])[0]  # 98 % agreement
    assert not judge(None, [], None, [])[0]  # nothing to verify on
    f32 = Measured(Candidate("openvino", "f32", 1), 40.0, 0.9, 1.0, True, "")
    bf16 = Measured(Candidate("openvino", "bf16", 1), 80.0, 0.9, 1.0, True, "")
    lossy = Measured(Candidate("openvino", "bf16", 2), 120.0, 0.8, 0.9, False, "")
    assert pick([f32, bf16, lossy]) is bf16
    assert pick([f32, bf16, lossy], allow_bf16=False) is f32


def test_the_first_start_tune_checks_accuracy_from_the_fastest_down_and_stops_at_the_first_allowed():
    """The short tune (``verify_all=False``) never chooses a candidate whose accuracy it did not check, checks no
    slower one once a faster one is allowed, and allows the reference's own kernels at other thread counts."""
    from inspector.detection.setup import Candidate, pick
    from inspector.lifecycle.tune import measure

    ref, f32x2 = Candidate("openvino", "f32", 1), Candidate("openvino", "f32", 2, streams=2)
    lossy, good, ort = Candidate("openvino", "bf16", 2, streams=2), Candidate("openvino", "bf16", 1), \
        Candidate("onnxruntime", "f32", 1)
    speeds = {ref: 50.0, f32x2: 90.0, lossy: 200.0, good: 150.0, ort: 140.0}
    truth = ["PASS"] * 99 + ["FAIL"]
    accuracy_of = {ref: (0.90, truth), lossy: (0.85, truth), good: (0.899, truth), ort: (0.90, truth)}
    checked: list[Candidate] = []

    def accuracy(c):
        checked.append(c)
        return accuracy_of[c]

    out = measure([ref, f32x2, lossy, good, ort], lambda c: speeds[c], accuracy, rounds=1, verify_all=False)
    by = {m.candidate: m for m in out}
    assert checked == [ref, lossy, good]  # the fastest (refused), the next (allowed), and no further
    assert pick(out).candidate == good
    assert by[f32x2].allowed and not by[lossy].allowed
    assert not by[ort].allowed and "not checked" in by[ort].why and by[ort].map50 is None
    every = measure([ref, f32x2, lossy, good, ort], lambda c: speeds[c], accuracy, rounds=1)
    assert {m.candidate for m in every if m.allowed} == {ref, f32x2, good, ort}  # ``inspector tune`` checks all


def test_a_candidate_that_cannot_run_here_is_left_out_not_fatal_and_never_chosen():
    """A set-up OpenVINO offers but cannot compile on this CPU (bf16 with its instruction set capped, say) is
    recorded as not allowed with the reason; the tune still chooses among the others."""
    from inspector.core.errors import ModelError
    from inspector.detection.setup import Candidate, pick
    from inspector.lifecycle.tune import measure

    ref, fast_f32 = Candidate("openvino", "f32", 1), Candidate("openvino", "f32", 2, streams=2)
    bf16 = Candidate("openvino", "bf16", 2, streams=2)
    truth = ["PASS"] * 10

    def speed(c):
        if c == bf16:
            raise ModelError("OpenVINO cannot compile m.onnx for this CPU (RuntimeError: Supported primitive "
                             "descriptors list is empty for node: /model.9/m/MaxPool)")
        return {ref: 40.0, fast_f32: 80.0}[c]

    for verify_all in (True, False):
        out = measure([ref, fast_f32, bf16], speed, lambda c: (0.9, truth), rounds=2, verify_all=verify_all)
        by = {m.candidate: m for m in out}
        assert pick(out).candidate == fast_f32
        assert not by[bf16].allowed and by[bf16].why.startswith("cannot run here (ModelError: OpenVINO cannot")
    with pytest.raises(ModelError):  # the f32 reference must run: without it nothing can be verified
        measure([bf16.__class__("openvino", "f32", 1), fast_f32], lambda c: speed(bf16), lambda c: (0.9, truth))


def test_candidates_offer_bf16_only_where_the_cpu_has_it_and_onnxruntime_only_for_onnx():
    from inspector.detection.setup import Candidate, candidates

    avx2 = candidates(2, ["openvino", "onnxruntime"], bf16=False)
    assert {c.precision for c in avx2} == {"f32"} and avx2[0].backend == "openvino"
    assert {c.threads for c in avx2} == {1, 2}
    assert Candidate("openvino", "f32", 2, streams=2) in avx2  # two images at once, a core each
    assert all(c.streams == 1 for c in avx2 if c.backend == "onnxruntime")
    assert all(c.streams == 1 for c in candidates(1, ["openvino"], bf16=False))  # one core: one stream
    with pytest.raises(ValueError, match="threads >= streams"):
        Candidate("openvino", "f32", 1, streams=2)
    assert any(c.precision == "bf16" for c in candidates(2, ["openvino"], bf16=True))
    assert not any(c.precision == "int8" for c in candidates(2, ["openvino"], bf16=True))
    int8 = [c for c in candidates(2, ["openvino", "onnxruntime"], bf16=False, int8=True) if c.precision == "int8"]
    assert int8 and all(c.backend == "openvino" for c in int8)  # only where the model ships an INT8 variant
    assert all(c.backend == "openvino" for c in candidates(4, ["openvino", "onnxruntime"], True, ".xml"))


def test_an_int8_choice_loads_the_models_trusted_int8_variant_and_only_where_reduced_precision_is_allowed(
        monkeypatch, tmp_path):
    """The shipped model's card names an INT8 variant (trusted by the shipped card's hashes). A tune record that
    chose INT8 makes the station load that file (its own hash on every record it judges); ``precision = "f32"``
    keeps the f32 model; a variant whose file is not the trusted one is not used."""
    import shutil

    from inspector.core.config import ModelConfig
    from inspector.detection.detector import load_detector
    from inspector.detection.registry import ModelRegistry, int8_variant, resolve_model, sha256_file
    from inspector.detection.setup import Candidate, Measured, cpu_signature, save_record

    monkeypatch.setenv("INSPECTOR_HOME", str(tmp_path / "home"))
    onnx = resolve_model(None, (".onnx",))
    variant = int8_variant(onnx)
    assert variant is not None and variant.suffix == ".xml" and variant.parent.parent == onnx.parent
    sha = ModelRegistry().check(onnx)
    ref = Measured(Candidate("openvino", "f32", 1), 40.0, 0.99, 1.0, True, "")
    int8 = Measured(Candidate("openvino", "int8", 1), 90.0, 0.99, 1.0, True, "")
    save_record(sha, "parts-v2", cpu_signature(), [ref, int8], "test", 10)

    det = load_detector(ModelConfig(), conf=0.25)
    assert det.path == variant and det.sha256 == sha256_file(variant) and det.setup.precision == "int8"
    assert det.setup.tune["status"] == "applied" and det.setup.tune["applied"]["precision"] == "int8"
    f32 = load_detector(ModelConfig(precision="f32"), conf=0.25)
    assert f32.path == onnx and f32.setup.precision == "f32"

    # a copy of the model folder whose variant was swapped: the ONNX is still trusted, the variant is not
    copy = tmp_path / "copy"
    shutil.copytree(onnx.parent, copy, ignore=shutil.ignore_patterns("*_openvino_model", "*.pt"))
    xml = copy / variant.relative_to(onnx.parent)
    xml.write_text(xml.read_text().replace("</net>", "<!-- swapped --></net>"))
    swapped = load_detector(ModelConfig(path=copy / onnx.name), conf=0.25)
    assert swapped.path == copy / onnx.name and swapped.setup.precision != "int8"


def test_an_int8_variant_named_outside_its_model_folder_is_ignored(tmp_path):
    import json

    from inspector.detection.registry import int8_variant

    (tmp_path / "m").mkdir()
    (tmp_path / "outside.xml").write_text("<net/>")
    model = tmp_path / "m" / "m.onnx"
    model.write_bytes(b"x")
    for name in ("../outside.xml", str(tmp_path / "outside.xml"), "absent.xml", ""):
        (tmp_path / "m" / "card.json").write_text(json.dumps({"variants": {"int8": {"file": name}}}))
        assert int8_variant(model) is None, name
    (tmp_path / "m" / "int8.xml").write_text("<net/>")
    (tmp_path / "m" / "card.json").write_text(json.dumps({"variants": {"int8": {"file": "int8.xml"}}}))
    assert int8_variant(model) == tmp_path / "m" / "int8.xml"


@pytest.mark.slow
def test_tune_on_a_tiny_model_records_only_allowed_choices_and_loading_applies_them(tiny_model, tmp_path,
                                                                                    capsys):
    """``inspector tune`` on a real (tiny) model: every candidate is measured on held-out parts, the chosen one
    is allowed, and a detector loaded with the choice left open runs it (shown as applied)."""
    from inspector.cli import main
    from inspector.core.config import ModelConfig
    from inspector.detection.detector import load_detector
    from inspector.detection.setup import load_record
    from tests.conftest import trusted_registry

    onnx = tiny_model.with_suffix(".onnx")
    assert main(["tune", "--model", str(onnx), "--images", "12", "--rounds", "1", "--backend", "openvino",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["candidates"] and all("parts_per_s" in c and "allowed" in c for c in record["candidates"])
    chosen = record["chosen"]
    assert chosen is not None and chosen["allowed"]
    assert chosen["parts_per_s"] == max(c["parts_per_s"] for c in record["candidates"] if c["allowed"])
    assert load_record(record["model_sha256"]) == record
    det = load_detector(ModelConfig(path=onnx), 0.25, trusted_registry(onnx))
    assert det.setup.tune["status"] == "applied"
    assert (det.setup.backend, det.setup.precision, det.setup.threads, det.setup.streams) == (
        chosen["backend"], chosen["precision"], chosen["threads"], chosen["streams"])
    fixed = load_detector(ModelConfig(path=onnx, threads=1, backend="openvino"), 0.25, trusted_registry(onnx))
    assert fixed.setup.tune["status"].startswith("tuned, not applied")


def test_run_json_reports_latency_throughput_basis_and_tune(tmp_path, tiny_model, part_image):
    from inspector.cli import main
    from tests.conftest import trust_models

    db = trust_models(f"sqlite:///{tmp_path / 'r.db'}", tiny_model)
    folder = tmp_path / "parts"
    folder.mkdir()
    big = cv2.resize(part_image, (640, 480))
    for i in range(4):
        cv2.imwrite(str(folder / f"p{i}.jpg"), big)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["run", "--source", str(folder), "--model", str(tiny_model.with_suffix(".onnx")),
                   "--db", db, "--json", "--quiet"])
    assert rc == 0
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["frames"] == 4
    for key in ("fps", "fps_from", "seconds", "latency_p50_ms", "latency_p99_ms", "first_verdict_s", "tune"):
        assert key in summary, key
    assert summary["latency_p99_ms"] >= summary["latency_p50_ms"] > 0
    assert summary["tune"]["running"]["backend"] in ("openvino", "onnxruntime")


def test_the_health_panel_shows_the_inference_setup_and_whether_tune_chose_it(qtbot):
    from inspector.detection.setup import setup_text
    from inspector.inspection.runner import RunStats
    from ui.health import HealthPanel

    shown = {"status": "applied", "date": "2026-11-29T22:00:00Z", "applied": {"parts_per_s": 91.5},
             "running": {"backend": "openvino", "precision": "bf16", "threads": 1}}
    panel = HealthPanel()
    qtbot.addWidget(panel)
    panel.show_stats(RunStats(frames=5, inspected=5, counts={"PASS": 5}, skipped=0, elapsed_s=1.0, fps=5.0,
                              camera_fps=5.0, inference_ms=10.0, latency_p50_ms=20, latency_p99_ms=30,
                              first_verdict_s=0.2, setup=setup_text(shown)))
    assert panel.value("setup") == "openvino bf16 x1 · tuned 2026-11-29 (91.5 parts/s measured)"
    untuned = setup_text({"status": "not tuned on this machine for this model: run 'inspector tune'",
                          "running": {"backend": "openvino", "precision": "bf16", "threads": 1}})
    assert untuned.endswith("run 'inspector tune'")


def test_a_folder_is_read_no_further_ahead_than_the_model_can_take_and_the_model_stays_fed(part_image):
    """Part mode, a source read at will: a frame is read only when the model holds fewer than its depth of
    frames not yet judged (so none waits in a long queue), and the model still gets two at once."""
    import time as _time

    from inspector.core.config import RunMode
    from inspector.core.types import Frame
    from inspector.inspection.runner import Runner
    from tests.fakes import ListSink, QueuedDetector

    det = QueuedDetector(delay_s=0.004, depth=2)
    ahead: list[int] = []

    class Folder:
        live, name = False, "folder"

        def __init__(self, n: int) -> None:
            self.n, self.i = n, 0

        def read(self):
            if self.i >= self.n:
                return None
            with det._lock:
                ahead.append(self.i - (det.calls - det.in_flight))  # read before this one, not yet answered
            self.i += 1
            return Frame(part_image, self.i - 1, self.name, _time.time(), f"p{self.i - 1}")

        def close(self) -> None:
            pass

    sink = ListSink()
    r = Runner(Folder(60), lambda: Pipeline(det, Recipe(RecipeConfig())), sink, RunMode.PART, queue_size=8)
    r.start()
    assert r.join(timeout=60)
    assert r.error is None and len(sink.items) == 60
    assert max(ahead) <= 3, max(ahead)  # depth 2 + read_ahead 1; the queue of 8 would let it run 10 ahead
    assert det.max_in_flight == 2
    st = r.stats()
    assert 0 < st.latency_p50_ms <= st.latency_p99_ms


@pytest.mark.parametrize("model_upd, env", [
    ({"threads": 1, "autotune": True}, "1"),            # the configuration chose the threads
    ({"backend": "openvino", "autotune": True}, "1"),  # ... or the backend
    ({"autotune": False}, "1"),      # turned off
    ({}, "0"),                       # tests and CI
])
def test_the_first_start_tune_runs_only_where_the_choice_is_left_open(model_upd, env, monkeypatch, tmp_path,
                                                                     caplog):
    from inspector.core.config import Config
    from inspector.lifecycle.tune import first_start_tune

    monkeypatch.setenv("INSPECTOR_AUTOTUNE", env)
    cfg = Config()
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update=model_upd)})
    with caplog.at_level("WARNING"):
        assert first_start_tune(tmp_path / "absent.onnx", "f" * 64, cfg, "openvino") is None
    assert not [r for r in caplog.records if "first run of" in r.getMessage()]  # it did not begin to tune
    monkeypatch.setenv("INSPECTOR_AUTOTUNE", "1")
    on = Config()
    assert on.model.autotune  # on by default
    with caplog.at_level("WARNING"):  # the default, the choice left open, nothing recorded: it begins (and fails here)
        first_start_tune(tmp_path / "absent.onnx", "f" * 64, on, "openvino")
    assert [r for r in caplog.records if "first run of" in r.getMessage()]


def test_a_tune_interrupted_while_measuring_speed_stops_the_models_threads_before_it_returns(monkeypatch, tmp_path):
    """Ctrl+C while a candidate's speed is measured: the station's threads end before the detector they use goes
    (else the process aborts inside OpenVINO at exit: "terminate called without an active exception")."""
    import threading

    from inspector.core.config import Config
    from inspector.detection.fast import FastDetector
    from inspector.detection.registry import resolve_model
    from inspector.inspection.runner import Runner
    from inspector.lifecycle.tune import _pipeline_fps
    from inspector.sources.synth import write_dataset

    write_dataset(tmp_path / "parts", 8, seed=3)
    det = FastDetector(resolve_model(None, (".onnx",)), "x", backend="openvino", imgsz=320)
    real_join, asked = Runner.join, []

    def join(self, timeout=None):
        if not asked:  # the first wait for the measurement is interrupted
            asked.append(True)
            raise KeyboardInterrupt
        return real_join(self, timeout)

    monkeypatch.setattr(Runner, "join", join)
    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        _pipeline_fps(det, tmp_path / "parts" / "images", Config(), n=100_000)
    assert not [t.name for t in set(threading.enumerate()) - before if t.is_alive()]


@pytest.mark.slow
def test_a_first_run_judges_at_once_and_tunes_when_it_ends_never_when_killed(tmp_path):
    """A model's first run on a machine starts judging at once in the configuration as it is; killed in the middle
    it records no tune (nothing half-measured); a run that ends tunes after its last part, and the next run
    applies the choice."""
    import signal
    import subprocess
    import sys

    from inspector.sources.synth import write_dataset

    write_dataset(tmp_path / "parts", 12, seed=16)
    parts = tmp_path / "parts" / "images"
    env = dict(os.environ, INSPECTOR_AUTOTUNE="1", INSPECTOR_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    tune_dir = tmp_path / "home" / "tune"

    def run(*extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "inspector.cli", "run", "--source", str(parts), "--db",
                                 f"sqlite:///{(tmp_path / 'a.db').as_posix()}", *extra], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)

    looping = run("--loop")
    try:
        first = looping.stdout.readline()  # the first verdict, committed, while nothing was tuned
        assert first.startswith("#1 "), first + looping.stderr.read()
    finally:
        looping.send_signal(signal.SIGKILL)
        _, err = looping.communicate(timeout=60)
    assert "not tuned on this machine" in err and "measuring" not in err
    assert not tune_dir.exists() or not any(tune_dir.iterdir())  # killed before its end: nothing recorded

    stopped = run("--json", "--quiet")  # a stop during the tune skips it cleanly: the run is already recorded
    while "measuring" not in (line := stopped.stderr.readline()):
        assert line, "the run ended without tuning"
    stopped.send_signal(signal.SIGTERM)
    out, err = stopped.communicate(timeout=120)
    assert stopped.returncode == 0 and "tune skipped" in err and "terminate called" not in err, err
    assert json.loads(out.strip().splitlines()[-1])["frames"] == 12
    assert not tune_dir.exists() or not any(tune_dir.iterdir())

    out, err = run("--json", "--quiet").communicate(timeout=600)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["frames"] == 12 and "not tuned" in summary["tune"]["status"]  # it ran as configured ...
    assert summary["tune"]["running"]["streams"] == 1
    assert summary["tune"].get("next_start"), err  # ... and tuned after its last part
    assert "tuned in" in err and len(list(tune_dir.iterdir())) == 1

    out, err = run("--json", "--quiet").communicate(timeout=600)
    again = json.loads(out.strip().splitlines()[-1])
    assert again["tune"]["status"] == "applied" and "measuring" not in err
    chosen = again["tune"]["applied"]
    assert summary["tune"]["next_start"].startswith(f"{chosen['backend']} {chosen['precision']} x{chosen['threads']}")


def test_a_reduced_decode_of_a_jpeg_turned_by_its_exif_orientation_keeps_its_full_size_turned(tmp_path, big_part):
    import struct

    raw = _jpeg(big_part)  # 1280x960 in its frame header
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + b"\0" * 4
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff  # orientation 6: 90 degrees
    (tmp_path / "turned.jpg").write_bytes(raw[:2] + app1 + raw[2:])
    frame = FolderSource(tmp_path, target_hw=(320, 320)).read()
    assert frame.image.shape[:2] == (320, 240)  # OpenCV applies the orientation
    assert frame.full_size == (960, 1280)
