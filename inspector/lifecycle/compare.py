"""Champion against challenger: two trusted models on the same held-out labelled parts, side by side.

Both are loaded through ``detector.load_detector`` (which refuses a file whose SHA-256 is not
trusted) and scored by ``evaluation.evaluate`` on the data set's val split (all of it when it has
no split): mAP50, defective-part recall, false-reject rate, escapes; plus the parts whose verdicts
differ, and a gallery of them drawn with both models' boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.core.config import ModelConfig, RecipeConfig
from inspector.core.errors import ConfigError
from inspector.core.images import save_png
from inspector.core.types import Detections, Verdict
from inspector.detection.registry import ModelRegistry
from inspector.inspection.rules import Recipe
from inspector.training.datasets import LabelledImage, load_dataset
from inspector.training.evaluation import EvalReport, evaluate

log = logging.getLogger(__name__)

GALLERY_MAX = 24
TILE = 240
# BGR: champion blue, challenger orange
CHAMPION_COLOR = (200, 90, 20)
CHALLENGER_COLOR = (20, 140, 240)


@dataclass
class _Run:
    report: EvalReport
    verdicts: dict[Path, Verdict]
    detections: dict[Path, Detections | None]
    info: dict


def _backend_for(path: Path) -> str:
    """A .pt runs as itself in Ultralytics (auto would swap in the .onnx beside it); exports run on the fastest."""
    return "ultralytics" if path.suffix.lower() == ".pt" else "auto"


def _run(model: Path, base_cfg: ModelConfig, ds, images: tuple[LabelledImage, ...], recipe: Recipe, split: str,
         progress: Callable[[int, int], None] | None, registry: ModelRegistry | None = None) -> _Run:
    from inspector.detection.card import load_card
    from inspector.detection.detector import load_detector
    from inspector.detection.tiling import tiled_for_recipe

    cfg = base_cfg.model_copy(update={"path": model, "backend": _backend_for(model)})
    detector = load_detector(cfg, conf=0.001, registry=registry)  # refuses an untrusted file before loading it
    # judged as the station judges with this recipe: tile by tile where the recipe tiles (boxes in full-picture pixels)
    detector = tiled_for_recipe(detector, recipe.cfg, load_card(model), model.name)
    verdicts: dict[Path, Verdict] = {}
    dets: dict[Path, Detections | None] = {}

    def seen(im: LabelledImage, verdict: Verdict, det: Detections | None) -> None:
        verdicts[im.path] = verdict
        dets[im.path] = det

    report = evaluate(detector, ds, images, recipe, progress, split=split, on_image=seen)
    info = {"model": str(model), "sha256": detector.sha256, "backend": detector.setup.backend,
            "classes": list(detector.classes)}
    return _Run(report, verdicts, dets, info)


def _side(run: _Run) -> dict:
    r = run.report
    return {**run.info, "map50": round(r.map50, 4), "map50_95": round(r.map50_95, 4),
            "part_recall": round(r.part_recall, 4), "false_reject_rate": round(r.false_reject_rate, 4),
            "escapes": r.escapes, "not_inspected": r.not_inspected,
            "per_class_ap50": {k: round(v, 4) for k, v in r.per_class_ap50.items()},
            "confusion": r.confusion}


def compare(champion: Path | str, challenger: Path | str, data: Path | str, *, split: str | None = None,
            recipe_cfg: RecipeConfig | None = None, model_cfg: ModelConfig | None = None,
            progress: Callable[[str, int, int], None] | None = None,
            registry: ModelRegistry | None = None) -> tuple[dict, dict]:
    """Score both models on the same parts; return (the JSON-able result, per-part detections for a gallery).

    ``registry``: the models the station trusts (default: the shipped ones only)."""
    champion, challenger = Path(champion), Path(challenger)
    for p in (champion, challenger):
        if not p.is_file():
            raise ConfigError(f"model file not found: {p}")
    reg = registry or ModelRegistry()
    for p in (champion, challenger):
        reg.check(p)  # both trusted before either is loaded or any part is judged
    from inspector.detection.detector import is_anomaly_model

    if is_anomaly_model(champion) or is_anomaly_model(challenger):
        return compare_parts(champion, challenger, data, recipe_cfg=recipe_cfg, model_cfg=model_cfg,
                             progress=progress, registry=reg)
    ds = load_dataset(data)
    images = ds.split(split)
    split_name = split or ("val" if ds.has_split_files else "all")
    recipe = Recipe(recipe_cfg or RecipeConfig())
    base = model_cfg or ModelConfig()
    runs = []
    for role, model in (("champion", champion), ("challenger", challenger)):
        step = (lambda n, t, role=role: progress(role, n, t)) if progress else None
        runs.append(_run(model, base, ds, images, recipe, split_name, step, reg))
    a, b = runs
    parts = []
    for im in images:
        va, vb = a.verdicts.get(im.path), b.verdicts.get(im.path)
        if va != vb:
            parts.append({"file": im.path.name, "truth": "defective" if im.boxes else "good",
                          "champion": va.value if va else None, "challenger": vb.value if vb else None})
    result = {"data": str(ds.root), "split": split_name, "images": len(images),
              "champion": _side(a), "challenger": _side(b),
              "disagreements": {"count": len(parts), "parts": parts}}
    gallery = {im.path: (im, a.detections.get(im.path), b.detections.get(im.path)) for im in images
               if a.verdicts.get(im.path) != b.verdicts.get(im.path)}
    return result, gallery


@dataclass(frozen=True)
class _Part:
    """A picture judged in parts mode, as the gallery draws it (no labelled boxes)."""

    path: Path
    truth: str | None  # "good", a defect kind, or None where the folder does not say
    boxes: tuple = ()


def read_parts(data: Path | str) -> list[_Part]:
    """The pictures of ``data`` with what each is where the layout says it (an anomaly test set:
    ``splits/test.txt`` or sub-folders by kind, ``good`` for good parts), else every picture, truth unknown."""
    from inspector.training.anomaly import IMAGE_EXTS, _is_mask
    from inspector.training.anomaly_eval import read_test_set

    data = Path(data)
    try:
        return [_Part(t.path, "good" if t.normal else t.kind) for t in read_test_set(data)]
    except ConfigError:
        pass
    if not data.is_dir():
        raise ConfigError(f"--data {data}: no such folder of parts.")
    pics = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file() and not _is_mask(p))
    if not pics:
        raise ConfigError(f"--data {data}: no pictures of parts in it.")
    return [_Part(p, None) for p in pics]


def _judge_parts(model: Path, base_cfg: ModelConfig, parts: list[_Part], recipe: Recipe,
                 progress: Callable[[int, int], None] | None, registry: ModelRegistry) -> tuple[dict, list]:
    """One model's verdict (and anomaly score) on each part, as the station judges it: the model at the
    recipe's floor, tiled when the recipe tiles, the recipe's verdict."""
    from inspector.detection.card import load_card
    from inspector.detection.detector import load_detector
    from inspector.detection.tiling import tiled_for_recipe
    from inspector.sources.images import decode_image

    cfg = base_cfg.model_copy(update={"path": model, "backend": _backend_for(model)})
    detector = load_detector(cfg, conf=recipe.detector_floor, registry=registry)
    judge = tiled_for_recipe(detector, recipe.cfg, load_card(model), model.name)
    out = []
    for i, part in enumerate(parts):
        img, _ = decode_image(part.path)
        if img is not None and img.ndim == 2:
            import cv2

            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if img is None:
            out.append((Verdict.NOT_INSPECTED, None, None))
        else:
            det = judge.detect(img[..., :3])
            out.append((recipe.evaluate(det)[0], det.score, det))
        if progress:
            progress(i + 1, len(parts))
    info = {"model": str(model), "sha256": detector.sha256, "backend": detector.setup.backend,
            "classes": list(detector.classes), "task": getattr(detector, "task", "detect")}
    return info, out


def _parts_side(info: dict, judged: list, parts: list[_Part]) -> dict:
    from inspector.training.anomaly_eval import image_auroc

    verdicts = [v for v, _, _ in judged]
    side = {**info, "map50": None, "map50_95": None, "part_recall": None, "false_reject_rate": None,
            "escapes": None, "not_inspected": sum(v == Verdict.NOT_INSPECTED for v in verdicts),
            "verdicts": {v.value: sum(x == v for x in verdicts) for v in Verdict if any(x == v for x in verdicts)},
            "image_auroc": None}
    known = [(p, v, s) for p, (v, s, _) in zip(parts, judged, strict=True) if p.truth is not None]
    good = [v for p, v, _ in known if p.truth == "good"]
    bad = [v for p, v, _ in known if p.truth != "good"]
    if good:
        side["false_reject_rate"] = round(sum(v != Verdict.PASS for v in good) / len(good), 4)
    if bad:
        side["part_recall"] = round(sum(v == Verdict.FAIL for v in bad) / len(bad), 4)
        side["escapes"] = sum(v == Verdict.PASS for v in bad)
    scores_good = [s for p, _, s in known if p.truth == "good" and s is not None]
    scores_bad = [s for p, _, s in known if p.truth != "good" and s is not None]
    if scores_good and scores_bad:  # an anomaly model's scores separate good from defective parts
        side["image_auroc"] = round(image_auroc(np.array(scores_good), np.array(scores_bad)), 4)
    return side


def compare_parts(champion: Path, challenger: Path, data: Path | str, *, recipe_cfg: RecipeConfig | None = None,
                  model_cfg: ModelConfig | None = None, progress: Callable[[str, int, int], None] | None = None,
                  registry: ModelRegistry | None = None) -> tuple[dict, dict]:
    """Two models (a detector and an anomaly model, or two anomaly models) on the same folder of parts: each
    part's verdict by each, side by side, and how often they agree; with the truth where the folder says it
    (good or a defect kind), each side's recall and false-reject rate, and an anomaly side's image AUROC.
    Each anomaly model runs from its exported file, as the station and ``evaluate`` run it."""
    champion, challenger = Path(champion), Path(challenger)
    reg = registry or ModelRegistry()
    for p in (champion, challenger):
        reg.check(p)
    parts = read_parts(data)
    recipe = Recipe(recipe_cfg or RecipeConfig())
    base = model_cfg or ModelConfig()
    sides = []
    for role, model in (("champion", champion), ("challenger", challenger)):
        step = (lambda n, t, role=role: progress(role, n, t)) if progress else None
        sides.append(_judge_parts(model, base, parts, recipe, step, reg))
    (ia, a), (ib, b) = sides
    differ = []
    for part, (va, _, _), (vb, _, _) in zip(parts, a, b, strict=True):
        if va != vb:
            differ.append({"file": part.path.name, "truth": part.truth or "unknown", "champion": va.value,
                           "challenger": vb.value})
    n = len(parts)
    result = {"mode": "parts", "data": str(data), "split": "folder of parts", "images": n,
              "truth_known": sum(p.truth is not None for p in parts),
              "champion": _parts_side(ia, a, parts), "challenger": _parts_side(ib, b, parts),
              "agreement": {"parts": n, "agreed": n - len(differ), "rate": round((n - len(differ)) / n, 4)},
              "disagreements": {"count": len(differ), "parts": differ}}
    gallery = {p.path: (p, da, db) for p, (va, _, da), (vb, _, db) in zip(parts, a, b, strict=True) if va != vb}
    return result, gallery


def _fmt(v, spec: str) -> str:
    return "–" if v is None else spec.format(v)


def format_text(r: dict) -> str:
    if r.get("mode") == "parts":
        return _format_parts(r)
    c, d = r["champion"], r["challenger"]
    rows = [("model", Path(c["model"]).name, Path(d["model"]).name), ("backend", c["backend"], d["backend"]),
            ("mAP50", f"{c['map50']:.3f}", f"{d['map50']:.3f}"), ("mAP50-95", f"{c['map50_95']:.3f}",
                                                                  f"{d['map50_95']:.3f}"),
            ("part recall", f"{c['part_recall']:.3f}", f"{d['part_recall']:.3f}"),
            ("false-reject rate", f"{c['false_reject_rate']:.3f}", f"{d['false_reject_rate']:.3f}"),
            ("escapes", str(c["escapes"]), str(d["escapes"]))]
    lines = [f"{r['images']} parts ({r['split']}) of {r['data']}", f"{'':<18}{'champion':>24}{'challenger':>24}"]
    lines += [f"{k:<18}{x:>24}{y:>24}" for k, x, y in rows]
    dis = r["disagreements"]
    lines.append(f"disagreements (part verdict differs): {dis['count']}")
    for p in dis["parts"][:10]:
        lines.append(f"  {p['file']} ({p['truth']}): champion {p['champion']}, challenger {p['challenger']}")
    return "\n".join(lines)


def _format_parts(r: dict) -> str:
    c, d = r["champion"], r["challenger"]
    rows = [("model", Path(c["model"]).name, Path(d["model"]).name), ("task", c["task"], d["task"]),
            ("backend", c["backend"], d["backend"])]
    rows += [(v, str(c["verdicts"].get(v, 0)), str(d["verdicts"].get(v, 0))) for v in ("PASS", "REVIEW", "FAIL",
                                                                                      "NOT_INSPECTED")]
    rows += [("part recall", _fmt(c["part_recall"], "{:.3f}"), _fmt(d["part_recall"], "{:.3f}")),
             ("false-reject rate", _fmt(c["false_reject_rate"], "{:.3f}"), _fmt(d["false_reject_rate"], "{:.3f}")),
             ("escapes", _fmt(c["escapes"], "{}"), _fmt(d["escapes"], "{}")),
             ("image AUROC", _fmt(c["image_auroc"], "{:.3f}"), _fmt(d["image_auroc"], "{:.3f}"))]
    ag = r["agreement"]
    lines = [f"{r['images']} parts of {r['data']} ({r['truth_known']} with known truth)",
             f"{'':<18}{'champion':>24}{'challenger':>24}"]
    lines += [f"{k:<18}{x:>24}{y:>24}" for k, x, y in rows]
    lines.append(f"agreement: {ag['agreed']} of {ag['parts']} parts ({ag['rate']:.1%}) get the same verdict")
    for p in r["disagreements"]["parts"][:10]:
        lines.append(f"  {p['file']} ({p['truth']}): champion {p['champion']}, challenger {p['challenger']}")
    return "\n".join(lines)


def _draw(img: np.ndarray, det: Detections | None, color: tuple[int, int, int]) -> None:
    import cv2

    if det is None:
        return
    for d in det.items:
        if d.confidence < 0.25:
            continue
        cv2.rectangle(img, (int(d.x1), int(d.y1)), (int(d.x2), int(d.y2)), color, 2)
        cv2.putText(img, f"{d.label} {d.confidence:.2f}", (int(d.x1), max(12, int(d.y1) - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)


def write_gallery(result: dict, gallery: dict, path: Path | str) -> Path:
    """Tiles of the parts the two models disagree on: truth in green, champion blue, challenger orange."""
    import cv2

    from inspector.sources.images import decode_image

    parts = result["disagreements"]["parts"][:GALLERY_MAX]
    by_name = {p.name: v for p, v in gallery.items()}
    cols = 4 if len(parts) > 3 else max(1, len(parts))
    rows = max(1, -(-len(parts) // cols))
    head = 60
    canvas = np.full((head + rows * (TILE + 40), cols * TILE, 3), 255, np.uint8)
    cv2.putText(canvas, f"{result['disagreements']['count']} disagreement(s) on {result['images']} parts: "
                f"champion {Path(result['champion']['model']).name} (blue) vs challenger "
                f"{Path(result['challenger']['model']).name} (orange), truth green",
                (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (30, 30, 30), 1, cv2.LINE_AA)
    if not parts:
        cv2.putText(canvas, "the two models agree on every part", (8, 48), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (30, 120, 30), 1, cv2.LINE_AA)
    for k, p in enumerate(parts):
        im, da, db = by_name[p["file"]]
        img, _ = decode_image(im.path)
        if img is None:
            img = np.full((TILE, TILE, 3), 200, np.uint8)
        elif img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        img = img[..., :3].copy()
        for b in im.boxes:
            cv2.rectangle(img, (int(b.x1), int(b.y1)), (int(b.x2), int(b.y2)), (40, 170, 40), 1)
        _draw(img, da, CHAMPION_COLOR)
        _draw(img, db, CHALLENGER_COLOR)
        s = TILE / max(img.shape[:2])
        tile = cv2.resize(img, (max(1, int(img.shape[1] * s)), max(1, int(img.shape[0] * s))))
        r, c = divmod(k, cols)
        y, x = head + r * (TILE + 40), c * TILE
        canvas[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
        cv2.putText(canvas, f"{p['file'][:30]} ({p['truth']})", (x + 4, y + TILE + 14), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (30, 30, 30), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{p['champion']} vs {p['challenger']}", (x + 4, y + TILE + 32),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 180), 1, cv2.LINE_AA)
    return save_png(canvas, path)
