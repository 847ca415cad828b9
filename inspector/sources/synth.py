"""Synthetic manufactured parts on a belt, with exact defect boxes.

Each image is one part (a machined disc, a flange with bolt holes or a stamped bracket) as a camera
over a line sees it: position, rotation, lighting, noise and blur vary. About half the parts are
good; the others carry one or two defects of the classes in ``CLASSES``. Boxes are taken from the
pixels each defect really changed, so they are exact. The same seed gives the same images.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("scratch", "dent", "stain", "crack", "chip")
PART_TYPES: tuple[str, ...] = ("disc", "flange", "bracket")
SIZE = 320


@dataclass(frozen=True)
class SynthBox:
    """One defect: class index and pixel box (x1, y1, x2, y2), x2/y2 exclusive."""

    cls: int
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class SynthPart:
    """One rendered part image with its ground truth."""

    image: np.ndarray
    part_type: str
    boxes: tuple[SynthBox, ...]


def _belt(rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(35, 75)
    img = np.full((SIZE, SIZE), base, np.float32)
    # the belt's weave runs along the travel direction
    rows = rng.normal(0, rng.uniform(2, 6), (SIZE, 1)).astype(np.float32)
    img += cv2.GaussianBlur(rows, (1, 5), 0)
    img += rng.normal(0, 3, (SIZE, SIZE)).astype(np.float32)
    tint = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    return np.clip(img[..., None] * tint, 0, 255)


def _part_mask(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Return (part mask, machining-detail mask, (cx, cy, radius))."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    detail = np.zeros((SIZE, SIZE), np.uint8)
    cx = SIZE / 2 + rng.uniform(-35, 35)
    cy = SIZE / 2 + rng.uniform(-35, 35)
    r = rng.uniform(85, 115)
    angle = rng.uniform(0, 2 * math.pi)
    c = (int(cx), int(cy))
    if kind == "disc":
        cv2.circle(mask, c, int(r), 255, -1, cv2.LINE_AA)
        cv2.circle(mask, c, int(r * rng.uniform(0.22, 0.32)), 0, -1, cv2.LINE_AA)
        for k in range(3, 9):
            cv2.circle(detail, c, int(r * k / 9), 255, 1, cv2.LINE_AA)
    elif kind == "flange":
        cv2.circle(mask, c, int(r), 255, -1, cv2.LINE_AA)
        cv2.circle(mask, c, int(r * 0.33), 0, -1, cv2.LINE_AA)
        holes = int(rng.integers(4, 9))
        for k in range(holes):
            a = angle + 2 * math.pi * k / holes
            hc = (int(cx + 0.7 * r * math.cos(a)), int(cy + 0.7 * r * math.sin(a)))
            cv2.circle(mask, hc, int(r * 0.09), 0, -1, cv2.LINE_AA)
        cv2.circle(detail, c, int(r * 0.5), 255, 2, cv2.LINE_AA)
        cv2.circle(detail, c, int(r * 0.9), 255, 1, cv2.LINE_AA)
    else:  # bracket: a stamped L-shaped plate with two holes
        w, h = r * 1.7, r * 1.2
        pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, -h / 8],
                        [-w / 8, -h / 8], [-w / 8, h / 2], [-w / 2, h / 2]], np.float64)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        poly = (pts @ rot.T + [cx, cy]).astype(np.int32)
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA)
        for hx, hy in ((w * 0.32, -h * 0.31), (-w * 0.31, h * 0.3)):
            p = np.array([hx, hy]) @ rot.T + [cx, cy]
            cv2.circle(mask, (int(p[0]), int(p[1])), int(r * 0.1), 0, -1, cv2.LINE_AA)
        cv2.polylines(detail, [poly], True, 255, 3, cv2.LINE_AA)
    return mask, detail, (cx, cy, r)


def _paint_part(img: np.ndarray, mask: np.ndarray, detail: np.ndarray, rng: np.random.Generator) -> None:
    level = rng.uniform(135, 195)
    gx, gy = rng.uniform(-0.25, 0.25, 2)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    shade = level + gx * (xx - SIZE / 2) + gy * (yy - SIZE / 2)
    shade += rng.normal(0, 2.5, (SIZE, SIZE)).astype(np.float32)
    shade -= (detail.astype(np.float32) / 255.0) * rng.uniform(10, 22)
    m = (mask.astype(np.float32) / 255.0)[..., None]
    metal = np.repeat(shade[..., None], 3, axis=2) * rng.uniform(0.96, 1.04, 3).astype(np.float32)
    img[:] = img * (1 - m) + metal * m
    # a dark rim where the part meets the belt
    edge = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    img[edge > 0] *= 0.6


def _random_point(mask: np.ndarray, rng: np.random.Generator, margin: int) -> tuple[int, int] | None:
    inner = cv2.erode(mask, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    ys, xs = np.nonzero(inner > 128)
    if len(xs) == 0:
        return None
    i = int(rng.integers(len(xs)))
    return int(xs[i]), int(ys[i])


def _scratch(img, part, rng, pt):
    m = np.zeros((SIZE, SIZE), np.uint8)
    length = rng.uniform(32, 70)
    a = rng.uniform(0, math.pi)
    p1 = (int(pt[0] - length / 2 * math.cos(a)), int(pt[1] - length / 2 * math.sin(a)))
    p2 = (int(pt[0] + length / 2 * math.cos(a)), int(pt[1] + length / 2 * math.sin(a)))
    cv2.line(m, p1, p2, 255, int(rng.integers(2, 4)), cv2.LINE_AA)
    delta = rng.choice([-1, 1]) * rng.uniform(55, 85)
    return m, lambda img, w: img + w * delta


def _dent(img, part, rng, pt):
    m = np.zeros((SIZE, SIZE), np.uint8)
    ax = (int(rng.uniform(7, 13)), int(rng.uniform(6, 11)))
    ang = rng.uniform(0, 180)
    cv2.ellipse(m, pt, ax, ang, 0, 360, 255, -1, cv2.LINE_AA)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    lx, ly = math.cos(math.radians(ang)), math.sin(math.radians(ang))
    side = ((xx - pt[0]) * lx + (yy - pt[1]) * ly) / max(ax)
    relief = np.clip(side, -1, 1)[..., None] * 45 - 35

    def paint(img, w):
        return img + w * relief

    return m, paint


def _stain(img, part, rng, pt):
    m = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(int(rng.integers(3, 6))):
        c = (int(pt[0] + rng.uniform(-9, 9)), int(pt[1] + rng.uniform(-9, 9)))
        cv2.circle(m, c, int(rng.uniform(5, 11)), 255, -1, cv2.LINE_AA)
    colour = np.array([rng.uniform(20, 50), rng.uniform(50, 80), rng.uniform(85, 120)], np.float32)
    alpha = rng.uniform(0.6, 0.8)
    return m, lambda img, w: img * (1 - alpha * w) + colour * alpha * w


def _crack(img, part, rng, pt):
    m = np.zeros((SIZE, SIZE), np.uint8)
    p = np.array(pt, np.float64)
    a = rng.uniform(0, 2 * math.pi)
    pts = [p.copy()]
    for _ in range(int(rng.integers(5, 9))):
        a += rng.uniform(-0.9, 0.9)
        p = p + rng.uniform(5, 9) * np.array([math.cos(a), math.sin(a)])
        pts.append(p.copy())
    cv2.polylines(m, [np.array(pts, np.int32)], False, 255, 2, cv2.LINE_AA)
    branch = pts[len(pts) // 2]
    b = branch + rng.uniform(8, 14) * np.array([math.cos(a + 1.2), math.sin(a + 1.2)])
    cv2.line(m, tuple(int(v) for v in branch), tuple(int(v) for v in b), 255, 1, cv2.LINE_AA)
    return m, lambda img, w: img * (1 - w) + 25 * w


CHIP_SENTINEL = "chip"


def _chip(img, part, rng, pt):
    m = np.zeros((SIZE, SIZE), np.uint8)
    n = int(rng.integers(5, 8))
    rad = rng.uniform(9, 16)
    poly = [(pt[0] + rad * rng.uniform(0.6, 1.0) * math.cos(2 * math.pi * k / n),
             pt[1] + rad * rng.uniform(0.6, 1.0) * math.sin(2 * math.pi * k / n)) for k in range(n)]
    cv2.fillPoly(m, [np.array(poly, np.int32)], 255, cv2.LINE_AA)
    return m, CHIP_SENTINEL


_DEFECTS: tuple[Callable, ...] = (_scratch, _dent, _stain, _crack, _chip)


def _edge_point(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    contours, _ = cv2.findContours((mask > 128).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    outer = max(contours, key=cv2.contourArea)[:, 0, :]
    x, y = outer[int(rng.integers(len(outer)))]
    return int(x), int(y)


def render_part(rng: np.random.Generator, defective: bool | None = None) -> SynthPart:
    """Render one part; ``defective`` None means a fair coin decides."""
    belt = _belt(rng)
    kind = PART_TYPES[int(rng.integers(len(PART_TYPES)))]
    mask, detail, _ = _part_mask(rng, kind)
    img = belt.copy()
    _paint_part(img, mask, detail, rng)
    if defective is None:
        defective = bool(rng.random() < 0.5)
    boxes: list[SynthBox] = []
    taken = np.zeros((SIZE, SIZE), np.uint8)
    wanted = (1 if rng.random() < 0.75 else 2) if defective else 0
    tries = 0
    while len(boxes) < wanted and tries < 40:
        tries += 1
        cls = int(rng.integers(len(CLASSES)))
        pt = _edge_point(mask, rng) if CLASSES[cls] == "chip" else _random_point(mask, rng, 16)
        if pt is None:
            continue
        drawn, paint = _DEFECTS[cls](img, mask, rng, pt)
        region = cv2.bitwise_and(drawn, mask)
        if cv2.countNonZero(cv2.bitwise_and(cv2.dilate(region, np.ones((9, 9), np.uint8)), taken)):
            continue
        if cv2.countNonZero(region) < 40:
            continue
        w = (region.astype(np.float32) / 255.0)[..., None]
        if paint == CHIP_SENTINEL:
            # missing material: the belt shows through, with a bright fresh fracture at the rim
            img = img * (1 - w) + belt * w
            rim = cv2.morphologyEx(region, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
            rim = cv2.bitwise_and(rim, cv2.erode(mask, np.ones((3, 3), np.uint8)))
            img[rim > 0] = np.minimum(img[rim > 0] + 70, 255)
            mask = cv2.bitwise_and(mask, cv2.bitwise_not(region))
        else:
            img = paint(img, w)
        ys, xs = np.nonzero(region > 24)
        boxes.append(SynthBox(cls, int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
        taken = cv2.bitwise_or(taken, region)
    img = _camera(img, rng)
    return SynthPart(img, kind, tuple(boxes))


def _camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting, sensor noise and focus: photometric only, so the boxes stay exact."""
    gain = rng.uniform(0.8, 1.2)
    bias = rng.uniform(-15, 15)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0, 0.18) * ((xx - SIZE / 2) * math.cos(a) + (yy - SIZE / 2) * math.sin(a)) / SIZE
    img = img * gain * light[..., None] + bias
    img += rng.normal(0, rng.uniform(1.5, 6), img.shape).astype(np.float32)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.1))
    return np.clip(img, 0, 255).astype(np.uint8)


def generate(count: int, seed: int) -> Iterator[tuple[str, SynthPart]]:
    """Yield (stem, part) for ``count`` parts; deterministic for ``seed``."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        yield f"part_{seed}_{i:05d}", render_part(rng)


def write_dataset(out: Path, count: int, seed: int, progress: Callable[[int, int], None] | None = None) -> dict:
    """Write ``count`` parts as a YOLO-format folder: images/, labels/, classes.txt, synth.json."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    parts = []
    for n, (stem, part) in enumerate(generate(count, seed), 1):
        if not cv2.imwrite(str(out / "images" / f"{stem}.jpg"), part.image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"could not write {out / 'images' / stem}.jpg")
        lines = [f"{b.cls} {(b.x1 + b.x2) / 2 / SIZE:.6f} {(b.y1 + b.y2) / 2 / SIZE:.6f} "
                 f"{(b.x2 - b.x1) / SIZE:.6f} {(b.y2 - b.y1) / SIZE:.6f}" for b in part.boxes]
        (out / "labels" / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
        parts.append({"stem": stem, "part_type": part.part_type, "defects": [CLASSES[b.cls] for b in part.boxes]})
        if progress:
            progress(n, count)
    (out / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    meta = {"generator": "inspector synth", "seed": seed, "count": count, "size": SIZE,
            "classes": list(CLASSES), "defective": sum(1 for p in parts if p["defects"]), "parts": parts}
    (out / "synth.json").write_text(json.dumps(meta, indent=1))
    return meta
