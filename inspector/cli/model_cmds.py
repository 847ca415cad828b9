"""Model commands: synth, train, evaluate, export, model add."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.core.config import ModelConfig, load_config, load_recipe
from inspector.core.errors import ConfigError
from inspector.lifecycle.export import CALIBRATION_IMAGES, MIN_CALIBRATION

if TYPE_CHECKING:
    from inspector.detection.card import ModelCard


def _progress_line(label: str, every: int = 25):
    def show(n: int, total: int) -> None:
        if n % every == 0 or n == total:
            print(f"\r{label} {n}/{total}", end="" if n < total else "\n", file=sys.stderr, flush=True)
    return show


def _synth(a: argparse.Namespace) -> int:
    from inspector.sources.synth import write_dataset

    meta = write_dataset(Path(a.out), a.count, a.seed, _progress_line("parts"))
    print(f"wrote {meta['count']} parts ({meta['defective']} defective) to {a.out}")
    return 0


def _station(a: argparse.Namespace):
    """(engine, sessions, registry) of the station's database: the models it trusts."""
    from station import default_db_url, open_db, trusted_models

    engine, sessions = open_db(getattr(a, "db", None) or default_db_url())
    try:
        registry = trusted_models(sessions)
    except Exception:
        engine.dispose()
        raise
    return engine, sessions, registry


def _process_started() -> float | None:
    """When this command's process started (a time budget bounds the whole command, its imports included)."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - unknown on this platform: the budget starts when training is called
        return None


def _train(a: argparse.Namespace) -> int:
    from inspector.training.progress import ProgressFile
    from inspector.training.train import TrainProgress

    if a.confirmed_good and (a.kind != "anomaly" or a.data):
        raise ConfigError("--confirmed-good goes with --kind anomaly and without --data: the pictures are the parts "
                          "QC confirmed good.")
    if not a.data and not a.confirmed_good:
        raise ConfigError("give --data (or, with --kind anomaly, --confirmed-good: the parts QC confirmed good).")
    stream = ProgressFile(a.progress) if a.progress else None

    def progress(p: TrainProgress) -> None:
        eta = f"ETA {p.eta_s / 60:.1f} min" if p.eta_s == p.eta_s else "ETA (after the first batches)"
        if p.batch:  # within an epoch
            print(f"epoch {p.epoch}/{p.epochs} batch {p.batch}/{p.batches} {eta}", flush=True)
            if stream is not None:
                stream.batch(p)
            return
        m = f" mAP50 {p.map50:.3f}" if p.map50 is not None else ""
        print(f"epoch {p.epoch}/{p.epochs} loss {p.loss:.3f}{m} {eta}", flush=True)
        if stream is not None:
            stream.epoch(p)

    def say(line: str) -> None:
        print(line, flush=True)
        if stream is not None:
            stream.note(line)

    try:
        return _train_with(a, progress, say, stream)
    except Exception as e:
        if stream is not None:
            stream.failed(e)
        raise


def _train_anomaly(a: argparse.Namespace, budget, cmd: str, registry, say):  # noqa: ANN001, ANN202
    """``--kind anomaly`` on ``--data``, or on the pictures of the parts QC confirmed good (copied first beside
    the model's folder, as ``OUT-good``: what it learnt from stays there to see)."""
    from inspector.training.anomaly import train_anomaly

    data = a.data
    if a.confirmed_good:
        from station import default_db_url, image_base, open_db
        from station.reports import export_good_parts

        url = a.db or default_db_url()
        good = Path(a.out).with_name(Path(a.out).name + "-good")
        engine, sessions = open_db(url)
        try:
            summary = export_good_parts(sessions, good, image_base(url, load_config(a.config))[0], product=a.product)
        finally:
            engine.dispose()
        say(f"copied to {good}: {summary.text()}" + (f" (product {a.product})" if a.product else ""))
        data = good
    return train_anomaly(data, a.out, time_budget_s=budget, base=Path(a.base) if a.base else None,
                         false_reject=a.false_reject, command=cmd, registry=registry, say=say)


def _train_with(a: argparse.Namespace, progress, say, stream) -> int:
    from db import TrustRepo
    from db.accounts import has_users
    from inspector.cli.signin import signed_in
    from inspector.detection.registry import sha256_file
    from inspector.training.train import train

    engine, sessions, registry = _station(a)
    try:
        with sessions.begin() as s:
            users = has_users(s)
        # registering the output is a QC action: signed in before the hours of training, not after
        actor = signed_in(a, sessions, "train") if a.user or not users else None
        cmd = "inspector " + " ".join(shlex.quote(x) for x in sys.argv[1:])
        budget = a.time_budget if a.time_budget is not None else (a.hours * 3600 if a.hours else None)
        if a.kind == "anomaly":
            card = _train_anomaly(a, budget, cmd, registry, say)
        else:
            card = train(a.data, a.out, base=a.base, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch,
                         resume=a.resume, command=cmd, progress=progress, registry=registry, time_budget_s=budget,
                         keep_base=a.keep_base, say=say, stop_file=a.stop_file, tile=a.tile, overlap=a.overlap,
                         started_at=_process_started())
        print(_reached(card))
        files = ", ".join(card.file_names)
        if actor is None:
            print(f"model written to {a.out}: {files}. Not trusted on this station: a signed-in QC or admin user "
                  f"can trust it with 'inspector model add {Path(a.out) / card.file_names[0]} --user NAME' "
                  "(or train with --user NAME).")
            if stream is not None:
                stream.done(card, Path(a.out), _reached(card), trusted_by="")
            return 0
        from db.writes import write

        def trust(s) -> None:  # noqa: ANN001
            for f in card.files:
                TrustRepo.add(s, actor, "model", f.sha256, f.name, {"file": str((Path(a.out) / f.name).resolve()),
                                                                     "trained_by": "inspector train"}, "train")
            card_file = Path(a.out) / "card.json"  # the card this run wrote: its image size is trusted with it
            if card_file.is_file():
                TrustRepo.add(s, actor, "model", sha256_file(card_file), "card.json",
                              {"file": str(card_file.resolve()), "trained_by": "inspector train"}, "train")
        write(sessions, trust, "Trusting the trained model")
        print(f"model written to {a.out}: {files} (trusted on this station by {actor.name})")
        if stream is not None:
            stream.done(card, Path(a.out), _reached(card), trusted_by=actor.name)
        return 0
    finally:
        engine.dispose()


def _reached(card: ModelCard) -> str:
    """One paragraph: what the run reached and which split chose the kept weights."""
    if card.task == "anomaly":
        an = card.extra.get("anomaly") or {}
        return (f"learnt normal from {an.get('learnt_from')} pictures in {card.train_seconds / 60:.1f} min; "
                f"threshold 0.50 = {(an.get('threshold') or {}).get('false_reject_quantile', 0):.1%} false rejects "
                f"on {an.get('held_out')} held-out good pictures; export parity {an.get('export_parity', 0):.1e}.")
    done = f"{card.epochs_done} epochs in {card.train_seconds / 60:.1f} min"
    if card.time_budget_s:
        done += f" (budget {card.time_budget_s / 60:.1f} min)"
    if card.interrupted:
        done += ", stopped by Ctrl-C"
    if card.train_val_map50 is None:
        return f"trained {done}."
    m95 = f"{card.train_val_map50_95:.3f}" if card.train_val_map50_95 is not None else "?"
    return (f"trained {done}; kept epoch {card.best_epoch}: val mAP50 {card.train_val_map50:.3f}, "
            f"mAP50-95 {m95}.\nNote: the val split was used for model selection "
            "(which epoch is kept), so these figures are optimistic; judge the model on parts it never saw.")


def _duration(text: str) -> float:
    from inspector.training.plan import parse_duration

    try:
        return parse_duration(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _evaluate(a: argparse.Namespace) -> int:
    from inspector.detection.detector import load_detector
    from inspector.inspection.rules import Recipe
    from inspector.training.datasets import load_dataset
    from inspector.training.evaluation import evaluate, format_report

    cfg = load_config(a.config)
    recipe_cfg = load_recipe(a.recipe) if a.recipe else cfg.recipe
    mcfg: ModelConfig = cfg.model.model_copy(update={k: v for k, v in
                                                    (("path", Path(a.model) if a.model else None),
                                                     ("backend", a.backend)) if v is not None})
    if a.model and _is_anomaly(Path(a.model)):
        return _evaluate_anomaly(a, mcfg, Recipe(recipe_cfg))
    ds = load_dataset(a.data)
    images = ds.split(a.split)
    engine, _, registry = _station(a)
    engine.dispose()
    detector = load_detector(mcfg, conf=0.001, registry=registry)
    judged = _tiled_for(detector, recipe_cfg)
    report = evaluate(judged, ds, images, Recipe(recipe_cfg), _progress_line("images"),
                      split=a.split or ("val" if ds.has_split_files else "all"))
    print(format_report(report))
    out = report.as_dict()
    out["model"] = str(detector.path)
    out["backend"] = detector.setup.backend
    if judged is not detector:
        out["tiling"] = {"tile": judged.tiling.size, "overlap": judged.tiling.overlap}
    if a.card:
        _record_in_card(detector, out)
    if a.json:
        print(json.dumps(out))
    return 0


def _tiled_for(detector, recipe_cfg):
    """The detector as a tiled recipe runs it (whole pictures scored in their own pixels), or as it is."""
    from inspector.detection.card import load_card
    from inspector.detection.tiling import tiled_for_recipe

    path = Path(getattr(detector, "path", "") or "model")
    return tiled_for_recipe(detector, recipe_cfg, load_card(path), path.name)


def _is_anomaly(model: Path) -> bool:
    from inspector.detection.detector import is_anomaly_model
    from inspector.detection.registry import resolve_model

    try:
        return is_anomaly_model(resolve_model(model, (".onnx", ".xml")))
    except Exception:  # noqa: BLE001 - not a model file: the detector path says why
        return False


def _evaluate_anomaly(a: argparse.Namespace, mcfg: ModelConfig, recipe) -> int:
    """Image AUROC, pixel AUPRO, and at the recipe's threshold the false rejects and the recall per kind."""
    from inspector.detection.detector import load_detector
    from inspector.training.anomaly_eval import evaluate_anomaly, format_anomaly_report

    engine, _, registry = _station(a)
    engine.dispose()
    threshold = recipe.thresholds("anomaly").fail_conf
    detector = load_detector(mcfg, conf=recipe.detector_floor, registry=registry)
    out = evaluate_anomaly(detector, a.data, threshold, _progress_line("images"))
    print(format_anomaly_report(out))
    out["model"] = str(detector.path)
    out["backend"] = detector.setup.backend
    if a.card:
        _record_in_card(detector, out)
    if a.json:
        print(json.dumps(out))
    return 0


def _record_in_card(detector, result: dict) -> None:
    """Write the evaluation command and its figures into the model's card (card.json and card.md)."""
    from inspector.detection.card import load_card, write_card

    path = Path(detector.path)
    card = load_card(path)
    if card is None:
        print(f"no card.json beside {path}: evaluation not recorded", file=sys.stderr)
        return
    card = card.with_changes(validation={"command": "inspector " + " ".join(shlex.quote(x) for x in sys.argv[1:]
                                                                           if x != "--card"), **result})
    write_card(path.parent, card)
    print(f"recorded in {path.parent / 'card.md'}", file=sys.stderr)


def _export(a: argparse.Namespace) -> int:
    from inspector.detection.detector import model_imgsz
    from inspector.detection.registry import resolve_model
    from inspector.lifecycle.export import default_export_dir, export_model

    pt = resolve_model(a.model, (".pt",))
    if pt.suffix != ".pt":
        raise ConfigError(f"{pt}: export needs the model's .pt weights.")
    engine, _, registry = _station(a)
    engine.dispose()
    # only a trusted source: an export's card names its source and provenance, and a copy or edited weights
    # must not borrow them (the file is still rebuilt from its tensors before Ultralytics reads it)
    registry.check(pt)
    out = Path(a.out) if a.out else default_export_dir(pt, a.int8)
    calib, held_out, ds = [], (), None
    if a.int8 and not a.data:
        raise ConfigError("--int8 needs --data: a data set whose training images calibrate the INT8 model.")
    if a.int8 and a.calibration < MIN_CALIBRATION:
        raise ConfigError(f"--calibration = {a.calibration}: must be at least {MIN_CALIBRATION}")
    if a.data:
        from inspector.training.datasets import load_dataset

        ds = load_dataset(a.data)
        calib = [im.path for im in ds.splits.get("train", ())]
        held_out = ds.splits.get("val", ())
    imgsz = a.imgsz or model_imgsz(pt, registry.trusted(), 320)
    cmd = "inspector " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    card = export_model(pt, out, trusted=registry.trusted(), imgsz=imgsz, int8=a.int8, calibration=calib,
                        subset_size=a.calibration, held_out=held_out, dataset=ds, data_name=str(a.data or ""),
                        force=a.force, command=cmd)
    model = out / card.file_names[0]
    acc = card.export.accuracy if card.export is not None else None
    print(f"wrote {model} and its card ({out / 'card.md'})")
    if acc:
        print(f"mAP50 on {acc['images']} held-out parts: source {acc['source_map50']:.3f}, "
              f"export {acc['export_map50']:.3f}")
    print(f"not trusted yet: after checking its card, an admin or QC user trusts it with\n"
          f"  inspector model add {shlex.quote(str(model))} --user NAME")
    return 0


def register(sub) -> None:
    s = sub.add_parser("synth", help="write labelled synthetic part images")
    s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_synth)

    t = sub.add_parser("train", help="train or fine-tune a detector on a data set")
    t.add_argument("--kind", default="detect", choices=["detect", "anomaly"], help="detect: boxes of labelled "
                   "defect classes; anomaly: learn what good looks like from pictures of good parts alone")
    t.add_argument("--data", default=None, help="data.yaml, Pascal VOC folder or YOLO folder; with --kind anomaly "
                   "a folder or a list file of pictures of good parts")
    t.add_argument("--confirmed-good", action="store_true", help="--kind anomaly, instead of --data: learn from "
                   "the stored pictures of the parts QC confirmed good in --db (review verdict PASS)")
    t.add_argument("--product", default=None, help="with --confirmed-good: only the parts of this product")
    t.add_argument("--config", default=None, help="configuration file (TOML), for the image folder of --db")
    t.add_argument("--false-reject", type=float, default=0.02, help="--kind anomaly: the share of good parts "
                   "the threshold may reject, set on held-out good pictures (default 0.02)")
    t.add_argument("--out", required=True, help="new output folder, e.g. models/NAME (never one that holds a "
                   "trusted model)")
    t.add_argument("--base", default=None, help="pretrained .pt to fine-tune (default: the shipped general surface "
                   "base; yolo11n.yaml trains from scratch). A trusted model that knows none of the data's classes "
                   "is replaced by the surface base unless --keep-base")
    t.add_argument("--keep-base", action="store_true", help="use --base as given, even when it knows none of "
                   "the data's classes")
    t.add_argument("--epochs", type=int, default=50, help="epochs (with a time budget: fitted to the budget)")
    t.add_argument("--imgsz", type=int, default=None, help="image size (default: chosen from the data's image "
                   "and box sizes, 320 unless the data says otherwise)")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--tile", type=int, default=0, metavar="SIZE", help="train on SIZE-px tiles of the pictures, as "
                   "a recipe with tile_size = SIZE judges them (small defects on large pictures; 0: whole pictures)")
    t.add_argument("--overlap", type=int, default=0, metavar="PX", help="pixels neighbouring tiles share (with "
                   "--tile; as the recipe's tile_overlap)")
    t.add_argument("--time-budget", type=_duration, default=None, metavar="DURATION",
                   help="wall time for the whole command, e.g. 45m, 1h30m, 90s, 0.5h: epochs and the learning-"
                   "rate schedule are fitted to it; the best epoch on the val split is kept")
    t.add_argument("--hours", type=float, default=None, help="time budget in hours (same as --time-budget)")
    t.add_argument("--resume", action="store_true", help="continue a stopped run in --out")
    t.add_argument("--progress", default=None, metavar="FILE", help="append the progress as JSON lines to FILE "
                   "(events start, note, epoch, done, failed): what the window's Models tab reads")
    t.add_argument("--stop-file", default=None, metavar="FILE", help="stop cleanly (like Ctrl-C: validate and keep "
                   "the best weights) as soon as FILE exists")
    t.add_argument("--db", default=None, help="the station's database, which trusts models (default: sqlite in "
                   "the user's data folder)")
    t.add_argument("--user", default=None, help="QC or admin user who trusts the new model on the station "
                   "(without it, once the station has users, the model is written but not trusted)")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="mAP and part-level figures on a labelled data set")
    e.add_argument("--model", default=None, help="model file or folder (default: the shipped model)")
    e.add_argument("--data", required=True)
    e.add_argument("--split", default=None, help="split to evaluate (default: val if defined, else all)")
    e.add_argument("--config", default=None)
    e.add_argument("--recipe", default=None)
    e.add_argument("--backend", default=None, choices=["auto", "onnxruntime", "openvino", "ultralytics"])
    e.add_argument("--json", action="store_true")
    e.add_argument("--card", action="store_true", help="record the command and its figures in the model's card")
    e.add_argument("--db", default=None, help="the station's database, which trusts models")
    e.set_defaults(func=_evaluate)

    x = sub.add_parser("export", help="export a model to ONNX (optionally INT8)")
    x.add_argument("--model", default=None, help="trusted .pt file or model folder (default: the shipped model)")
    x.add_argument("--format", default="onnx", choices=["onnx"])
    x.add_argument("--imgsz", type=int, default=None, help="input size (default: the model card's)")
    x.add_argument("--int8", action="store_true", help="write an INT8 OpenVINO model calibrated on --data instead")
    x.add_argument("--data", default=None, help="data set: calibration on its train split, and source vs "
                   "export mAP50 on its held-out (val) parts")
    x.add_argument("--out", default=None, help="new folder for the export and its card (default: beside the "
                   "model's folder, e.g. models/parts-v2-onnx-f32)")
    x.add_argument("--force", action="store_true", help="replace files of an earlier export there "
                   "(never a trusted model)")
    x.add_argument("--calibration", type=int, default=CALIBRATION_IMAGES,
                   help="number of calibration images, taken evenly from the train split")
    x.add_argument("--db", default=None, help="the station's database, which trusts models")
    x.set_defaults(func=_export)

