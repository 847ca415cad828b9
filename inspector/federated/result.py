"""Where a federation starts and what it leaves: the global model's first weights, read from a base checkpoint
as data, and the federated model written as any trained model is (weights, ONNX, a card with its hashes),
the card naming the rounds, the stations and how many parts each contributed. Never trusted by being written."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.core.errors import ModelError
from inspector.detection.card import ModelCard, load_card
from inspector.detection.registry import sha256_file
from inspector.federated.flower import Federation
from inspector.federated.local import arrays_of, build_network, load_arrays


@dataclass(frozen=True)
class GlobalStart:
    """The first global weights and what every station needs to build the same network."""

    arrays: tuple[np.ndarray, ...]
    architecture: str
    classes: tuple[str, ...]
    imgsz: int
    base: str
    base_sha256: str


def global_start(base: Path | str, imgsz: int | None = None, classes: Sequence[str] | None = None) -> GlobalStart:
    """The base checkpoint's tensors in the bundled network they fit (nothing in the file is called).

    ``classes`` other than the base's: a fresh head for them on the base's other tensors (every tensor whose
    shape fits), as fine-tuning a general base on new defect classes starts."""
    from inspector.detection.checkpoint import network

    path = Path(base)
    if path.is_dir():
        pts = sorted(path.glob("*.pt"))
        if not pts:
            raise ModelError(f"{base} holds no .pt file to start the federation from.")
        path = pts[0]
    if not path.is_file():
        raise ModelError(f"base model not found: {base}.")
    model, arch = network(path)
    card = load_card(path)
    size = imgsz or (card.imgsz if card is not None else 320)
    own = tuple(model.names[i] for i in sorted(model.names))
    if classes and tuple(classes) != own:
        fresh = build_network(arch, classes)
        state = fresh.state_dict()
        fitting = {k: v for k, v in model.state_dict().items() if k in state and v.shape == state[k].shape}
        fresh.load_state_dict(fitting, strict=False)
        model, own = fresh, tuple(classes)
    return GlobalStart(tuple(arrays_of(model)), arch, own, int(size), str(path), sha256_file(path))


def card_section(fed: Federation, round_budget_s: float, min_stations: int) -> dict:
    """The card's ``federated`` entry: per round and per station, figures only (no picture or file name)."""
    stations: dict[str, dict] = {}
    per_round = []
    for rec in fed.rounds:
        row = {}
        for name, fit in sorted(rec.fit.items()):
            s = stations.setdefault(name, {"parts": 0, "rounds": 0})
            s["parts"] = max(s["parts"], int(fit.get("parts", 0)))
            s["rounds"] += 1
            row[name] = {k: fit[k] for k in ("parts", "seconds", "batches", "loss") if k in fit}
        for name, val in sorted(rec.val.items()):
            if "map50" in val:
                row.setdefault(name, {}).update(val_map50=val["map50"], val_parts=val.get("parts", 0))
        per_round.append({"round": rec.round, "stations": row})
    return {"rounds": len(fed.rounds), "strategy": fed.strategy, "round_budget_s": round(float(round_budget_s), 1),
            "min_stations": int(min_stations), "stations": stations, "per_round": per_round,
            "seconds": fed.seconds,
            "privacy": "only weights and figures left the stations: no picture, no label, no file name"}


def write_model(fed: Federation, start: GlobalStart, out: Path | str, *, round_budget_s: float, min_stations: int,
                name: str | None = None, command: str = "", export_onnx: bool = True) -> ModelCard:
    """The final global weights as a model folder like ``inspector train`` writes (weights, ONNX, card)."""
    import torch

    from inspector.training.train import finalize, refuse_models_root

    out = Path(out)
    refuse_models_root(out)
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"{out} is not empty: choose a new folder for the federated model.")
    model = build_network(start.architecture, start.classes)
    load_arrays(model, fed.arrays)
    section = card_section(fed, round_budget_s, min_stations)
    with tempfile.TemporaryDirectory(prefix="inspector-federated-") as tmp:
        weights = Path(tmp) / "global.pt"
        torch.save({"model": model, "train_args": {"imgsz": start.imgsz, "task": "detect"}}, weights)
        return finalize(weights, out, name=name or out.name, data=Path(f"federated: {len(section['stations'])} "
                        "stations' own parts, never pooled"), ds_classes=start.classes, imgsz=start.imgsz,
                        epochs=0, base=start.base, command=command, interrupted=False, seconds=fed.seconds,
                        export_onnx=export_onnx, extra={"federated": section, "base_sha256": start.base_sha256})

