"""``inspector tune``: measure the backends, precisions and thread counts this machine offers on the active
model, keep the safe ones, record the fastest (``inspector.tune``)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

from inspector.errors import ConfigError

log = logging.getLogger(__name__)

SYNTH_SEED = 16016  # held-out synthetic parts: a seed no shipped model was trained or validated on


def register(sub) -> None:
    t = sub.add_parser("tune", help="choose the fastest safe inference configuration for this machine and model")
    t.add_argument("--model", default=None, help="model file or folder (default: the configured one)")
    t.add_argument("--config", default=None, help="configuration file (TOML)")
    t.add_argument("--db", default=None, help="station database whose trusted models may be tuned")
    t.add_argument("--data", default=None, help="labelled held-out parts (a dataset folder); default: fresh "
                                                "synthetic parts when the model's classes are those of "
                                                "'inspector synth'")
    t.add_argument("--images", type=int, default=120, help="held-out parts to measure on (default 120)")
    t.add_argument("--rounds", type=int, default=3, help="interleaved speed rounds, median taken (default 3)")
    t.add_argument("--backend", default="auto", choices=["auto", "openvino", "onnxruntime"],
                   help="measure only this backend (default: every one installed)")
    t.add_argument("--json", action="store_true", help="end with the record as one JSON line")
    t.set_defaults(func=tune)


def _dataset(a: argparse.Namespace, classes: tuple[str, ...], tmp: Path):
    """(dataset, images, what it is) of labelled held-out parts, or (None, folder, why) when there are none."""
    from inspector.datasets import load_dataset
    from inspector.synth import CLASSES, write_dataset

    if a.data:
        ds = load_dataset(Path(a.data))
        return ds, ds.split(None), f"held-out parts of {a.data}"
    if tuple(classes) == tuple(CLASSES):
        write_dataset(tmp / "held-out", a.images, seed=SYNTH_SEED)
        ds = load_dataset(tmp / "held-out")
        return ds, ds.split("all"), f"{a.images} fresh synthetic parts (seed {SYNTH_SEED})"
    return None, (), "no labelled held-out parts (give --data): only f32 candidates"


def tune(a: argparse.Namespace) -> int:
    from inspector.cli.run_cmd import build_config
    from inspector.detector import available_backends, pick_model
    from inspector.registry import read_card
    from inspector.tune import cpu_signature, save_record
    from station import default_db_url, open_db, trusted_models

    if a.images < 10 or a.rounds < 1:
        raise ConfigError("--images must be at least 10 and --rounds at least 1.")
    cfg = build_config(argparse.Namespace(model=a.model, config=a.config))
    path, backend = pick_model(cfg.model)
    if backend.value == "ultralytics":
        raise ConfigError(f"{path.name}: tuning needs OpenVINO or ONNX Runtime and an ONNX export of the model "
                          "('inspector export').")
    engine, sessions = open_db(a.db or cfg.storage.db_url or default_db_url())
    try:
        registry = trusted_models(sessions)
    finally:
        engine.dispose()
    sha = registry.check(path)
    card = read_card(path)
    imgsz = int(card.get("imgsz") or cfg.model.imgsz)
    sig = cpu_signature()
    tmp = Path(tempfile.mkdtemp(prefix="inspector-tune-"))
    try:
        backends = [b.value for b in available_backends() if a.backend in ("auto", b.value)]
        record = _measure(a, cfg, path, sha, imgsz, sig, tmp, backends, tuple(card.get("classes") or ()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    where = save_record(sha, path.parent.name, sig, record["measured"], record["reference"], record["images"])
    for m in record["measured"]:
        d = m.as_dict()
        print(f"{d['label']:<22} {d['parts_per_s']:7.1f} parts/s  mAP50 {d['map50']}  agreement "
              f"{d['agreement']}  {'ok' if d['allowed'] else 'refused'}: {d['why']}")
    best = json.loads(where.read_text())
    chosen = best.get("chosen")
    flags = " ".join(sig["flags"]) or "unknown"
    print(f"chosen: {chosen['label'] if chosen else 'none'} (CPU flags: {flags}); recorded in {where}")
    if a.json:
        print(json.dumps(best))
    return 0


def _measure(a, cfg, path: Path, sha: str, imgsz: int, sig: dict, tmp: Path, backends: list[str],
             classes: tuple[str, ...]) -> dict:
    from inspector.fast_detector import FastDetector
    from inspector.tune import candidates, cores, measure

    if not backends:
        raise ConfigError(f"the {a.backend} backend is not installed here.")
    loaded: dict = {}

    def detector(c) -> FastDetector:
        if c not in loaded:
            loaded[c] = FastDetector(path, sha, backend=c.backend, imgsz=imgsz, conf=0.25, iou=cfg.model.iou,
                                     threads=c.threads, precision=c.precision)
        return loaded[c]

    if not classes:
        classes = FastDetector(path, sha, backend=backends[0], imgsz=imgsz, threads=1).classes
    ds, images, reference = _dataset(a, classes, tmp)
    folder = tmp / "speed"
    folder.mkdir()
    for i, im in enumerate(images[:60] if images else []):
        shutil.copy2(im.path, folder / f"{i:04d}{im.path.suffix}")
    if not any(folder.iterdir()):
        from inspector.synth import write_dataset

        write_dataset(tmp / "plain", 60, seed=SYNTH_SEED)  # pictures for speed only
        folder = tmp / "plain" / "images"
    bf16 = "BF16" in sig.get("openvino", []) and ds is not None
    cands = candidates(cores(), backends, bf16, path.suffix.lower())

    def speed(c) -> float:
        return _pipeline_fps(detector(c), folder, cfg, n=max(60, len(list(folder.iterdir()))) * 2)

    def accuracy(c) -> tuple[float | None, list[str]]:
        if ds is None:
            return None, []
        from inspector.evaluation import evaluate
        from inspector.rules import Recipe

        verdicts: list[str] = []
        det = detector(c)
        det.conf = 0.001  # mAP from every box down to a low confidence, as ``inspector evaluate`` counts it
        try:
            rep = evaluate(det, ds, images, Recipe(cfg.recipe), on_image=lambda im, v, d: verdicts.append(v.value))
        finally:
            det.conf = 0.25
        return rep.map50, verdicts

    measured = measure(cands, speed, accuracy, a.rounds, progress=log.info)
    return {"measured": measured, "reference": reference, "images": len(images)}


def _pipeline_fps(det, folder: Path, cfg, n: int) -> float:
    """Parts/s of the model as the station runs it: a folder decoded on its own thread, the model queued,
    the recipe; nothing stored (the same for every candidate)."""
    from inspector.config import RunMode
    from inspector.pipeline import Pipeline
    from inspector.rules import Recipe
    from inspector.runner import Runner
    from inspector.sources import FolderSource

    class _Discard:
        def write_batch(self, inspections: list) -> list[int]:
            return list(range(len(inspections)))

    src = FolderSource(folder, loop=True, target_hw=det.input_hw)
    runner = Runner(src, lambda: Pipeline(det, Recipe(cfg.recipe), cfg.quality), _Discard(), RunMode.PART,
                    max_frames=n)
    runner.start()
    runner.join()
    if runner.error is not None:
        raise runner.error
    return runner.stats().fps
