"""Which merge of the tiles' boxes scores best on whole pictures, and how much does the overlap matter?

Runs a tiled model once per overlap over the val pictures of a data set (the NEU mosaics of
``bench/neu_tiled.py``), keeps every tile's raw boxes, then scores each merge rule on the same boxes with
``inspector evaluate``'s own code (mAP50 on whole pictures, part recall at the recipe's thresholds):

- ``union``: boxes of one class from different tiles whose intersection covers half of the smaller box are
  merged into their union (the rule before this bench);
- ``nms-ios``: the same test, but the less confident box is dropped instead of widening the kept one;
- ``border``: the product's rule (``inspector.detection.tiling.merge_tiles`` with each box's ``cut`` flag):
  a box that touches an inner border of its tile is a stub of an object that may be whole elsewhere; a stub
  mostly inside a whole box from another tile is dropped, whole boxes of one object seen by two tiles are one
  (IoU), and the stubs left (objects whole in no tile) are merged into their union as before.

It also prints how many true boxes are whole in at least one tile (an object longer than the overlap can be
cut in every tile) and the recall at IoU 0.5 of each group.

    python bench/tile_merge.py --model /tmp/neu-tiled/tiled --data /tmp/neu-tiled/mosaics [--overlap 128 160] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from suite_load import cpu_flags  # noqa: E402

from inspector.core.config import ModelConfig, RecipeConfig  # noqa: E402
from inspector.core.types import Detection, Detections  # noqa: E402
from inspector.detection.card import load_card  # noqa: E402
from inspector.detection.detector import load_detector  # noqa: E402
from inspector.detection.tiling import (  # noqa: E402
    MERGE_IOS,
    Tiling,
    card_tiling,
    cut_by_tile,
    ios,
    merge_tiles,
    tile_grid,
)
from inspector.inspection.rules import Recipe  # noqa: E402
from inspector.sources.images import decode_image  # noqa: E402
from inspector.training.datasets import load_dataset  # noqa: E402
from inspector.training.evaluation import box_iou, evaluate  # noqa: E402
from station import default_db_url, open_db, trusted_models  # noqa: E402


def nms_ios(boxes, threshold: float = MERGE_IOS):
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i][1].confidence)
    kept: list[tuple[int, Detection]] = []
    for i in order:
        t, d = boxes[i]
        if any(kt != t and k.cls == d.cls and ios(k, d) >= threshold for kt, k in kept):
            continue
        kept.append((t, d))
    return tuple(d for _, d in kept)


class Replay:
    """A detector that gives back, picture after picture, boxes found beforehand."""

    def __init__(self, classes, answers: list[tuple[Detection, ...]]) -> None:
        self.classes, self.answers, self.k = classes, answers, 0
        self.sha256, self.name = "replay", "replay"

    def detect(self, image: np.ndarray) -> Detections:
        items = self.answers[self.k]
        self.k += 1
        return Detections(items, image.shape[1], image.shape[0], 0.0, self.sha256)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the tiled model's folder or file")
    ap.add_argument("--data", required=True, help="a data set with whole pictures (val split)")
    ap.add_argument("--overlap", type=int, nargs="+", default=[128])
    ap.add_argument("--limit", type=int, default=0, help="only the first N val pictures")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    engine, sessions = open_db(default_db_url())  # the models this station trusts (as `inspector evaluate`)
    registry = trusted_models(sessions)
    engine.dispose()
    detector = load_detector(ModelConfig(path=Path(a.model)), conf=0.001, registry=registry)
    trained = card_tiling(load_card(Path(detector.path)))
    if trained is None:
        raise SystemExit(f"{a.model}: its card records no tiling (train it with --tile)")
    tile = trained.size
    ds = load_dataset(a.data)
    images = ds.split("val")[: a.limit or None]
    recipe = Recipe(RecipeConfig(name="bench"))
    result: dict = {"cpu_flags": cpu_flags(), "cpus": os.cpu_count(), "model": str(a.model), "tile": tile,
                    "images": len(images), "overlaps": {}}
    for overlap in a.overlap:
        tiling = Tiling(tile, overlap)
        raw: list[list[tuple[int, Detection, bool]]] = []
        whole_flags: list[list[bool]] = []  # per picture: is each true box whole in some tile?
        whole_gt = cut_gt = 0
        t0 = time.perf_counter()
        n_tiles = 0
        for im in images:
            img, err = decode_image(im.path)
            if img is None:
                raise SystemExit(f"{im.path}: {err}")
            h, w = img.shape[:2]
            grid = tile_grid(w, h, tiling)
            n_tiles += len(grid)
            boxes = []
            for k, (x1, y1, x2, y2) in enumerate(grid):
                for d in detector.detect(img[y1:y2, x1:x2]).items:
                    g = Detection(d.cls, d.label, d.confidence, d.x1 + x1, d.y1 + y1, d.x2 + x1, d.y2 + y1)
                    boxes.append((k, g, cut_by_tile(g, grid[k], w, h)))
            raw.append(boxes)
            flags = [any(x1 <= b.x1 and y1 <= b.y1 and b.x2 <= x2 and b.y2 <= y2 for x1, y1, x2, y2 in grid)
                     for b in im.boxes]
            whole_flags.append(flags)
            whole_gt += sum(flags)
            cut_gt += len(flags) - sum(flags)
        infer_s = time.perf_counter() - t0
        rules = {
            "union": lambda bs: merge_tiles([(k, d) for k, d, _ in bs]),
            "nms-ios": lambda bs: nms_ios([(k, d) for k, d, _ in bs]),
            "border": lambda bs: merge_tiles([(k, d) for k, d, _ in bs], cut=[c for _, _, c in bs]),
        }
        row: dict = {"tiles_per_picture": round(n_tiles / max(1, len(images)), 1), "infer_s": round(infer_s, 1),
                     "true_boxes_whole_in_a_tile": whole_gt, "true_boxes_cut_in_every_tile": cut_gt, "rules": {}}
        for name, rule in rules.items():
            answers = [rule(bs) for bs in raw]
            rep = evaluate(Replay(detector.classes, answers), ds, images, recipe)
            # recall at IoU 0.5 (any confidence) of the true boxes whole in a tile and of those cut in every one
            hit = {True: [0, 0], False: [0, 0]}
            for im, ans, flags in zip(images, answers, whole_flags, strict=True):
                for b, whole in zip(im.boxes, flags, strict=True):
                    gb = np.array([[b.x1, b.y1, b.x2, b.y2]])
                    pb = np.array([[d.x1, d.y1, d.x2, d.y2] for d in ans
                                   if detector.classes[d.cls] == ds.classes[b.cls]]).reshape(-1, 4)
                    hit[whole][0] += bool(len(pb) and box_iou(pb, gb).max() >= 0.5)
                    hit[whole][1] += 1
            row["rules"][name] = {"map50": round(rep.map50, 4), "map50_95": round(rep.map50_95, 4),
                                  "part_recall": round(rep.part_recall, 4),
                                  "false_reject_rate": round(rep.false_reject_rate, 4),
                                  "boxes_per_picture": round(sum(map(len, answers)) / max(1, len(answers)), 1),
                                  "recall50_whole": round(hit[True][0] / max(1, hit[True][1]), 4),
                                  "recall50_cut": round(hit[False][0] / max(1, hit[False][1]), 4),
                                  "per_class_ap50": {k: round(v, 3) for k, v in rep.per_class_ap50.items()}}
        result["overlaps"][overlap] = row
        if not a.json:
            print(f"overlap {overlap}: {row['tiles_per_picture']} tiles a picture, inference {row['infer_s']} s; "
                  f"true boxes whole in a tile {whole_gt}, cut in every tile {cut_gt}")
            for name, r in row["rules"].items():
                print(f"  {name:8s} mAP50 {r['map50']:.3f}  mAP50-95 {r['map50_95']:.3f}  part recall "
                      f"{r['part_recall']:.3f}  boxes/picture {r['boxes_per_picture']}  recall@0.5 whole "
                      f"{r['recall50_whole']:.3f} cut {r['recall50_cut']:.3f}")
    if a.json:
        print(json.dumps(result))
    else:
        print(f"CPU flags: {result['cpu_flags']}; {result['cpus']} CPUs; {len(images)} pictures; tile {tile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
