"""Fine-tuning and training with Ultralytics, and the model card that records how a model was made.

``train`` converts any supported data set into a cache, trains (from ``yolo11n.yaml`` when no base
file is given: nothing is downloaded), keeps the best weights if interrupted, exports ONNX and
writes ``card.md`` and ``card.json`` beside the weights in the output folder. A base or resumed
``.pt`` is a pickle, and a base ``.yaml`` names code: Ultralytics gets neither, only what the gate
``inspector.detection.checkpoint.safe_source`` rebuilt from their tensors and checked definitions in a
private folder, so no code in them runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from inspector.core.clock import format_duration
from inspector.core.errors import DatasetError, ModelError
from inspector.core.files import write_atomic
from inspector.detection.card import ModelCard, write_card
from inspector.detection.checkpoint import resumable, safe_source
from inspector.detection.offline import keep_data_local
from inspector.detection.outputs import refuse_trusted_folder
from inspector.detection.registry import ModelRegistry, sha256_file
from inspector.detection.setup import cores
from inspector.training.datacheck import camera_scale
from inspector.training.datasets import load_dataset, to_ultralytics
from inspector.training.plan import SCRATCH_BASE, advise_imgsz, choose_base, training_seconds

log = logging.getLogger(__name__)

CLOSE_MOSAIC_SHARE = 0.2  # the last fifth of the epochs (however many the budget allows) trains without mosaic


@dataclass(frozen=True)
class TrainProgress:
    epoch: int
    epochs: int
    loss: float
    map50: float | None
    eta_s: float
    batch: int = 0  # within the epoch (0: the epoch is done, with its validation)
    batches: int = 0


EXPORT_MIN_S = 10.0  # at least this long kept for the ONNX export and the card after the final validation
BATCH_EVERY_S = 2.0  # progress within an epoch at most this often (and at the first batch)
RUN_FILE = "inspector-run.json"  # in the run folder: the base, the data set's hash and the budget's end, for --resume


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


@dataclass
class _Stop:
    """Why and when the training loop should stop early: the budget's deadline, or Ctrl-C."""

    deadline: float | None = None
    interrupted: bool = False
    reason: str = ""
    notes: list[str] = field(default_factory=list)


def _graceful_sigint(stop: _Stop, say: Callable[[str], None]) -> dict:
    """First Ctrl-C (or SIGTERM, as a service manager or ``kill`` sends): stop after the current step, validate,
    keep the best and leave a run that ``--resume`` continues; the second stops at once. Returns the handlers
    replaced, to put back."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum, frame) -> None:
        if stop.interrupted:
            raise KeyboardInterrupt
        stop.interrupted = True
        stop.reason = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        say(f"stopping ({stop.reason}): finishing this step, then validating and keeping the best weights so far; "
            "the run can go on with --resume; Ctrl-C again stops at once")

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _add_budget_callbacks(model, stop: _Stop, stop_file: Path | None = None) -> None:
    def on_batch_end(trainer) -> None:
        if stop_file is not None and not stop.interrupted and stop_file.exists():
            stop.interrupted = True  # a cancel from the window: the same clean stop as Ctrl-C, on any platform
            stop.reason = "cancelled"
            log.warning("stopping (%s appeared): validating and keeping the best weights so far", stop_file)
        if stop.interrupted:
            trainer.stop = True
        elif stop.deadline is not None and time.time() > stop.deadline:
            stop.reason = stop.reason or "time budget"
            trainer.stop = True

    def on_fit_epoch_end(trainer) -> None:
        # the budget fixes the number of epochs only after the first one; keep mosaic off for the last fifth
        if trainer.args.close_mosaic:
            trainer.args.close_mosaic = max(1, round(CLOSE_MOSAIC_SHARE * trainer.epochs))

    model.add_callback("on_train_batch_end", on_batch_end)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def _train_on_every_core(model, n: int) -> int:
    """Train with ``n`` torch threads; returns the count before, to restore.

    On a CPU, Ultralytics sets torch to all cores but one (to leave one for data loading) and then loads the
    data in the training process itself (``workers = 0``): on a 2-core PC the second core idled. NEU-DET at
    224 px, 2 cores: 18.8 images/s with one thread, 29.4 with two; a loader process on top gained nothing
    (28.3), so the loading stays where Ultralytics puts it."""
    import torch

    before = torch.get_num_threads()
    model.add_callback("on_pretrain_routine_start", lambda trainer: _set_torch_threads(n))
    # the final validation of the best weights loads them afresh, and Ultralytics' device choice resets the count
    model.add_callback("on_val_batch_start", lambda validator: _set_torch_threads(n))
    return before


def train(data: Path | str, out: Path | str, *, base: str | None = None, epochs: int = 50,
          imgsz: int | None = 320, batch: int = 16, hours: float | None = None, resume: bool = False,
          workers: int = 2, seed: int = 0, name: str | None = None, command: str | None = None,
          progress: Callable[[TrainProgress], None] | None = None, export_onnx: bool = True,
          registry: ModelRegistry | None = None, time_budget_s: float | None = None, keep_base: bool = False,
          say: Callable[[str], None] = log.info, stop_file: Path | None = None, threads: int = 0,
          tile: int = 0, overlap: int = 0, negatives: float = 1.0, started_at: float | None = None) -> ModelCard:
    """Train and write weights, ONNX and the model card into ``out``; return the card.

    ``registry``: the hashes trusted on the station (default: the shipped ones); any other ``.pt``
    must pass the weights-only loader. ModelError for a file that does not. ``out`` may not hold a
    trusted model, unless resuming the run it holds.
    ``time_budget_s`` (or ``hours``) bounds the whole call, validation and export included: the
    epochs are fitted to it so the learning-rate schedule ends with it. ``imgsz=None`` takes the
    size the data's box sizes suggest. ``base`` is chosen by ``train_plan.choose_base``.
    Ctrl-C (SIGINT, in the main thread), or ``stop_file`` appearing (a cancel from the window), stops after the
    current step and keeps the best weights. ``threads`` 0 trains on every usable core.
    ``tile`` (camera pixels, with ``overlap``) trains on the tiles the station's tiled recipe judges
    (``inspector.training.tiles``; ``imgsz`` then defaults to the tile: the camera's own scale); the card
    records the tiling. ``started_at`` (a ``time.time()``): when the budget began, such as the command's process
    start (its interpreter start and imports are then inside the budget); default now.
    """
    registry = registry or ModelRegistry()
    keep_data_local()
    started = min(started_at, time.time()) if started_at else time.time()
    out = Path(out)
    refuse_models_root(out)
    if not (resume and (out / "run" / "weights" / "last.pt").exists()):
        refuse_trusted_folder(out, registry.trusted())
    name = name or out.name
    run_dir = out / "run"
    if hours and not time_budget_s:
        time_budget_s = hours * 3600
    ds = load_dataset(data)
    if not ds.splits.get("train"):
        raise DatasetError(f"{data}: the training split is empty.")
    notes: dict = {"camera_scale": camera_scale(ds)}  # before any tiling: the pictures as the camera gives them
    if tile:
        from inspector.detection.tiling import Tiling
        from inspector.training.tiles import tile_dataset

        try:
            tiling = Tiling(int(tile), int(overlap))
        except ValueError as e:
            raise DatasetError(f"--tile {tile} --overlap {overlap}: {e}.") from None
        ds, notes["tiling"] = tile_dataset(ds, tiling, default_cache_dir(), negatives, seed, say)
        if imgsz is None:
            imgsz = -(-tiling.size // 32) * 32
            notes["imgsz_note"] = f"imgsz {imgsz}: the {tiling.size}-px tiles at the camera's own scale"
    if imgsz is None:
        advice = advise_imgsz(ds)
        imgsz = advice.imgsz
        notes["imgsz_note"] = advice.message
        say(f"image size: {advice.message}")
    data_yaml = to_ultralytics(ds, default_cache_dir())
    if "tiling" not in notes:
        from inspector.training.tiles import native_tiling

        native = native_tiling(ds, imgsz)
        if native:
            notes["tiling"] = native

    from ultralytics import YOLO

    private = Path(tempfile.mkdtemp(prefix="inspector-train-"))  # this process's own: what Ultralytics reads
    try:
        return _fit(private, YOLO, ds=ds, data=data, data_yaml=data_yaml, out=out, run_dir=run_dir, name=name,
                    base=base, epochs=epochs, imgsz=imgsz, batch=batch, resume=resume, workers=workers, seed=seed,
                    command=command, progress=progress, export_onnx=export_onnx, registry=registry,
                    time_budget_s=time_budget_s, keep_base=keep_base, say=say, stop_file=stop_file,
                    threads=threads, notes=notes, started=started)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _fit(private: Path, YOLO, *, ds, data, data_yaml, out: Path, run_dir: Path, name: str, base, epochs: int,
         imgsz: int, batch: int, resume: bool, workers: int, seed: int, command, progress, export_onnx: bool,
         registry: ModelRegistry, time_budget_s, keep_base: bool, say, stop_file, threads: int, notes: dict,
         started: float) -> dict:
    """Load the base (through the gate, into ``private``), train, keep the best weights and finalize."""
    last = run_dir / "weights" / "last.pt"
    run_info = _read_run_file(run_dir) if resume else {}
    if resume:
        _restore_if_cut(last, say)
        model = _resumable(out, last, YOLO, private, {"data": str(data_yaml), "project": str(out.resolve()),
                                                     "name": "run", "exist_ok": True, "device": "cpu"})
        base_label = run_info.get("base") or "unknown (a run started before Inspector kept its base)"
        notes["resumed"] = True
    else:
        choice = choose_base(base, ds.classes, registry.trusted(), keep=keep_base)
        if choice.note:
            say(f"base: {choice.note}")
            notes["base_note"] = choice.note
        if choice.asked and choice.asked != choice.ref:
            notes["base_asked"] = choice.asked
        base_ref = _resolve_base(choice.ref)
        base_label = _shipped_label(base_ref)
        # never the user's file: its tensors in a network built here, or its architecture checked as data
        clean = safe_source(base_ref, private / "base", nc=len(ds.classes))
        try:
            model = YOLO(str(clean))
        except Exception as e:  # a corrupt or foreign file: Ultralytics raises many kinds
            raise ModelError(f"cannot load base model {base_ref}: {e}") from e
        run_info = {"base": base_label, "base_sha256": sha256_file(Path(base_ref)) if Path(base_ref).is_file() else "",
                    "data_sha256": data_sha256(ds)}
    notes["data_sha256"] = run_info.get("data_sha256") or data_sha256(ds)
    notes["base_sha256"] = run_info.get("base_sha256", "")
    seen: dict = {"epochs": epochs, "batch": 0, "said": 0.0, "loop_start": None}

    def on_epoch_start(trainer) -> None:
        seen["batch"] = 0
        seen["loop_start"] = seen["loop_start"] or time.time()

    def on_batch_end(trainer) -> None:
        seen["batch"] += 1
        now = time.time()
        if progress is None or (seen["batch"] > 1 and now - seen["said"] < BATCH_EVERY_S):
            return
        seen["said"] = now
        batches = len(trainer.train_loader) if getattr(trainer, "train_loader", None) is not None else 0
        done = trainer.epoch - trainer.start_epoch + (seen["batch"] / batches if batches else 0)
        total = max(trainer.epochs - trainer.start_epoch, 1)
        took = now - (seen["loop_start"] or started)
        eta = took / done * (total - done) if done > 0 else float("nan")
        if stop.deadline is not None:
            eta = min(eta, max(0.0, stop.deadline - now)) if eta == eta else max(0.0, stop.deadline - now)
        tl = getattr(trainer, "tloss", None)
        loss = float(tl.sum()) if tl is not None and hasattr(tl, "sum") else float("nan")
        progress(TrainProgress(trainer.epoch + 1, trainer.epochs, loss, None, eta, seen["batch"], batches))

    def on_train_epoch_end(trainer) -> None:
        seen["val_start"] = time.time()

    def on_epoch_end(trainer) -> None:
        val_start = seen.pop("val_start", None)
        if val_start is None:
            return  # Ultralytics' final validation calls this once more, as an epoch that never ran
        seen["epochs"] = trainer.epochs
        if run_info.get("budget_end") and stop.deadline is not None:
            # the fixed costs after the loop, measured: the final validation takes about one epoch's validation,
            # the export and the card about as long again; the loop ends early enough to leave them their time
            val_s = time.time() - val_start
            needed = 2.5 * val_s + EXPORT_MIN_S
            end = min(stop.deadline, float(run_info["budget_end"]) - needed)
            if end < stop.deadline:
                stop.deadline = end
                notes["reserved_s"] = round(needed, 1)
                if getattr(trainer.args, "time", None):  # Ultralytics refits the epochs to the shorter loop
                    trainer.args.time = max(end - trainer.train_time_start, 1.0) / 3600
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
    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_train_epoch_end", on_train_epoch_end)
    model.add_callback("on_train_batch_end", on_batch_end)
    per_class: dict = {}
    model.add_callback("on_train_end", lambda trainer: per_class.update(_per_class_ap(trainer)))
    notes["threads"] = threads if threads > 0 else cores()
    threads_before = _train_on_every_core(model, notes["threads"])
    _keep_a_sound_copy(model, last)
    stop = _Stop()
    _add_budget_callbacks(model, stop, Path(stop_file) if stop_file else None)
    args = dict(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device="cpu",
                workers=workers, project=str(out.resolve()), name="run", exist_ok=True, plots=False,
                verbose=False, amp=False, seed=seed, deterministic=False, val=True, patience=1000)
    if not base_label.endswith((".yaml", ".yml")) and not resume:
        args["warmup_epochs"] = 1.0  # a pre-trained start needs a short warm-up; a budget has few epochs
    if time_budget_s and not resume:
        loop_s = training_seconds(time_budget_s, time.time() - started)
        stop.deadline = time.time() + loop_s
        args["time"] = loop_s / 3600  # Ultralytics refits the epochs (and the LR schedule) after each one
        notes["time_budget_s"] = round(time_budget_s, 1)
        run_info.update(budget_end=started + time_budget_s, loop_end=stop.deadline, time_budget_s=time_budget_s)
        say(f"time budget {format_duration(time_budget_s)}: {loop_s / 60:.1f} min of training, the rest for the "
            "final validation, export and card")
    elif resume and run_info.get("loop_end"):
        # a resumed run keeps the original budget's end, not a fresh budget
        left = float(run_info["budget_end"]) - time.time()
        if float(run_info["loop_end"]) <= time.time():
            raise ModelError(f"the time budget of the run in {out} ended at "
                             f"{dt.datetime.fromtimestamp(float(run_info['budget_end'])):%H:%M:%S}; start a new run "
                             f"with --base {out} to train further.")
        stop.deadline = float(run_info["loop_end"])
        notes["time_budget_s"] = round(float(run_info["time_budget_s"]), 1)
        say(f"resuming within the original time budget: {max(0.0, left) / 60:.1f} min left")
    if not resume:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / RUN_FILE, json.dumps(run_info).encode())
    old_handlers = _graceful_sigint(stop, say)
    interrupted = False
    try:
        if resume:
            model.train(resume=True)
        else:
            model.train(**args)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("training interrupted: keeping the best weights so far")
    finally:
        for sig, old in old_handlers.items():
            signal.signal(sig, old)
        _set_torch_threads(threads_before)
    interrupted = interrupted or stop.interrupted
    if interrupted:
        _keep_resumable(last, say)
    notes["epochs_planned"] = seen["epochs"]
    if per_class:
        notes["validation"] = per_class
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        best = last
    if not best.exists():
        raise ModelError("training stopped before the first epoch finished: no weights to keep.")
    reason = stop.reason or ("Ctrl-C" if interrupted else "time budget" if time_budget_s and not resume else "")
    notes.update(_selection_summary(run_dir, reason))
    return finalize(best, out, name=name, data=Path(data), ds_classes=ds.classes, imgsz=imgsz,
                    epochs=notes.pop("epochs_planned"), base=base_label, command=command, interrupted=interrupted,
                    seconds=time.time() - started, export_onnx=export_onnx, extra=notes)


def refuse_models_root(out: Path) -> None:
    """``--out`` must name a model's own folder, never the folder that holds the models (the shipped ``models/``,
    or any folder whose sub-folders hold model cards): a run there would mix its files with every model's."""
    from inspector.detection.registry import shipped_models_dir

    target = out.resolve()
    roots = {shipped_models_dir().resolve()}
    holds_cards = target.is_dir() and any((d / "card.json").is_file() for d in target.iterdir() if d.is_dir())
    if target in roots or holds_cards:
        raise ModelError(f"--out {out} is the folder that holds the models, not a model's own folder: name a new "
                         f"folder inside it, such as {out / 'my-model'}.")


def data_sha256(ds) -> str:
    """SHA-256 over the data set as trained on: each split's images (their bytes) and boxes, and the classes."""
    import hashlib

    h = hashlib.sha256(repr(ds.classes).encode())
    for split, ims in sorted(ds.splits.items()):
        for im in sorted(ims, key=lambda i: i.path.name):
            h.update(f"{split}|{im.path.name}|{sha256_file(im.path)}|{im.boxes}\n".encode())
    return h.hexdigest()


def _per_class_ap(trainer) -> dict:
    """The final validation of the kept weights, per class (AP50 and AP50-95), from Ultralytics' validator."""
    try:
        metrics = trainer.validator.metrics
        names = trainer.validator.names if hasattr(trainer.validator, "names") else trainer.data["names"]
        box = metrics.box
        found = {int(c): i for i, c in enumerate(box.ap_class_index)}
        # every class: one the model never found in the val split is 0, not missing
        out = {str(n): {"ap50": round(float(box.ap50[found[k]]), 4) if k in found else 0.0,
                        "ap50_95": round(float(box.ap[found[k]]), 4) if k in found else 0.0}
               for k, n in (names.items() if isinstance(names, dict) else enumerate(names))}
        return {"split": "val", "map50": round(float(box.map50), 4), "map50_95": round(float(box.map), 4),
                "per_class": out}
    except Exception:  # noqa: BLE001 - the card then says nothing rather than something wrong
        log.info("no per-class figures from the final validation", exc_info=True)
        return {}


def _read_run_file(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _keep_resumable(last: Path, say: Callable[[str], None]) -> None:
    """After a stop by Ctrl-C or SIGTERM, put back the last epoch's checkpoint with its optimizer (Ultralytics
    strips it from ``last.pt`` when training ends), so that ``--resume`` goes on from there."""
    sound = _sound_copy(last)
    if _intact(sound):
        shutil.copy2(sound, last)
        say("the run can go on from its last epoch: train again with --resume")


def _shipped_label(ref: str) -> str:
    """A shipped base as 'models/NAME/FILE' (the same on every machine); anything else as given."""
    from inspector.detection.registry import shipped_models_dir

    try:
        rel = Path(ref).resolve().relative_to(shipped_models_dir().resolve())
    except (ValueError, OSError):
        return ref
    return f"models/{rel.as_posix()}"


def _keep_a_sound_copy(model, last: Path) -> None:
    """After each save of ``last.pt`` (written in place by Ultralytics), copy it atomically to ``last.sound.pt``.

    A power cut while ``last.pt`` is being written leaves it cut short; ``--resume`` then goes on from the
    copy, one epoch earlier, instead of failing.
    """
    def on_model_save(trainer) -> None:
        try:
            write_atomic(_sound_copy(last), last.read_bytes())
        except OSError as e:
            log.warning("could not keep a copy of %s (%s): a power cut while it is saved would lose the run", last, e)

    model.add_callback("on_model_save", on_model_save)


def _sound_copy(last: Path) -> Path:
    return last.with_name("last.sound.pt")


def _intact(path: Path) -> bool:
    """Whether a checkpoint file is whole (PyTorch checkpoints are zip files: every member's CRC checks)."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def _cut_short(path: Path) -> bool:
    """A checkpoint that began to be written (a zip's first bytes) but is not whole. Anything else (a bare
    pickle, junk) is left for the trust check to refuse, unread."""
    try:
        with open(path, "rb") as f:
            begun = f.read(4) == b"PK\x03\x04"
    except OSError:
        return False
    return begun and not _intact(path)


def _restore_if_cut(last: Path, say: Callable[[str], None]) -> None:
    """Put the sound copy back in place of a ``last.pt`` that a power cut left damaged."""
    if not last.exists() or not _cut_short(last):
        return
    sound = _sound_copy(last)
    if not _intact(sound):
        raise ModelError(f"cannot resume: {last} is damaged (cut short while it was being saved, a power cut?) and "
                         "there is no sound copy of an earlier epoch; start a new run.")
    say(f"{last.name} is damaged (cut short while it was being saved); resuming from the copy of the epoch before")
    os.replace(sound, last)


def _resumable(out: Path, last: Path, yolo_cls, private: Path, train_args: dict):
    """The model of a stopped run that can go on, rebuilt from the checkpoint's tensors (its paths replaced by
    ``train_args``) in ``private``; a clear error when there is none."""
    if not last.exists():
        raise ModelError(f"nothing to resume in {out}: no {last}.")
    if not resumable(last):  # read as data: a refusal for a file that may hold code
        raise ModelError(f"the run in {out} ended cleanly (budget, Ctrl-C or its last epoch), so there is nothing "
                         f"to resume; to train further, start a new run with --base {out}.")
    clean = safe_source(last, private / "resume", training_state=True, train_args=train_args)
    return yolo_cls(str(clean))


def _selection_summary(run_dir: Path, stop_reason: str) -> dict:
    """Epochs done, the best epoch by val mAP50 and the split used to pick it, from Ultralytics' results.csv."""
    import csv

    try:
        with open(run_dir / "results.csv", newline="") as f:
            rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    except OSError:
        return {}
    scored = [r for r in rows if r.get("metrics/mAP50(B)") not in (None, "")]
    if not scored:
        return {}
    best = max(scored, key=lambda r: 0.1 * float(r["metrics/mAP50(B)"]) + 0.9 * float(r["metrics/mAP50-95(B)"]))
    return {"best_epoch": int(float(best["epoch"])), "train_val_map50": round(float(best["metrics/mAP50(B)"]), 4),
            "train_val_map50_95": round(float(best["metrics/mAP50-95(B)"]), 4),
            "selection": "the data set's val split picked the best epoch (Ultralytics fitness: 0.1 mAP50 + "
                         "0.9 mAP50-95); it is not a held-out test",
            "stopped_by": stop_reason or "last epoch"}


def finalize(weights: Path, out: Path, *, name: str, data: Path, ds_classes: tuple[str, ...], imgsz: int,
             epochs: int, base: str, command: str | None, interrupted: bool, seconds: float,
             export_onnx: bool = True, extra: dict | None = None) -> ModelCard:
    """Copy the weights to ``out/NAME.pt``, export ONNX, validate, and write the card."""
    from ultralytics import YOLO

    from inspector.detection.checkpoint import rebuild

    out.mkdir(parents=True, exist_ok=True)
    pt = out / f"{name}.pt"
    with tempfile.TemporaryDirectory(prefix="inspector-final-") as tmp:
        # the weights without the optimizer (as Ultralytics strips them), rebuilt from the run's tensors: no pickle
        # of the run folder is unpickled, even one changed while it trained; ONNX from the private copy
        clean = rebuild(weights, Path(tmp) / pt.name, half=True, train_args={"imgsz": imgsz})
        shutil.copy2(clean, pt)
        files = [pt]
        if export_onnx:
            onnx_path = Path(YOLO(str(clean)).export(format="onnx", imgsz=imgsz, dynamic=False, simplify=True,
                                                       opset=17, verbose=False))
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
    card.update(extra or {})
    return write_card(out, card)


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
