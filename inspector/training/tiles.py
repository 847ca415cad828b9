"""Training at the scale the station judges at: pictures and their boxes cut into the tiles of tiled inference.

The tiles are those ``inspector.detection.tiling.tile_grid`` gives the station for the same size and overlap.
A box cut by a tile's border is kept (clipped) where most of it (``KEEP_INSIDE``) lies inside, and dropped
otherwise; a tile that shows such a dropped stub is not used as a defect-free example (it is not one). Of the
defect-free tiles, at most ``negatives`` per tile with a defect are kept, drawn at random with a fixed seed, so
that on large, mostly clean pictures the defects are not drowned out (and at least a few when there are none).
"""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2

from inspector.core.errors import DatasetError
from inspector.detection.tiling import Tiling, tile_grid
from inspector.training.datasets import Dataset, GroundTruthBox, LabelledImage

log = logging.getLogger(__name__)

KEEP_INSIDE = 0.5  # share of a box's area inside a tile from which the tile keeps it (clipped)
MIN_NEGATIVES = 8  # defect-free tiles kept per split even when no tile has a defect


def cut_boxes(boxes: tuple[GroundTruthBox, ...], tile: tuple[int, int, int, int]) -> tuple[
        tuple[GroundTruthBox, ...], bool]:
    """The boxes of one tile in its own pixels, and whether a box was cut off too much to keep."""
    x1, y1, x2, y2 = tile
    kept, stub = [], False
    for b in boxes:
        cx1, cy1, cx2, cy2 = max(b.x1, x1), max(b.y1, y1), min(b.x2, x2), min(b.y2, y2)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        area = (b.x2 - b.x1) * (b.y2 - b.y1)
        if area > 0 and (cx2 - cx1) * (cy2 - cy1) / area >= KEEP_INSIDE:
            kept.append(GroundTruthBox(b.cls, cx1 - x1, cy1 - y1, cx2 - x1, cy2 - y1))
        else:
            stub = True
    return tuple(kept), stub


def tile_dataset(ds: Dataset, tiling: Tiling, cache_root: Path, negatives: float = 1.0, seed: int = 0,
                 say: Callable[[str], None] = log.info) -> tuple[Dataset, dict]:
    """``ds`` cut into tiles written under ``cache_root`` (once per data set and tiling); returns the tiled data
    set and what was cut (for the model card)."""
    key = hashlib.sha256(f"{tiling}|{negatives}|{seed}".encode())
    for name, ims in sorted(ds.splits.items()):
        for im in ims:
            key.update(f"{name}|{im.path.resolve()}|{im.path.stat().st_mtime_ns}|{im.boxes}".encode())
    out = cache_root / f"tiles-{ds.root.name}-{key.hexdigest()[:16]}"
    rng = random.Random(seed)
    splits: dict[str, tuple[LabelledImage, ...]] = {}
    stats: dict = {"tile": tiling.size, "overlap": tiling.overlap, "keep_inside": KEEP_INSIDE,
                   "negatives_per_defect_tile": negatives}
    fresh = not out.exists()
    tmp = out.with_name(out.name + ".tmp") if fresh else out
    if fresh:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, ims in ds.splits.items():
        positive: list[tuple[LabelledImage, tuple[int, int, int, int]]] = []
        clean: list[tuple[LabelledImage, tuple[int, int, int, int]]] = []
        for im in ims:
            for t in tile_grid(im.width, im.height, tiling):
                boxes, stub = cut_boxes(im.boxes, t)
                if boxes:
                    positive.append((LabelledImage(im.path, t[2] - t[0], t[3] - t[1], boxes), t))
                elif not stub:
                    clean.append((LabelledImage(im.path, t[2] - t[0], t[3] - t[1], ()), t))
        keep = min(len(clean), max(MIN_NEGATIVES, round(negatives * len(positive))))
        chosen = positive + rng.sample(clean, keep)
        stats[name] = {"pictures": len(ims), "defect_tiles": len(positive), "clean_tiles": len(clean),
                       "clean_tiles_kept": keep}
        if not chosen:
            raise DatasetError(f"{ds.root}: the {name} split gives no tile of {tiling.size} px.")
        tiles = []
        folder = tmp / name
        folder.mkdir(parents=True, exist_ok=True)
        by_picture: dict[Path, list] = {}
        for li, t in chosen:
            by_picture.setdefault(li.path, []).append((li, t))
        for path, items in by_picture.items():
            picture = cv2.imread(str(path)) if fresh else None
            if fresh and picture is None:
                raise DatasetError(f"cannot read {path} to cut it into tiles.")
            for li, (x1, y1, x2, y2) in items:
                f = folder / f"{path.stem}_{x1}_{y1}.png"
                if fresh:
                    cv2.imwrite(str(f), picture[y1:y2, x1:x2])
                tiles.append(LabelledImage(f if fresh else f, li.width, li.height, li.boxes))
        splits[name] = tuple(tiles)
        say(f"tiles {tiling.size} px, overlap {tiling.overlap}: {name} split {len(ims)} pictures -> "
            f"{len(positive)} tiles with a defect and {keep} of {len(clean)} defect-free ones")
    if fresh:
        tmp.rename(out)
    splits = {n: tuple(LabelledImage(out / n / li.path.name, li.width, li.height, li.boxes) for li in t)
              for n, t in splits.items()}
    return Dataset(out, "tiles", ds.classes, splits, ds.has_split_files), stats


def native_tiling(ds: Dataset, imgsz: int) -> dict | None:
    """What an untiled training records when its pictures are no larger than the model's input (they are then
    seen at the camera's own scale, one picture a tile): the card's ``tiling``, or None."""
    ims = [im for split in ds.splits.values() for im in split]
    if not ims:
        return None
    side = max(max(im.width, im.height) for im in ims)
    if side > imgsz:
        return None
    return {"tile": side, "overlap": 0, "note": f"trained on whole pictures of at most {side} px at imgsz {imgsz}: "
                                                "each picture one tile at the camera's own scale"}

