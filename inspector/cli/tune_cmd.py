"""``inspector tune``: measure the backends, precisions and thread counts this machine offers on the active
model, keep the safe ones, record the fastest (``inspector.detection.setup``)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from inspector.core.errors import ConfigError

log = logging.getLogger(__name__)


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


def tune(a: argparse.Namespace) -> int:
    from inspector.cli.run_cmd import build_config
    from inspector.detection.detector import available_backends, pick_model
    from inspector.detection.setup import cpu_signature
    from inspector.lifecycle.tune import tune_model
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
    backends = [b.value for b in available_backends() if a.backend in ("auto", b.value)]
    if not backends:
        raise ConfigError(f"the {a.backend} backend is not installed here.")
    where = tune_model(path, sha, cfg, backends, data=Path(a.data) if a.data else None, images=a.images,
                       rounds=a.rounds)
    sig = cpu_signature()
    best = json.loads(where.read_text())
    for d in best["candidates"]:
        print(f"{d['label']:<22} {d['parts_per_s']:7.1f} parts/s  mAP50 {d['map50']}  agreement "
              f"{d['agreement']}  {'ok' if d['allowed'] else 'refused'}: {d['why']}")
    chosen = best.get("chosen")
    flags = " ".join(sig["flags"]) or "unknown"
    print(f"chosen: {chosen['label'] if chosen else 'none'} (CPU flags: {flags}); recorded in {where}")
    if a.json:
        print(json.dumps(best))
    return 0


