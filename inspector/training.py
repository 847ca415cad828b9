"""Fine-tuning and training with Ultralytics, and the model card that records how a model was made.

``train`` converts any supported data set into a cache, trains (from ``yolo11n.yaml`` when no base
file is given: nothing is downloaded), keeps the best weights if interrupted, exports ONNX and
writes ``card.md`` and ``card.json`` beside the weights in the output folder. A base or resumed
``.pt`` is a pickle: it is loaded only when its hash is trusted or the weights-only loader reads it
(``ModelRegistry.check_or_vet``), so no code in it runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inspector.datasets import load_dataset, to_ultralytics
from inspector.errors import DatasetError, ModelError
from inspector.outputs import refuse_trusted_folder
from inspector.privacy import keep_data_local
from inspector.registry import ModelRegistry, sha256_file

log = logging.getLogger(__name__)

SCRATCH_BASE = "yolo11n.yaml"


@dataclass(frozen=True)
class TrainProgress:
    epoch: int
    epochs: int
    loss: float
    map50: float | None
    eta_s: float


def default_cache_dir() -> Path:
    import os

    import platformdirs

    if os.environ.get("INSPECTOR_HOME"):
        return Path(os.environ["INSPECTOR_HOME"]) / "cache" / "datasets"
    return Path(platformdirs.user_cache_dir("inspector", appauthor=False)) / "datasets"


def _resolve_base(base: str | None) -> str:
    if base is None:
        return SCRATCH_BASE
    p = Path(base)
    if p.suffix in (".yaml", ".yml") and not p.exists():
        return base  # an Ultralytics architecture name such as yolo11s.yaml: built, not downloaded
    if not p.exists():
        raise ModelError(f"base model not found: {base}. Give a .pt file on this machine, "
                         f"or leave --base out to start from {SCRATCH_BASE}.")
    if p.is_dir():
        pts = sorted(p.glob("*.pt"))
        if not pts:
            raise ModelError(f"{base} holds no .pt file.")
        return str(pts[0])
    return str(p)


def train(data: Path | str, out: Path | str, *, base: str | None = None, epochs: int = 50,
          imgsz: int = 320, batch: int = 16, hours: float | None = None, resume: bool = False,
          workers: int = 2, seed: int = 0, name: str | None = None, command: str | None = None,
          progress: Callable[[TrainProgress], None] | None = None, export_onnx: bool = True,
          registry: ModelRegistry | None = None) -> dict:
    """Train and write weights, ONNX and the model card into ``out``; return the card.

    ``registry``: the hashes trusted on the station (default: the shipped ones); any other ``.pt``
    must pass the weights-only loader. ModelError for a file that does not. ``out`` may not hold a
    trusted model, unless resuming the run it holds.
    """
    registry = registry or ModelRegistry()
    keep_data_local()
    out = Path(out)
    if not (resume and (out / "run" / "weights" / "last.pt").exists()):
        refuse_trusted_folder(out, registry.trusted())
    name = name or out.name
    run_dir = out / "run"
    started = time.time()
    ds = load_dataset(data)
    if not ds.splits.get("train"):
        raise DatasetError(f"{data}: the training split is empty.")
    data_yaml = to_ultralytics(ds, default_cache_dir())

    from ultralytics import YOLO

    last = run_dir / "weights" / "last.pt"
    if resume:
        if not last.exists():
            raise ModelError(f"nothing to resume in {out}: no {last}.")
        registry.check_or_vet(last)
        model = YOLO(str(last))
    else:
        base_ref = _resolve_base(base)
        if base_ref.lower().endswith(".pt"):
            registry.check_or_vet(Path(base_ref))
        try:
            model = YOLO(base_ref)
        except Exception as e:  # a corrupt or foreign file: Ultralytics raises many kinds
            raise ModelError(f"cannot load base model {base_ref}: {e}") from e

    def on_epoch_end(trainer) -> None:
        if progress is None:
            return
        ep = min(trainer.epoch + 1, trainer.epochs)
        tl = getattr(trainer, "tloss", None)
        if isinstance(tl, dict):
            loss = float(sum(float(v) for v in tl.values()))
        else:
            loss = float(tl.sum()) if tl is not None else float("nan")
        m50 = trainer.metrics.get("metrics/mAP50(B)") if getattr(trainer, "metrics", None) else None
        took = time.time() - started
        total = trainer.epochs
        progress(TrainProgress(ep, total, loss, m50, took / ep * (total - ep)))

    model.add_callback("on_fit_epoch_end", on_epoch_end)
    args = dict(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device="cpu",
                workers=workers, project=str(out.resolve()), name="run", exist_ok=True, plots=False,
                verbose=False, amp=False, seed=seed, deterministic=False, val=True, patience=1000)
    if hours:
        args["time"] = hours
    interrupted = False
    try:
        if resume:
            model.train(resume=True)
        else:
            model.train(**args)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("training interrupted: keeping the best weights so far")
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        best = last
    if not best.exists():
        raise ModelError("training stopped before the first epoch finished: no weights to keep.")
    return finalize(best, out, name=name, data=Path(data), ds_classes=ds.classes, imgsz=imgsz,
                    epochs=epochs, base=base or SCRATCH_BASE, command=command, interrupted=interrupted,
                    seconds=time.time() - started, export_onnx=export_onnx)


def finalize(weights: Path, out: Path, *, name: str, data: Path, ds_classes: tuple[str, ...], imgsz: int,
             epochs: int, base: str, command: str | None, interrupted: bool, seconds: float,
             export_onnx: bool = True) -> dict:
    """Copy the weights to ``out/NAME.pt``, export ONNX, validate, and write the card."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import strip_optimizer

    out.mkdir(parents=True, exist_ok=True)
    pt = out / f"{name}.pt"
    shutil.copy2(weights, pt)
    strip_optimizer(str(pt))
    files = [pt]
    if export_onnx:
        onnx_path = Path(YOLO(str(pt)).export(format="onnx", imgsz=imgsz, dynamic=False, simplify=True,
                                               opset=17, verbose=False))
        if onnx_path.resolve() != (out / f"{name}.onnx").resolve():
            shutil.move(str(onnx_path), out / f"{name}.onnx")
        files.append(out / f"{name}.onnx")
    ckpt_meta = _read_epochs_done(weights)
    synth_note = _synth_note(data)
    card = {
        "name": name,
        "task": "detect",
        "architecture": "yolo11n",
        "base": base,
        "data": str(data),
        "data_note": synth_note,
        "classes": list(ds_classes),
        "imgsz": imgsz,
        "epochs_planned": epochs,
        "epochs_done": ckpt_meta,
        "interrupted": interrupted,
        "train_seconds": round(seconds, 1),
        "command": command or " ".join(sys.argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "validation": {},
        "files": {f.name: {"sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files},
    }
    write_card(out, card)
    return card


def _synth_note(data: Path) -> str:
    """For a folder written by ``inspector synth``: the command that makes the same data again."""
    try:
        meta = json.loads((Path(data) / "synth.json").read_text())
        return f"inspector synth --count {meta['count']} --seed {meta['seed']} ({meta['defective']} defective)"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _read_epochs_done(weights: Path) -> int | None:
    results = weights.parent.parent / "results.csv"
    try:
        return max(0, len(results.read_text().strip().splitlines()) - 1)
    except OSError:
        return None


def write_card(out: Path, card: dict) -> None:
    """Write card.json and its human-readable twin card.md."""
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    lines = [f"# Model card: {card['name']}", "",
             f"- Task: {card['task']} ({card['architecture']}), image size {card['imgsz']} px",
             f"- Classes: {', '.join(card['classes'])}",
             f"- Base: {card['base']}",
             f"- Data: {card['data']}" + (f" ({card['data_note']})" if card.get("data_note") else ""),
             f"- Epochs: {card.get('epochs_done')} done of {card['epochs_planned']} planned"
             + (" (interrupted)" if card.get("interrupted") else ""),
             f"- Training time: {card['train_seconds']:.0f} s on {card.get('machine', '?')}",
             f"- Date: {card['date']}",
             f"- Command: `{card['command']}`", "", "## Files", ""]
    lines += [f"- `{n}`: {v['bytes']} bytes, SHA-256 `{v['sha256']}`" for n, v in card["files"].items()]
    if card.get("export"):
        from inspector.export import export_card_lines

        lines += export_card_lines(card["export"])
    val = card.get("validation") or {}
    if val:
        lines += ["", "## Evaluation", ""]
        if val.get("command"):
            lines += [f"Command: `{val['command']}`", ""]
        lines += ["```", json.dumps({k: v for k, v in val.items() if k != "command"}, indent=2), "```"]
    (out / "card.md").write_text("\n".join(lines) + "\n")
