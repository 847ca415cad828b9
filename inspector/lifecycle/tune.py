"""Measuring the tune candidates on a model (``inspector tune``, and after a model's first run on a machine).

Engine code: held-out parts (given, or fresh synthetic ones when the model's classes are those of
``inspector synth``), each candidate's accuracy against f32, its parts/s as the station runs it
(``Runner`` over a folder, nothing stored), and the record ``inspector.detection.setup`` keeps.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from inspector.core.config import Config
from inspector.core.errors import ConfigError
from inspector.detection.setup import Candidate, Measured, judge

log = logging.getLogger(__name__)

SYNTH_SEED = 16016  # held-out synthetic parts: a seed no shipped model was trained or validated on


def first_start_wanted(sha: str, cfg: Config, backend: str) -> bool:
    """Whether the short first-start tune is due for this model here: ``model.autotune`` on, the choice left
    open (backend auto, threads 0, not the ultralytics backend) and no record yet for this model and machine.
    The environment's INSPECTOR_AUTOTUNE=0 turns it off (tests, CI)."""
    import os

    from inspector.detection.setup import load_record

    m = cfg.model
    open_choice = str(getattr(m.backend, "value", m.backend)) == "auto" and m.threads == 0 and backend != "ultralytics"
    return bool(m.autotune) and os.environ.get("INSPECTOR_AUTOTUNE", "1") != "0" and open_choice \
        and load_record(sha) is None


def first_start_tune(path: Path, sha: str, cfg: Config, backend: str) -> dict | None:
    """The short tune after a model's first run here (``first_start_wanted``); the record made, or None when
    not wanted or when it failed (the next start then runs as configured and tunes again). The first run itself
    never waits for it: its first part is judged at once, in the configuration as it is."""
    if not first_start_wanted(sha, cfg, backend):
        return None
    import time

    from inspector.detection.detector import available_backends
    from inspector.detection.setup import load_record

    backends = [b.value for b in available_backends() if b.value != "ultralytics"]
    log.warning("first run of %s on this machine: measuring the inference set-ups for the next start, seconds to "
                "a minute, once ('inspector tune' measures longer; model.autotune = false skips it)", path.name)
    t0 = time.monotonic()
    try:
        rec = tune_model(path, sha, cfg, backends, images=40, rounds=1, quick=True)
    except Exception:  # noqa: BLE001 - a failed tune must not fail the run: the next start runs as configured
        log.exception("the first-start tune failed; the station keeps running as configured")
        return None
    record = load_record(sha) or {}
    chosen = record.get("chosen") or {}
    log.warning("tuned in %.0f s: %s (%s parts/s measured, mAP50 %s), from the next start on; the figures are "
                "in %s", time.monotonic() - t0, chosen.get("label", "no allowed set-up: configuration kept"),
                chosen.get("parts_per_s", "-"), chosen.get("map50", "-"), rec)
    return record


def tune_model(path: Path, sha: str, cfg: Config, backends: list[str], classes: tuple[str, ...] = (),
               data: Path | None = None, images: int = 120, rounds: int = 3, model_name: str = "",
               progress: Callable[[str], None] | None = None, quick: bool = False) -> Path:
    """Measure every candidate for the model file ``path`` (trusted, ``sha``) and record the figures and the
    choice; returns the record's path. ``quick`` (a model's first start): shorter speed runs, and accuracy
    checked only down to the fastest allowed candidate."""
    from inspector.detection.detector import model_imgsz
    from inspector.detection.registry import trusted_card
    from inspector.detection.setup import cpu_signature, save_record

    if not backends:
        raise ConfigError("no inference backend to tune is installed here (OpenVINO or ONNX Runtime).")
    from inspector.detection.registry import ModelRegistry

    trusted = ModelRegistry().trusted()  # a card decides the size only when trusted (shipped here)
    card = trusted_card(path, trusted)
    imgsz = model_imgsz(path, trusted, cfg.model.imgsz)
    classes = classes or (card.classes if card is not None else ())
    sig = cpu_signature()
    tmp = Path(tempfile.mkdtemp(prefix="inspector-tune-"))
    try:
        record = _measure(data, images, rounds, cfg, path, sha, imgsz, sig, tmp, backends, classes, progress,
                          quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return save_record(sha, model_name or path.parent.name, sig, record["measured"], record["reference"],
                       record["images"])


def _dataset(data: Path | None, count: int, classes: tuple[str, ...], tmp: Path):
    """(dataset, images, what it is) of labelled held-out parts, or (None, folder, why) when there are none."""
    from inspector.sources.synth import CLASSES, write_dataset
    from inspector.training.datasets import load_dataset

    if data is not None:
        ds = load_dataset(Path(data))
        return ds, ds.split(None), f"held-out parts of {data}"
    if tuple(classes) == tuple(CLASSES):
        write_dataset(tmp / "held-out", count, seed=SYNTH_SEED)
        ds = load_dataset(tmp / "held-out")
        return ds, ds.split("all"), f"{count} fresh synthetic parts (seed {SYNTH_SEED})"
    return None, (), "no labelled held-out parts (give --data): only f32 candidates"


def _measure(data: Path | None, count: int, rounds: int, cfg: Config, path: Path, sha: str, imgsz: int, sig: dict,
             tmp: Path, backends: list[str], classes: tuple[str, ...],
             progress: Callable[[str], None] | None, quick: bool = False) -> dict:
    from inspector.detection.detector import setup_detector, trusted_int8_variant
    from inspector.detection.fast import FastDetector
    from inspector.detection.registry import ModelRegistry
    from inspector.detection.setup import candidates, cores

    loaded: dict = {}
    # only a variant a shipped card trusts is measured here (one trusted in a station's database is not)
    variant = trusted_int8_variant(path, ModelRegistry())

    def detector(c) -> FastDetector:
        if c not in loaded:
            loaded[c] = setup_detector(path, sha, variant, backend=c.backend, precision=c.precision,
                                       threads=c.threads, streams=c.streams, imgsz=imgsz, conf=0.25,
                                       iou=cfg.model.iou)
        return loaded[c]

    if not classes:
        classes = FastDetector(path, sha, backend=backends[0], imgsz=imgsz, threads=1).classes
    ds, images, reference = _dataset(data, count, classes, tmp)
    folder = tmp / "speed"
    folder.mkdir()
    for i, im in enumerate(images[:60] if images else []):
        shutil.copy2(im.path, folder / f"{i:04d}{im.path.suffix}")
    if not any(folder.iterdir()):
        from inspector.sources.synth import write_dataset

        write_dataset(tmp / "plain", 60, seed=SYNTH_SEED)  # pictures for speed only
        folder = tmp / "plain" / "images"
    bf16 = "BF16" in sig.get("openvino", []) and ds is not None
    int8 = variant is not None and ds is not None  # verified against f32 on labelled held-out parts, as bf16
    cands = candidates(cores(), backends, bf16, path.suffix.lower(), int8)

    frames = 48 if quick else max(60, len(list(folder.iterdir()))) * 2

    def speed(c) -> float:
        return _pipeline_fps(detector(c), folder, cfg, n=frames)

    def accuracy(c) -> tuple[float | None, list[str]]:
        if ds is None:
            return None, []
        from inspector.inspection.rules import Recipe
        from inspector.training.evaluation import evaluate

        verdicts: list[str] = []
        det = detector(c)
        det.conf = 0.001  # mAP from every box down to a low confidence, as ``inspector evaluate`` counts it
        try:
            rep = evaluate(det, ds, images, Recipe(cfg.recipe), on_image=lambda im, v, d: verdicts.append(v.value))
        finally:
            det.conf = 0.25
        return rep.map50, verdicts

    measured = measure(cands, speed, accuracy, rounds, progress=progress or log.info, verify_all=not quick)
    return {"measured": measured, "reference": reference, "images": len(images)}


def _pipeline_fps(det, folder: Path, cfg, n: int) -> float:
    """Parts/s of the model as the station runs it: a folder decoded on its own thread, the model queued,
    the recipe; nothing stored (the same for every candidate)."""
    from inspector.core.config import RunMode
    from inspector.inspection.pipeline import Pipeline
    from inspector.inspection.rules import Recipe
    from inspector.inspection.runner import Runner
    from inspector.sources.folder import FolderSource

    class _Discard:
        def write_batch(self, inspections: list) -> list[int]:
            return list(range(len(inspections)))

    src = FolderSource(folder, loop=True, target_hw=det.input_hw)
    runner = Runner(src, lambda: Pipeline(det, Recipe(cfg.recipe), cfg.quality), _Discard(), RunMode.PART,
                    max_frames=n)
    runner.start()
    try:
        runner.join()
    except BaseException:  # Ctrl+C: the model's threads end before the detector they use goes
        runner.stop()
        runner.join(timeout=30)
        raise
    if runner.error is not None:
        raise runner.error
    return runner.stats().fps

def measure(candidates_: Sequence[Candidate], speed: Callable[[Candidate], float],
            accuracy: Callable[[Candidate], tuple[float | None, list[str]]], rounds: int = 3,
            progress: Callable[[str], None] | None = None, verify_all: bool = True) -> list[Measured]:
    """Speed in interleaved rounds (median), accuracy once each; the first candidate is the f32 reference.

    ``verify_all=False`` (the short tune at a model's first start) checks the accuracy of the reference and
    then of the others from the fastest down, stopping at the first one allowed: a slower one could not be
    chosen. Those not checked are recorded as not allowed, with why."""
    import statistics

    if not candidates_ or candidates_[0].precision != "f32":
        raise ValueError("expected the f32 reference first among the candidates")
    ref = candidates_[0]
    acc: dict[Candidate, tuple[float | None, list[str]]] = {}
    broken: dict[Candidate, str] = {}  # candidates this machine cannot run (the reference must run)

    def attempt(c: Candidate, fn: Callable[[], None]) -> None:
        if c is ref:
            fn()
            return
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a set-up that cannot compile or run here is left out, not fatal
            first = (str(e).strip().splitlines() or [""])[0][:160]
            broken[c] = f"cannot run here ({type(e).__name__}: {first})"
            if progress:
                progress(f"{c.label}: {broken[c]}")

    def same_kernels(c: Candidate) -> bool:  # as the reference: the same numbers, nothing to check
        return c.precision == "f32" and c.backend == ref.backend and c is not ref

    def check(c: Candidate) -> None:
        def run() -> None:
            if same_kernels(c):
                acc[c] = acc[ref]
            else:
                acc[c] = accuracy(c)
            if progress:
                progress(f"accuracy {c.label}: mAP50 {acc[c][0] if acc[c][0] is not None else 'n/a'}")
        attempt(c, run)

    check(ref)
    for c in candidates_[1:]:
        if verify_all or same_kernels(c):
            check(c)
    fps: dict[Candidate, list[float]] = {c: [] for c in candidates_}
    for r in range(rounds):
        for c in candidates_:
            if c in broken:
                continue
            attempt(c, lambda c=c: fps[c].append(speed(c)))
            if progress and c not in broken:
                progress(f"round {r + 1}/{rounds} {c.label}: {fps[c][-1]:.1f} parts/s")
    ref_map, ref_verdicts = acc[ref]

    def verdict(c: Candidate) -> tuple[bool, float | None, str]:
        m, verdicts = acc[c]
        if c.precision == "f32" and ref_map is None:  # nothing to verify against: f32 is the reference itself
            return True, None, "f32 (the reference)"
        return judge(ref_map, ref_verdicts, m, verdicts)

    if not verify_all:
        for c in sorted((c for c in candidates_ if c not in broken), key=lambda c: -statistics.median(fps[c])):
            if c not in acc:
                check(c)
            if c not in broken and verdict(c)[0]:
                break
    out = []
    for c in candidates_:
        if c in broken:
            out.append(Measured(c, statistics.median(fps[c]) if fps[c] else 0.0, None, None, False, broken[c]))
            continue
        if c not in acc:
            out.append(Measured(c, statistics.median(fps[c]), None, None, False,
                                "accuracy not checked: slower than the one chosen (first-start tune)"))
            continue
        allowed, agree, why = verdict(c)
        out.append(Measured(c, statistics.median(fps[c]), acc[c][0], agree, allowed, why))
    return out
