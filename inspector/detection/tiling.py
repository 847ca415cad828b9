"""Tiled inference: a large picture judged tile by tile at the model's own scale.

A 2448x2048 picture shrunk to a 320-px model input loses a 15-pixel scratch. ``TiledDetector`` wraps a
plain detector: it cuts the picture into overlapping tiles (only those that meet the region of interest),
hands them all to the runtime's queue before taking the first result (every stream stays busy), maps each
tile's boxes back to the picture's pixels and merges the boxes of one object seen by several tiles.

Merging (``merge_tiles``), per class, never between two boxes of one tile (the detector's own NMS decided
those). A box that reaches an inner border of its tile (``cut_by_tile``; the picture's own edges cut nothing)
is a *stub*: the tile saw only part of its object. Whole boxes of one object seen by two tiles (IoU at least
``MERGE_IOS``) are one, the more confident. A stub that lies mostly (``MERGE_IOS`` of its area) inside a whole
box from another tile is dropped: that tile saw the object whole, and widening its box by the stub's error
would only make it worse. The stubs left belong to objects that no tile saw whole (longer than the overlap):
stubs of different tiles whose intersection covers at least ``MERGE_IOS`` of the smaller are merged into their
union with the highest confidence (non-maximum merging on intersection over smaller, as slicing libraries
do; a plain IoU test would keep both the whole box and the cut-off stub, whose IoU is small).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.config import RecipeConfig
from inspector.core.errors import ConfigError
from inspector.core.ports import AsyncDetector, Detector, PendingDetections, Ready
from inspector.core.types import Detection, Detections
from inspector.detection.card import ModelCard

log = logging.getLogger(__name__)

MERGE_IOS = 0.5  # intersection over the smaller box from which two tiles' boxes are one object
CUT_MARGIN = 0.02  # a box this close to an inner tile border (share of the tile's side) is cut by it
SCALE_TOLERANCE = 1.25  # a recipe's tiles may differ this much from the scale the model was trained at


@dataclass(frozen=True)
class Tiling:
    """Square tiles of ``size`` camera pixels, neighbours sharing ``overlap`` pixels."""

    size: int
    overlap: int

    def __post_init__(self) -> None:
        if not (isinstance(self.size, int) and self.size >= 32):
            raise ValueError(f"expected a tile size of at least 32 pixels, got {self.size!r}")
        if not (isinstance(self.overlap, int) and 0 <= self.overlap < self.size):
            raise ValueError(f"expected a tile overlap in [0, {self.size}), got {self.overlap!r}")

    @property
    def stride(self) -> int:
        return self.size - self.overlap


def _starts(lo: int, hi: int, size: int, stride: int, limit: int) -> list[int]:
    """Tile starts covering [lo, hi) on an axis of ``limit`` pixels; the last tile ends at ``hi`` (or the edge)."""
    if limit <= size:
        return [0]
    lo = max(0, min(lo, limit - size))
    end = min(limit, max(hi, lo + size))
    n = max(1, math.ceil((end - lo - size) / stride) + 1)
    starts = [lo + i * stride for i in range(n)]
    starts[-1] = min(starts[-1], end - size)
    return sorted(set(max(0, s) for s in starts))


def tile_grid(width: int, height: int, tiling: Tiling,
              roi: Sequence[float] | None = None) -> list[tuple[int, int, int, int]]:
    """The tiles (x1, y1, x2, y2) that cover the picture, or only its region of interest (fractions x1, y1,
    x2, y2): no tile lies wholly outside it. A picture no larger than a tile is one tile."""
    if width <= 0 or height <= 0:
        raise ValueError(f"expected a picture size, got {width}x{height}")
    x_lo, y_lo, x_hi, y_hi = 0, 0, width, height
    if roi is not None:
        x_lo, y_lo = math.floor(roi[0] * width), math.floor(roi[1] * height)
        x_hi, y_hi = math.ceil(roi[2] * width), math.ceil(roi[3] * height)
    xs = _starts(x_lo, x_hi, tiling.size, tiling.stride, width)
    ys = _starts(y_lo, y_hi, tiling.size, tiling.stride, height)
    return [(x, y, min(x + tiling.size, width), min(y + tiling.size, height)) for y in ys for x in xs]


def _intersection(a: Detection, b: Detection) -> float:
    iw = min(a.x2, b.x2) - max(a.x1, b.x1)
    ih = min(a.y2, b.y2) - max(a.y1, b.y1)
    return iw * ih if iw > 0 and ih > 0 else 0.0


def ios(a: Detection, b: Detection) -> float:
    """Intersection over the smaller of the two boxes (0 when apart or when one has no area)."""
    smaller = min(a.area, b.area)
    return _intersection(a, b) / smaller if smaller > 0 else 0.0


def cut_by_tile(box: Detection, tile: tuple[int, int, int, int], width: int, height: int,
                margin: float | None = None) -> bool:
    """Does ``box`` (picture pixels) reach an inner border of its tile, within ``margin`` pixels (by default
    ``CUT_MARGIN`` of the tile's side)? A border that is the picture's own edge cuts nothing."""
    x1, y1, x2, y2 = tile
    m = CUT_MARGIN * max(x2 - x1, y2 - y1) if margin is None else margin
    return ((x1 > 0 and box.x1 - x1 <= m) or (y1 > 0 and box.y1 - y1 <= m)
            or (x2 < width and x2 - box.x2 <= m) or (y2 < height and y2 - box.y2 <= m))


def _iou(a: Detection, b: Detection) -> float:
    inter = _intersection(a, b)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def _inside(a: Detection, b: Detection) -> float:
    """The share of ``a``'s area that lies inside ``b``."""
    return _intersection(a, b) / a.area if a.area > 0 else 0.0


def _union_merge(boxes: Sequence[tuple[int, Detection]], threshold: float) -> list[Detection]:
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i][1].confidence)
    used = [False] * len(boxes)
    out: list[Detection] = []
    for i in order:
        if used[i]:
            continue
        used[i] = True
        tiles, box = {boxes[i][0]}, boxes[i][1]
        grown = True
        while grown:  # a merged box may now reach a box it did not reach before
            grown = False
            for j in order:
                t, d = boxes[j]
                if used[j] or t in tiles or d.cls != box.cls or ios(box, d) < threshold:
                    continue
                used[j], grown = True, True
                tiles.add(t)
                box = Detection(box.cls, box.label, max(box.confidence, d.confidence), min(box.x1, d.x1),
                                min(box.y1, d.y1), max(box.x2, d.x2), max(box.y2, d.y2))
        out.append(box)
    return out


def merge_tiles(boxes: Sequence[tuple[int, Detection]], threshold: float = MERGE_IOS,
                cut: Sequence[bool] | None = None) -> tuple[Detection, ...]:
    """Boxes (tile index, box in picture pixels) -> one box per object (see the module's text).

    ``cut`` (one flag a box, ``cut_by_tile``) tells the stubs from the whole boxes; without it every box is
    treated as a possible stub (union merging only). Boxes of one tile are never merged with each other."""
    if cut is None:
        return tuple(_union_merge(boxes, threshold))
    whole = sorted((i for i in range(len(boxes)) if not cut[i]), key=lambda i: -boxes[i][1].confidence)
    kept: list[tuple[int, Detection]] = []
    for i in whole:  # one object seen whole by two tiles: the more confident box
        t, d = boxes[i]
        if not any(kt != t and k.cls == d.cls and _iou(k, d) >= threshold for kt, k in kept):
            kept.append((t, d))
    stubs = [(t, d) for (t, d), c in zip(boxes, cut, strict=True) if c
             and not any(kt != t and k.cls == d.cls and _inside(d, k) >= threshold for kt, k in kept)]
    return tuple(d for _, d in kept) + tuple(_union_merge(stubs, threshold))


class TiledDetector:
    """A ``Detector`` over tiles of the picture; boxes come back in the picture's own pixels.

    ``roi`` (fractions x1, y1, x2, y2, as the recipe's) limits the tiles that are run. Other attributes
    (backend, threads, tune, ...) are the wrapped detector's. ``input_hw`` is None: the picture must come
    at its full size (a reduced decode would undo what tiling is for).
    """

    input_hw = None
    depth = 1  # one picture at a time; its tiles fill the inner detector's queue

    def __init__(self, inner: Detector, tiling: Tiling, roi: Sequence[float] | None = None,
                 merge_ios: float = MERGE_IOS) -> None:
        self.inner = inner
        self.tiling = tiling
        self.roi = tuple(roi) if roi is not None else None
        self.merge_ios = merge_ios
        self.classes, self.sha256, self.name = inner.classes, inner.sha256, inner.name
        self.tiles_run = 0  # tiles judged so far (a figure for benches and the health panel)

    def __getattr__(self, item: str) -> Any:
        if item == "inner":  # not set yet (during unpickling, say): no recursion
            raise AttributeError(item)
        return getattr(self.inner, item)

    def _submit(self, tile: np.ndarray) -> PendingDetections:
        if isinstance(self.inner, AsyncDetector) and self.inner.depth > 1:
            return self.inner.submit(tile)
        return Ready(self.inner.detect(tile))

    def detect(self, image: np.ndarray) -> Detections:
        """Boxes on one BGR uint8 HxWx3 picture, in its pixels, found tile by tile."""
        t0 = time.perf_counter()
        h, w = int(image.shape[0]), int(image.shape[1])
        grid = tile_grid(w, h, self.tiling, self.roi)
        depth = max(1, int(getattr(self.inner, "depth", 1)))
        pending: list[tuple[int, PendingDetections]] = []
        found: list[tuple[int, Detection]] = []
        cut: list[bool] = []
        # every tile handed to the runtime before its first result is taken, up to the queue's depth; the
        # next goes in as soon as one comes out, so the runtime never waits for Python
        nxt = 0
        try:
            while nxt < len(grid) or pending:
                while nxt < len(grid) and len(pending) < depth:
                    x1, y1, x2, y2 = grid[nxt]
                    pending.append((nxt, self._submit(image[y1:y2, x1:x2])))
                    nxt += 1
                k, p = pending.pop(0)
                dets = p.result()
                ox, oy = grid[k][0], grid[k][1]
                for d in dets.items:
                    box = Detection(d.cls, d.label, d.confidence, d.x1 + ox, d.y1 + oy, d.x2 + ox, d.y2 + oy)
                    found.append((k, box))
                    cut.append(cut_by_tile(box, grid[k], w, h))
        except Exception:
            _drain(pending)  # the tiles still queued are taken, so their slots are free for the next picture
            raise
        self.tiles_run += len(grid)
        items = merge_tiles(found, self.merge_ios, cut)
        return Detections(items, w, h, (time.perf_counter() - t0) * 1000, self.sha256)

    def submit(self, image: np.ndarray) -> PendingDetections:
        return Ready(self.detect(image))


def _drain(pending: list[tuple[int, PendingDetections]]) -> None:
    for _, p in pending:
        try:
            p.result()
        except Exception as e:  # noqa: BLE001 - the picture has failed already; this is only housekeeping
            log.debug("a queued tile of a failed picture: %s", e)


# the recipe's setting and the model's card ------------------------------------------------------------------


def card_tiling(card: ModelCard | None) -> Tiling | None:
    """The tiles a model was trained on, as its card records them (``tiling``: tile and overlap in camera
    pixels), or None when the card records none (trained on whole pictures, or an older card)."""
    t = card.extra.get("tiling") if card is not None else None
    if not isinstance(t, Mapping):
        return None
    try:
        return Tiling(int(t.get("tile", 0)), int(t.get("overlap", 0)))
    except (TypeError, ValueError):
        return None


def recipe_tiling(tile_size: int | str, tile_overlap: int, card: ModelCard | None, model: str = "the model",
                  recipe: str = "the recipe") -> Tiling | None:
    """The tiling a recipe asks for on a model, or None (tiles off); ConfigError, in one sentence, when the
    model was not trained at the scale the tiles give it.

    ``"auto"``: ``auto_tiling``. A tile of N camera pixels reaches the model at N / imgsz of the camera's
    scale; a model trained on tiles (or on pictures no larger than its input, which the card records the same
    way) is fit when its training tiles gave the same scale within ``SCALE_TOLERANCE``."""
    if not tile_size:
        return None
    if tile_size == "auto":
        return auto_tiling(card, model, recipe)
    trained = card_tiling(card)
    if trained is None:
        raise ConfigError(f"recipe {recipe!r} tiles the picture, but {model} was trained on whole pictures "
                          "shrunk to its input (its card records no tiling): train it with 'inspector train "
                          "--tile SIZE --overlap PX' or set tile_size = 0.")
    tiling = Tiling(int(tile_size), int(tile_overlap))
    ratio = tiling.size / trained.size
    if not 1 / SCALE_TOLERANCE <= ratio <= SCALE_TOLERANCE:
        raise ConfigError(f"recipe {recipe!r} cuts {tiling.size}-px tiles, but {model} was trained on "
                          f"{trained.size}-px tiles: its defects would reach it at {ratio:.2f}x the size it "
                          f"learnt; set tile_size = {trained.size} (or \"auto\").")
    return tiling


def card_scale(card: ModelCard | None) -> tuple[int, int]:
    """(median long side of the training pictures, 95th percentile of the boxes' long sides), both in camera
    pixels, as the card records them (``camera_scale``: ``inspector.training.datacheck.camera_scale``, written by
    ``inspector train``); 0 for what it does not record."""
    c = card.extra.get("camera_scale") if card is not None else None
    if not isinstance(c, Mapping):
        return 0, 0
    try:
        return (max(0, int(c.get("picture_long_side_px") or 0)),
                max(0, int(math.ceil(float(c.get("box_long_px_p95") or 0)))))
    except (TypeError, ValueError):
        return 0, 0


def auto_tiling(card: ModelCard | None, model: str = "the model", recipe: str = "the recipe") -> Tiling:
    """``tile_size = "auto"``: the tiles that show the camera's pictures to the model at the scale it learnt.

    The tile is the one the card's ``tiling`` records or, for a model trained on whole pictures, the long side
    of its training pictures (each of them reached the model whole: a tile of that size keeps that scale).
    The overlap is the trained one, raised to the largest boxes it was trained on (95th percentile, rounded
    up to 8 px, at most half a tile), so that an object cut by one tile's border is whole in its neighbour.
    The camera's resolution decides the grid: a picture no larger than a tile is judged whole, as one tile
    (``tile_grid``). ConfigError, in one sentence, when the card records neither."""
    trained = card_tiling(card)
    picture, box = card_scale(card)
    if trained is None and picture < 32:
        raise ConfigError(f"recipe {recipe!r} sets tile_size = \"auto\", but {model} was trained on whole pictures "
                          "shrunk to its input and its card records neither tiles nor the size of its training "
                          "pictures: train it again with this version (or with 'inspector train --tile SIZE "
                          "--overlap PX') or set tile_size to a number of pixels.")
    size = trained.size if trained is not None else picture
    overlap = trained.overlap if trained is not None else 0
    if box:
        overlap = max(overlap, min(-(-box // 8) * 8, size // 2))
    return Tiling(size, overlap)


def tiled_for_recipe(detector: Detector, recipe: RecipeConfig, card: ModelCard | None,
                     model: str = "the model") -> Detector:
    """The detector as ``recipe`` runs it: tile by tile (boxes in the picture's own pixels) when the recipe tiles,
    else the detector itself; ConfigError (``recipe_tiling``) when the model was not trained at that scale."""
    tiling = recipe_tiling(recipe.tile_size, recipe.tile_overlap, card, model, recipe.name)
    return detector if tiling is None else TiledDetector(detector, tiling, recipe.roi)
