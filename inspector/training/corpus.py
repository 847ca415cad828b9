"""A large, varied corpus of procedurally generated surfaces with generic defects, for pre-training.

No pretrained weights can be downloaded at many plants, so a base model learns what "a defect on a
surface" looks like from images drawn here: brushed and cast metal, rolled steel with scale, plastic,
printed circuit boards, woven textile, printed patterns, perforated sheet and plain noise at many
frequencies, under varied light, focus, sensor noise and JPEG quality. Each image carries 0 to 6
defects of eight generic kinds (``CLASSES``) at scales from a few pixels to most of the image and at
contrasts from faint to stark. Boxes are taken from the pixels each defect really changed.

Every image depends only on (seed, index), so a corpus is the same however many processes write it.
Only numpy and OpenCV are used; worker processes are started with ``spawn``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("scratch", "crack", "pits", "inclusion", "stain", "missing_material",
                            "extra_material", "rolled_in")
SURFACES: tuple[str, ...] = ("brushed_metal", "cast_metal", "rolled_steel", "plastic", "pcb", "textile",
                             "print", "perforated", "noise")
DEFAULT_SIZE = 320
_BOX_LEVEL = 0.3  # a pixel belongs to a defect's box where its weight reaches this
MIN_CHANGE = 6.0  # grey levels a defect must change on average over its pixels, at least ...
VISIBILITY = 0.8  # ... and this share of the standard deviation of the texture under it


@dataclass(frozen=True)
class CorpusBox:
    """One defect: class index and pixel box (x1, y1, x2, y2), x2/y2 exclusive (``box``: the one ``Box``)."""

    cls: int
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def box(self):
        """The one ``Box`` (imported here: this module also runs alone, copied beside the GPU pre-training)."""
        from inspector.core.types import Box

        return Box(self.x1, self.y1, self.x2, self.y2)


@dataclass(frozen=True)
class CorpusImage:
    image: np.ndarray  # H x W x 3 uint8, BGR
    surface: str
    boxes: tuple[CorpusBox, ...]
    jpeg_quality: int


# ---------------------------------------------------------------------------------------------
# noise helpers

_NOISE_BANK: dict[int, np.ndarray] = {}


def _noise_bank(size: int) -> np.ndarray:
    """A fixed tile of unit Gaussian noise (same in every process), cropped at random offsets."""
    bank = _NOISE_BANK.get(size)
    if bank is None:
        bank = np.random.default_rng(12345).standard_normal((2 * size, 2 * size, 3)).astype(np.float32)
        _NOISE_BANK[size] = bank
    return bank


def _bank_crop(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    bank = _noise_bank(max(h, w))
    y, x = int(rng.integers(0, bank.shape[0] - h + 1)), int(rng.integers(0, bank.shape[1] - w + 1))
    c = int(rng.integers(0, 3 - channels + 1))
    return bank[y:y + h, x:x + w, c:c + channels] if channels > 1 else bank[y:y + h, x:x + w, c]


def _smooth(rng: np.random.Generator, h: int, w: int, cells_y: float, cells_x: float | None = None) -> np.ndarray:
    """Smooth noise in [0, 1] with about ``cells`` features across each side."""
    cy = max(2, int(cells_y))
    cx = max(2, int(cells_x if cells_x is not None else cells_y))
    small = rng.random((cy, cx), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _fractal(rng: np.random.Generator, n: int, base: float, octaves: int, gain: float) -> np.ndarray:
    """Zero-mean noise summed over octaves, roughly in [-1, 1]."""
    total = np.zeros((n, n), np.float32)
    amp, cells, norm = 1.0, base, 0.0
    for _ in range(octaves):
        if cells >= n / 2:
            total += amp * 0.3 * _bank_crop(rng, n, n, 1)
        else:
            total += amp * (_smooth(rng, n, n, cells) - 0.5) * 2
        norm += amp
        amp *= gain
        cells *= 2
    return total / norm


def _rotate(img: np.ndarray, angle: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


@functools.lru_cache(maxsize=8)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y coordinates (shared: never write into them)."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    xx.setflags(write=False)
    yy.setflags(write=False)
    return xx, yy


def _hue_tint(rng: np.random.Generator, saturation: float) -> np.ndarray:
    """A BGR multiplier around 1 with the given saturation (0 = grey)."""
    hsv = np.uint8([[[int(rng.integers(0, 180)), int(255 * saturation), 255]]])
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32) / 255.0
    return bgr / max(float(bgr.mean()), 1e-3)


# ---------------------------------------------------------------------------------------------
# surfaces: each returns (grey float32 n x n, BGR image float32 n x n x 3)

def _colour(grey: np.ndarray, tint: np.ndarray, second: np.ndarray | None = None,
            tint2: np.ndarray | None = None) -> np.ndarray:
    """A BGR image: ``grey`` times ``tint``, or times ``tint2`` where ``second`` (0..1) says so."""
    grey = grey.astype(np.float32, copy=False)
    if second is None or tint2 is None:
        return cv2.merge([grey * float(t) for t in tint])
    return cv2.merge([grey * (float(t) + second * float(t2 - t)) for t, t2 in zip(tint, tint2, strict=True)])


def _metal_tint(rng: np.random.Generator) -> np.ndarray:
    return _hue_tint(rng, float(rng.uniform(0.0, 0.12)))


def _brushed_metal(rng: np.random.Generator, n: int) -> np.ndarray:
    level = rng.uniform(80, 200)
    along = rng.uniform(1, 6)
    across = rng.uniform(n / 6, n / 1.2)
    streak = (_smooth(rng, n, n, across, along) - 0.5) * rng.uniform(10, 45)
    fine = _bank_crop(rng, n, n, 1) * rng.uniform(1, 5)
    fine = cv2.blur(fine, (9, 1)) * 2
    sheen = (_smooth(rng, n, n, rng.uniform(1.5, 4)) - 0.5) * rng.uniform(10, 60)
    grey = level + streak + fine + sheen
    angle = float(rng.choice([0.0, 90.0, float(rng.uniform(0, 180))], p=[0.4, 0.3, 0.3]))
    if angle:
        grey = _rotate(grey, angle)
    return _colour(grey, _metal_tint(rng))


def _cast_metal(rng: np.random.Generator, n: int) -> np.ndarray:
    level = rng.uniform(60, 180)
    grey = level + _fractal(rng, n, rng.uniform(3, 12), 5, rng.uniform(0.45, 0.7)) * rng.uniform(12, 40)
    grey += _bank_crop(rng, n, n, 1) * rng.uniform(2, 8)  # sand-cast grain
    return _colour(grey, _metal_tint(rng))


def _rolled_steel(rng: np.random.Generator, n: int) -> np.ndarray:
    level = rng.uniform(70, 170)
    streak = (_smooth(rng, n, n, rng.uniform(n / 8, n / 2), rng.uniform(1, 3)) - 0.5) * rng.uniform(6, 25)
    scale = _smooth(rng, n, n, rng.uniform(2, 6), rng.uniform(4, 12))
    t = rng.uniform(0.45, 0.75)
    scale = np.clip((scale - t) / rng.uniform(0.04, 0.2), 0, 1) * rng.uniform(-45, 35)
    grain = _fractal(rng, n, n / 16, 2, 0.6) * rng.uniform(4, 14)
    grey = level + streak + scale + grain
    if rng.random() < 0.5:
        grey = grey.T.copy()
    return _colour(grey, _metal_tint(rng))


def _plastic(rng: np.random.Generator, n: int) -> np.ndarray:
    level = rng.uniform(35, 225)
    xx, yy = _grid(n)
    gx, gy = rng.uniform(-0.15, 0.15, 2)
    grey = level + gx * (xx - n / 2) + gy * (yy - n / 2)
    grey += _fractal(rng, n, rng.uniform(20, 60), 2, 0.5) * rng.uniform(1, 6)  # orange peel
    if rng.random() < 0.3:  # moulded ribs or a textured grain
        period = rng.uniform(6, 30)
        grey += np.sin(xx * (2 * math.pi / period)) * rng.uniform(3, 12)
    return _colour(grey.astype(np.float32), _hue_tint(rng, float(rng.uniform(0, 0.8))))


def _pcb(rng: np.random.Generator, n: int) -> np.ndarray:
    grey = np.full((n, n), rng.uniform(60, 120), np.float32)
    grey += _fractal(rng, n, 8, 3, 0.5) * 6
    copper = np.zeros((n, n), np.uint8)
    silk = np.zeros((n, n), np.uint8)
    pitch = int(rng.integers(8, 24))
    for _ in range(int(rng.integers(6, 25))):
        p = np.array([rng.integers(0, n), rng.integers(0, n)], np.int32)
        pts = [p.copy()]
        for _ in range(int(rng.integers(1, 5))):
            d = [(1, 0), (0, 1), (1, 1), (1, -1), (-1, 0), (0, -1)][int(rng.integers(6))]
            p = p + np.array(d, np.int32) * int(rng.integers(1, 8)) * pitch
            pts.append(p.copy())
        width = int(rng.integers(2, 9))
        cv2.polylines(copper, [np.array(pts, np.int32)], False, 255, width, cv2.LINE_AA)
        for q in (pts[0], pts[-1]):
            r = width + int(rng.integers(1, 6))
            if rng.random() < 0.5:
                cv2.circle(copper, (int(q[0]), int(q[1])), r, 255, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(copper, (int(q[0]) - r, int(q[1]) - r), (int(q[0]) + r, int(q[1]) + r), 255, -1)
    for _ in range(int(rng.integers(0, 6))):
        x, y = int(rng.integers(0, n)), int(rng.integers(0, n))
        w, h = int(rng.integers(10, 60)), int(rng.integers(6, 40))
        cv2.rectangle(silk, (x, y), (x + w, y + h), 255, 1 + int(rng.integers(0, 2)))
    cf = copper.astype(np.float32) / 255
    grey = grey * (1 - cf) + cf * rng.uniform(130, 220)
    sf = silk.astype(np.float32) / 255
    grey = grey * (1 - sf) + sf * 235
    board = _hue_tint(rng, float(rng.uniform(0.3, 0.9)))
    if rng.random() < 0.6:
        board = np.array([0.75, 1.35, 0.9], np.float32)  # the usual green solder mask
    metal = np.array([0.75, 1.05, 1.2], np.float32) if rng.random() < 0.6 else np.ones(3, np.float32)
    return _colour(grey, board, np.maximum(cf, sf), metal)


def _textile(rng: np.random.Generator, n: int) -> np.ndarray:
    xx, yy = _grid(n)
    period = rng.uniform(4, 16)
    u, v = xx / period, yy / period
    cu, cv = np.floor(u).astype(np.int32), np.floor(v).astype(np.int32)
    over = ((cu + cv) % 2).astype(np.float32) if rng.random() < 0.6 else (((cu + 2 * cv) % 3) == 0).astype(np.float32)
    prof_u = np.sin((u - cu) * math.pi)  # a round thread across its width
    prof_v = np.sin((v - cv) * math.pi)
    warp_var = rng.uniform(0.85, 1.15, cu.max() + 2).astype(np.float32)[cu]
    weft_var = rng.uniform(0.85, 1.15, cv.max() + 2).astype(np.float32)[cv]
    level = rng.uniform(60, 200)
    grey = level * (over * prof_u * warp_var + (1 - over) * prof_v * weft_var) * 0.5 + level * 0.55
    grey += _bank_crop(rng, n, n, 1) * rng.uniform(2, 6)
    angle = float(rng.uniform(-20, 20))
    if abs(angle) > 2:
        grey = _rotate(grey.astype(np.float32), angle)
    return _colour(grey.astype(np.float32), _hue_tint(rng, float(rng.uniform(0, 0.7))))


def _print(rng: np.random.Generator, n: int) -> np.ndarray:
    paper = rng.uniform(170, 245)
    grey = np.full((n, n), paper, np.float32) + _fractal(rng, n, 40, 2, 0.5) * 3
    ink = np.zeros((n, n), np.uint8)
    style = int(rng.integers(4))
    if style == 0:  # text-like lines of glyph blocks
        line_h = int(rng.integers(6, 16))
        for y in range(int(rng.integers(2, 10)), n, int(line_h * rng.uniform(1.5, 2.5))):
            x = int(rng.integers(2, 20))
            while x < n - 4:
                gw = int(rng.integers(2, line_h))
                if rng.random() < 0.85:
                    cv2.rectangle(ink, (x, y), (x + gw, y + int(line_h * rng.uniform(0.5, 1))), 255, -1)
                x += gw + int(rng.integers(1, 4)) + (int(rng.integers(4, 12)) if rng.random() < 0.15 else 0)
    elif style == 1:  # halftone dots
        step = int(rng.integers(4, 10))
        shade = _smooth(rng, n, n, 3)
        for y in range(0, n, step):
            for x in range(0, n, step):
                r = int(shade[y, x] * step * 0.6)
                if r > 0:
                    cv2.circle(ink, (x, y), r, 255, -1)
    elif style == 2:  # stripes or checks
        period = int(rng.integers(8, 40))
        xx, yy = _grid(n)
        ink = (((xx // period) % 2 > 0) ^ (((yy // period) % 2 > 0) & (rng.random() < 0.5))).astype(np.uint8) * 255
    else:  # logo-like shapes
        for _ in range(int(rng.integers(2, 8))):
            c = (int(rng.integers(0, n)), int(rng.integers(0, n)))
            r = int(rng.integers(8, 60))
            if rng.random() < 0.5:
                cv2.circle(ink, c, r, 255, int(rng.choice([-1, 2, 4])), cv2.LINE_AA)
            else:
                cv2.rectangle(ink, c, (c[0] + r, c[1] + r // 2), 255, int(rng.choice([-1, 3])))
    m = cv2.GaussianBlur(ink, (3, 3), 0).astype(np.float32) / 255
    grey = grey * (1 - m) + m * rng.uniform(20, 120)
    return _colour(grey, _hue_tint(rng, float(rng.uniform(0, 0.25))), m, _hue_tint(rng, float(rng.uniform(0, 1))))


def _perforated(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sheet with designed holes, knurls or dimples: regular features that are not defects."""
    base = _cast_metal(rng, n) if rng.random() < 0.5 else _plastic(rng, n)
    mask = np.zeros((n, n), np.uint8)
    step = int(rng.integers(14, 48))
    r = int(step * rng.uniform(0.15, 0.35))
    stagger = rng.random() < 0.5
    for j, y in enumerate(range(step // 2, n + step, step)):
        off = step // 2 if stagger and j % 2 else 0
        for x in range(step // 2 + off, n + step, step):
            if rng.random() < 0.5:
                cv2.circle(mask, (x, y), r, 255, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(mask, (x - r, y - r), (x + r, y + r), 255, -1)
    m = mask.astype(np.float32)[..., None] / 255
    depth = rng.uniform(30, 90)
    return base * (1 - m) + m * (base * 0.3 + depth * 0.2)


def _noise_surface(rng: np.random.Generator, n: int) -> np.ndarray:
    grey = rng.uniform(50, 200) + _fractal(rng, n, rng.uniform(2, 40), int(rng.integers(2, 6)),
                                           rng.uniform(0.3, 0.9)) * rng.uniform(8, 50)
    return _colour(grey.astype(np.float32), _hue_tint(rng, float(rng.uniform(0, 0.4))))


_SURFACE_FUNCS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "brushed_metal": _brushed_metal, "cast_metal": _cast_metal, "rolled_steel": _rolled_steel,
    "plastic": _plastic, "pcb": _pcb, "textile": _textile, "print": _print, "perforated": _perforated,
    "noise": _noise_surface,
}
_SURFACE_WEIGHTS = np.array([1.2, 1.0, 1.4, 0.9, 0.9, 0.8, 0.8, 0.5, 0.8], np.float64)
_SURFACE_WEIGHTS /= _SURFACE_WEIGHTS.sum()


# ---------------------------------------------------------------------------------------------
# defects: each returns (weight map float32 h x w in [0, 1], painter(roi, w, rng) -> roi)
# The weight map is drawn in its own small canvas; the caller places it in the image.

Painter = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def _canvas(extent: float) -> tuple[np.ndarray, int]:
    side = int(max(8, extent)) + 8
    return np.zeros((side, side), np.uint8), side


def _contrast(rng: np.random.Generator, lo: float = 12, hi: float = 90) -> float:
    """A signed grey-level change, log-spread so faint defects are common but not the rule."""
    return float(np.exp(rng.uniform(math.log(lo), math.log(hi)))) * (1 if rng.random() < 0.5 else -1)


def _add(delta: float) -> Painter:
    def paint(roi: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return roi + w[..., None] * delta
    return paint


def _relief_painter(height_sign: float, strength: float, albedo: float, tint: np.ndarray | None = None) -> Painter:
    """Shade a bump (sign +1) or a hollow (-1) under light from a random side, plus an albedo change."""
    def paint(roi: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h = cv2.GaussianBlur(w, (0, 0), 1.2) * height_sign
        gx = cv2.Sobel(h, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(h, cv2.CV_32F, 0, 1, ksize=3)
        a = rng.uniform(0, 2 * math.pi)
        shade = (gx * math.cos(a) + gy * math.sin(a)) * strength
        out = roi + shade[..., None] + w[..., None] * albedo
        if tint is not None:
            m = w[..., None]
            out = out * (1 - 0.6 * m) + (out * tint) * 0.6 * m
        return out
    return paint


def _scratch(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    c = side / 2
    a = rng.uniform(0, math.pi)
    bundle = int(rng.integers(2, 6)) if rng.random() < 0.2 else 1
    width = int(rng.choice([1, 1, 2, 2, 3, 4]))
    bend = rng.uniform(-0.15, 0.15) * s
    for k in range(bundle):
        off = (k - (bundle - 1) / 2) * rng.uniform(2, 6)
        ln = s * (rng.uniform(0.6, 1.0) if bundle > 1 else 1.0)
        t = np.linspace(-0.5, 0.5, 12)
        px = c + t * ln * math.cos(a) - off * math.sin(a) - bend * (1 - 4 * t * t) * math.sin(a)
        py = c + t * ln * math.sin(a) + off * math.cos(a) + bend * (1 - 4 * t * t) * math.cos(a)
        pts = np.stack([px, py], 1).round().astype(np.int32)
        cv2.polylines(canvas, [pts], False, 255, width, cv2.LINE_AA)
    w = canvas.astype(np.float32) / 255
    if rng.random() < 0.5:
        return w, _relief_painter(-1, rng.uniform(20, 80), _contrast(rng, 8, 60))
    return w, _add(_contrast(rng, 15, 100))


def _crack(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    if rng.random() < 0.35:  # crazing: a network of fine cracks over an area
        for _ in range(int(rng.integers(8, 30))):
            p = rng.uniform(4, side - 4, 2)
            a = rng.uniform(0, 2 * math.pi)
            pts = [p.copy()]
            for _ in range(int(rng.integers(2, 6))):
                a += rng.uniform(-0.8, 0.8)
                p = np.clip(p + rng.uniform(3, max(4.0, s / 8)) * np.array([math.cos(a), math.sin(a)]), 2, side - 3)
                pts.append(p.copy())
            cv2.polylines(canvas, [np.array(pts).round().astype(np.int32)], False, 255, 1, cv2.LINE_AA)
    else:
        def walk(p: np.ndarray, a: float, length: float, width: int) -> None:
            pts = [p.copy()]
            step = max(2.0, length / 14)
            done = 0.0
            while done < length:
                a += rng.uniform(-0.6, 0.6)
                p = np.clip(p + step * np.array([math.cos(a), math.sin(a)]), 2, side - 3)
                pts.append(p.copy())
                done += step
                if rng.random() < 0.08 and width > 1:
                    walk(p.copy(), a + rng.choice([-1, 1]) * rng.uniform(0.6, 1.2), (length - done) * 0.5, width - 1)
            cv2.polylines(canvas, [np.array(pts).round().astype(np.int32)], False, 255, width, cv2.LINE_AA)
        a0 = rng.uniform(0, 2 * math.pi)
        start = np.array([side / 2, side / 2]) - np.array([math.cos(a0), math.sin(a0)]) * s * 0.45
        walk(start, a0, s * 0.9, int(rng.choice([1, 2, 2, 3])))
    w = canvas.astype(np.float32) / 255
    return w, _add(-abs(_contrast(rng, 20, 110)))


def _pits(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    if rng.random() < 0.4 or s < 10:  # one pit or hole
        r = max(1, int(s / 2 - 1))
        cv2.circle(canvas, (side // 2, side // 2), r, 255, -1, cv2.LINE_AA)
    else:  # pitted surface: a cluster of small pits
        rmax = max(1.5, min(6.0, s / 8))
        for _ in range(int(rng.integers(6, 40))):
            p = rng.normal(side / 2, s / 4.5, 2).clip(3, side - 4)
            cv2.circle(canvas, (int(p[0]), int(p[1])), int(rng.uniform(1, rmax)), 255, -1, cv2.LINE_AA)
    w = canvas.astype(np.float32) / 255
    return w, _relief_painter(-1, rng.uniform(30, 110), -abs(_contrast(rng, 15, 90)))


def _blob(canvas: np.ndarray, rng: np.random.Generator, rx: float, ry: float, angle: float) -> None:
    side = canvas.shape[0]
    k = int(rng.integers(6, 18))
    ang = np.sort(rng.uniform(0, 2 * math.pi, k))
    rad = rng.uniform(0.45, 1.0, k)
    x = np.cos(ang) * rx * rad
    y = np.sin(ang) * ry * rad
    ca, sa = math.cos(angle), math.sin(angle)
    pts = np.stack([side / 2 + x * ca - y * sa, side / 2 + x * sa + y * ca], 1).round().astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA)


def _inclusion(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    angle = float(rng.choice([0.0, math.pi / 2, float(rng.uniform(0, math.pi))]))
    if rng.random() < 0.35:  # a string of fragments along one line
        for _ in range(int(rng.integers(2, 6))):
            sub = np.zeros_like(canvas)
            _blob(sub, rng, s * rng.uniform(0.06, 0.15), s * rng.uniform(0.03, 0.08), angle)
            shift = rng.uniform(-0.4, 0.4) * s
            m = np.float32([[1, 0, shift * math.cos(angle)], [0, 1, shift * math.sin(angle)]])
            canvas = np.maximum(canvas, cv2.warpAffine(sub, m, (side, side)))
    else:
        _blob(canvas, rng, s * 0.5, s * rng.uniform(0.1, 0.45), angle)
    w = cv2.GaussianBlur(canvas, (3, 3), 0).astype(np.float32) / 255
    return w, _add(_contrast(rng, 15, 100) if rng.random() < 0.3 else -abs(_contrast(rng, 15, 100)))


_STAIN_TINTS = (np.array([0.55, 0.85, 1.35], np.float32),  # rust
                np.array([0.9, 0.95, 1.05], np.float32),  # oil, water
                np.array([1.2, 1.0, 0.8], np.float32))  # bluish residue


def _stain(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    _blob(canvas, rng, s * 0.5, s * rng.uniform(0.25, 0.5), float(rng.uniform(0, math.pi)))
    tex = _smooth(rng, side, side, rng.uniform(3, 8))
    w = canvas.astype(np.float32) / 255 * np.clip(tex * 1.6, 0.35, 1.0)
    w = cv2.GaussianBlur(w, (0, 0), max(0.8, s * rng.uniform(0.01, 0.06)))
    ring = rng.random() < 0.2
    if ring:  # a dried drop: darker at its rim
        w = np.clip(w - cv2.GaussianBlur(w, (0, 0), max(1.0, s / 12)) * 0.8, 0, 1) * 2.5
        w = np.clip(w, 0, 1)
    delta = _contrast(rng, 12, 70)
    tint = _STAIN_TINTS[int(rng.integers(len(_STAIN_TINTS)))] if rng.random() < 0.6 else None

    def paint(roi: np.ndarray, wm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        m = wm[..., None]
        out = roi + m * delta
        if tint is not None:
            out = out * (1 - m) + out * tint * m
        return out
    return w, paint


def _missing(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    _blob(canvas, rng, s * 0.5, s * rng.uniform(0.3, 0.5), float(rng.uniform(0, math.pi)))
    w = canvas.astype(np.float32) / 255
    floor = rng.uniform(5, 70) if rng.random() < 0.7 else rng.uniform(150, 240)
    keep = rng.uniform(0.0, 0.5)  # how much of the texture still shows through (a shallow chip or peel)

    def paint(roi: np.ndarray, wm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        m = wm[..., None]
        hole = floor * (1 - keep) + roi * keep + _bank_crop(rng, wm.shape[0], wm.shape[1], 1)[..., None] * 4
        out = roi * (1 - m) + hole * m
        rim = cv2.morphologyEx(wm, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        a = rng.uniform(0, 2 * math.pi)
        gx = cv2.Sobel(wm, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(wm, cv2.CV_32F, 0, 1, ksize=3)
        lit = np.clip(gx * math.cos(a) + gy * math.sin(a), -1, 1)
        return out + (rim * lit * rng.uniform(30, 90))[..., None]
    return w, paint


def _extra(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    if rng.random() < 0.3:  # spatter: several droplets
        for _ in range(int(rng.integers(3, 12))):
            p = rng.normal(side / 2, s / 5, 2).clip(3, side - 4)
            r = max(1, int(rng.uniform(1, max(1.5, s / 8))))
            cv2.circle(canvas, (int(p[0]), int(p[1])), r, 255, -1, cv2.LINE_AA)
    else:
        _blob(canvas, rng, s * 0.5, s * rng.uniform(0.3, 0.5), float(rng.uniform(0, math.pi)))
    w = canvas.astype(np.float32) / 255
    tint = _hue_tint(rng, float(rng.uniform(0.2, 0.8))) if rng.random() < 0.3 else None
    return w, _relief_painter(1, rng.uniform(40, 140), _contrast(rng, 8, 70), tint)


def _rolled_in(rng: np.random.Generator, s: float) -> tuple[np.ndarray, Painter]:
    canvas, side = _canvas(s)
    angle = float(rng.choice([0.0, math.pi / 2])) + rng.uniform(-0.15, 0.15)
    ca, sa = math.cos(angle), math.sin(angle)
    for _ in range(int(rng.integers(8, 50))):
        p = rng.uniform(4, side - 4, 2)
        ln = rng.uniform(2, max(3.0, s / 11))
        wd = max(0.6, ln * rng.uniform(0.08, 0.25))
        poly = np.array([[-ln, -wd], [ln, -wd * rng.uniform(0.3, 1)], [ln, wd], [-ln, wd * rng.uniform(0.3, 1)]])
        rot = poly @ np.array([[ca, sa], [-sa, ca]]) + p
        cv2.fillPoly(canvas, [rot.round().astype(np.int32)], 255, cv2.LINE_AA)
    w = cv2.GaussianBlur(canvas, (3, 3), 0).astype(np.float32) / 255
    if rng.random() < 0.5:
        return w, _add(-abs(_contrast(rng, 12, 70)))
    return w, _relief_painter(-1, rng.uniform(5, 25), -abs(_contrast(rng, 12, 70)))


_DEFECT_FUNCS: tuple[Callable[[np.random.Generator, float], tuple[np.ndarray, Painter]], ...] = (
    _scratch, _crack, _pits, _inclusion, _stain, _missing, _extra, _rolled_in)
# (smallest, largest) characteristic size as a share of the image side
_DEFECT_SCALES: tuple[tuple[float, float], ...] = (
    (0.05, 0.8), (0.06, 0.6), (0.015, 0.45), (0.02, 0.35), (0.08, 0.7), (0.03, 0.4), (0.02, 0.3), (0.12, 0.7))


# ---------------------------------------------------------------------------------------------
# the image

def _part_edge(rng: np.random.Generator, n: int) -> np.ndarray | None:
    """Sometimes the part ends inside the picture: mask of the part (1) against the background (0)."""
    if rng.random() > 0.2:
        return None
    mask = np.zeros((n, n), np.uint8)
    if rng.random() < 0.5:
        c = (int(rng.uniform(-0.5, 1.5) * n), int(rng.uniform(-0.5, 1.5) * n))
        r = int(rng.uniform(0.5, 1.2) * n)
        cv2.circle(mask, c, r, 255, -1, cv2.LINE_AA)
    else:
        a = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(0.15, 0.45) * n
        xx, yy = _grid(n)
        mask = (((xx - n / 2) * math.cos(a) + (yy - n / 2) * math.sin(a)) < d).astype(np.uint8) * 255
    if mask.mean() < 0.35 * 255:
        mask = 255 - mask
    return mask


def _place(img: np.ndarray, taken: np.ndarray, part: np.ndarray | None, cls: int, rng: np.random.Generator,
           n: int) -> CorpusBox | None:
    lo, hi = _DEFECT_SCALES[cls]
    s = float(np.exp(rng.uniform(math.log(lo * n), math.log(hi * n))))
    w, paint = _DEFECT_FUNCS[cls](rng, s)
    h, wd = w.shape
    if part is not None and cls == CLASSES.index("missing_material") and rng.random() < 0.7:
        edge = cv2.morphologyEx(part, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        ys, xs = np.nonzero(edge)
        if len(xs):
            i = int(rng.integers(len(xs)))
            cx, cy = int(xs[i]), int(ys[i])
        else:
            cx, cy = int(rng.integers(0, n)), int(rng.integers(0, n))
    else:
        cx, cy = int(rng.integers(0, n)), int(rng.integers(0, n))
        if part is not None and part[cy, cx] < 128:
            return None
    x0, y0 = cx - wd // 2, cy - h // 2
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(n, x0 + wd), min(n, y0 + h)
    if ix1 - ix0 < 3 or iy1 - iy0 < 3:
        return None
    wv = w[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    if part is not None:
        wv = wv * (part[iy0:iy1, ix0:ix1].astype(np.float32) / 255)
    on = wv >= _BOX_LEVEL
    if int(on.sum()) < 6:
        return None
    if np.any(taken[iy0:iy1, ix0:ix1][cv2.dilate(on.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0]):
        return None
    roi = img[iy0:iy1, ix0:ix1]
    painted = paint(roi, wv, rng)
    if not _visible(roi, painted, on):
        return None
    img[iy0:iy1, ix0:ix1] = painted
    ys, xs = np.nonzero(on)
    box = CorpusBox(cls, ix0 + int(xs.min()), iy0 + int(ys.min()), ix0 + int(xs.max()) + 1, iy0 + int(ys.max()) + 1)
    if box.x2 - box.x1 < 2 or box.y2 - box.y1 < 2:
        return None
    taken[box.y1:box.y2, box.x1:box.x2] = 1
    return box


def _visible(before: np.ndarray, after: np.ndarray, on: np.ndarray) -> bool:
    """Whether a defect stands out of the texture around it enough to be labelled (no invisible labels)."""
    change = float(np.abs(after - before)[on].mean())
    texture = float(before.mean(axis=2).std())
    return change >= max(MIN_CHANGE, VISIBILITY * texture)


def _camera(img: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Light falloff, exposure, focus, sensor noise and gamma: photometric only, boxes stay exact."""
    xx, yy = _grid(n)
    if rng.random() < 0.5:
        a = rng.uniform(0, 2 * math.pi)
        light = 1 + rng.uniform(0, 0.5) * ((xx - n / 2) * math.cos(a) + (yy - n / 2) * math.sin(a)) / n
    else:
        cx, cy = rng.uniform(0.2, 0.8, 2) * n
        light = 1 - rng.uniform(0, 0.6) * (((xx - cx) ** 2 + (yy - cy) ** 2) / (n * n))
    light = (light * rng.uniform(0.7, 1.25)).astype(np.float32)
    img = cv2.multiply(img, cv2.merge([light, light, light])) + rng.uniform(-20, 20)
    r = rng.random()
    if r < 0.35:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.6))
    elif r < 0.45:  # motion blur along the line's travel
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        if rng.random() < 0.5:
            kernel = kernel.T.copy()
        img = cv2.filter2D(img, -1, kernel)
    img = img + _bank_crop(rng, n, n, 3) * rng.uniform(0.5, 8)
    out = np.clip(img, 0, 255).astype(np.uint8)
    gamma = rng.uniform(0.7, 1.4)
    if abs(gamma - 1) > 0.05:
        lut = (np.linspace(0, 1, 256) ** gamma * 255).round().astype(np.uint8)
        out = cv2.LUT(out, lut)
    if rng.random() < 0.25:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return out


def render(seed: int, index: int, size: int = DEFAULT_SIZE, with_defects: bool = True) -> CorpusImage:
    """One image of the corpus; depends only on (seed, index, size).

    Surface, defects and camera draw from three separate random streams, so ``with_defects=False``
    gives the same picture without its defects (the defect-free twin)."""
    rng = np.random.default_rng([seed, index, 0])
    surface = SURFACES[int(rng.choice(len(SURFACES), p=_SURFACE_WEIGHTS))]
    img = _SURFACE_FUNCS[surface](rng, size).astype(np.float32)
    part = _part_edge(rng, size)
    if part is not None:
        bg = rng.uniform(10, 90) + _fractal(rng, size, 6, 2, 0.5)[..., None] * 10
        m = part.astype(np.float32)[..., None] / 255
        img = img * m + bg * (1 - m)
    boxes: list[CorpusBox] = []
    if with_defects:
        boxes = _add_defects(img, part, np.random.default_rng([seed, index, 1]), size)
    cam = np.random.default_rng([seed, index, 2])
    out = _camera(img, cam, size)
    quality = int(cam.integers(45, 96))
    return CorpusImage(out, surface, tuple(boxes), quality)


def _add_defects(img: np.ndarray, part: np.ndarray | None, rng: np.random.Generator, size: int) -> list[CorpusBox]:
    taken = np.zeros((size, size), np.uint8)
    wanted = 0 if rng.random() < 0.08 else int(min(6, rng.geometric(0.45)))
    if wanted and rng.random() < 0.3:  # several defects of one kind, as real images often have
        kinds = [int(rng.integers(len(CLASSES)))] * wanted
    else:
        kinds = [int(rng.integers(len(CLASSES))) for _ in range(wanted)]
    boxes: list[CorpusBox] = []
    for cls in kinds:
        for _ in range(4):
            box = _place(img, taken, part, cls, rng, size)
            if box is not None:
                boxes.append(box)
                break
    return boxes


# ---------------------------------------------------------------------------------------------
# writing a data set

def _stem(seed: int, index: int) -> str:
    return f"s{seed}_{index:06d}"


def _label_lines(boxes: tuple[CorpusBox, ...], size: int) -> str:
    return "".join(f"{b.cls} {(b.x1 + b.x2) / 2 / size:.6f} {(b.y1 + b.y2) / 2 / size:.6f} "
                   f"{(b.x2 - b.x1) / size:.6f} {(b.y2 - b.y1) / size:.6f}\n" for b in boxes)


def write_range(out: str, seed: int, start: int, stop: int, size: int = DEFAULT_SIZE) -> list[dict]:
    """Render and write images start..stop-1 into out/images and out/labels (a worker's share)."""
    cv2.setNumThreads(1)
    root = Path(out)
    meta = []
    for i in range(start, stop):
        im = render(seed, i, size)
        stem = _stem(seed, i)
        ok, buf = cv2.imencode(".jpg", im.image, [cv2.IMWRITE_JPEG_QUALITY, im.jpeg_quality])
        if not ok:
            raise OSError(f"could not encode {stem}.jpg")
        (root / "images" / f"{stem}.jpg").write_bytes(buf.tobytes())
        (root / "labels" / f"{stem}.txt").write_text(_label_lines(im.boxes, size))
        meta.append({"stem": stem, "surface": im.surface, "classes": [b.cls for b in im.boxes]})
    return meta


def write_corpus(out: Path | str, count: int, seed: int = 0, *, size: int = DEFAULT_SIZE, val_every: int = 20,
                 workers: int | None = None, time_budget_s: float | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Write up to ``count`` images as a YOLO folder (images/, labels/, classes.txt, splits/) plus an
    Ultralytics ``data.yaml``; every ``val_every``-th image goes to the validation split.

    With ``time_budget_s``, work not started when the budget runs out is dropped: the corpus holds
    the chunks finished by then (its ``count`` says how many)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if size < 64:
        raise ValueError(f"size must be at least 64 px, got {size}")
    started = time.monotonic()
    root = Path(out)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers or os.cpu_count() or 1, count))
    chunk = max(1, min(250, math.ceil(count / (workers * 4))))
    ranges = [(a, min(count, a + chunk)) for a in range(0, count, chunk)]

    def over() -> bool:  # the first chunk is always written, so a corpus is never empty
        return bool(meta) and time_budget_s is not None and time.monotonic() - started > time_budget_s

    meta: list[dict] = []
    if workers == 1:
        for a, b in ranges:
            if over():
                break
            meta += write_range(str(root), seed, a, b, size)
            if progress:
                progress(len(meta), count)
    else:
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(write_range, str(root), seed, a, b, size) for a, b in ranges]
            for f in as_completed(futures):
                if f.cancelled():
                    continue
                meta += f.result()
                if progress:
                    progress(len(meta), count)
                if over():
                    for g in futures:
                        g.cancel()
    meta.sort(key=lambda m: m["stem"])
    info = _write_index(root, meta, seed, size, val_every)
    info["seconds"] = round(time.monotonic() - started, 1)
    return info


def _write_index(root: Path, meta: list[dict], seed: int, size: int, val_every: int) -> dict:
    stems = [m["stem"] for m in meta]
    val = [s for i, s in enumerate(stems) if val_every > 0 and i % val_every == val_every - 1]
    if not val and val_every > 0 and len(stems) > 1:
        val = stems[-1:]  # an empty split file is an error to the data set reader
    vs = set(val)
    train = [s for s in stems if s not in vs]
    (root / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    (root / "splits").mkdir(exist_ok=True)
    (root / "splits" / "train.txt").write_text("".join(s + "\n" for s in train))
    if val:
        (root / "splits" / "val.txt").write_text("".join(s + "\n" for s in val))
    # Ultralytics reads image lists; labels are found by swapping images/ for labels/
    (root / "yolo_train.txt").write_text("".join(f"./images/{s}.jpg\n" for s in train))
    (root / "yolo_val.txt").write_text("".join(f"./images/{s}.jpg\n" for s in (val or train[:1])))
    names = "".join(f"  {i}: {json.dumps(c)}\n" for i, c in enumerate(CLASSES))
    (root / "data.yaml").write_text(f"path: {json.dumps(str(root.resolve()))}\ntrain: yolo_train.txt\n"
                                    f"val: yolo_val.txt\nnames:\n{names}")
    per_class = [0] * len(CLASSES)
    per_surface = dict.fromkeys(SURFACES, 0)
    for m in meta:
        per_surface[m["surface"]] += 1
        for c in m["classes"]:
            per_class[c] += 1
    info = {"generator": "inspector corpus", "seed": seed, "count": len(meta), "size": size,
            "classes": list(CLASSES), "boxes_per_class": dict(zip(CLASSES, per_class, strict=True)),
            "images_per_surface": per_surface, "train": len(train), "val": len(val)}
    (root / "corpus.json").write_text(json.dumps(info, indent=1))
    return info


def contact_sheet(seed: int, count: int, size: int = DEFAULT_SIZE, columns: int = 6,
                  draw_boxes: bool = True) -> np.ndarray:
    """Images 0..count-1 of a corpus in a grid, with their boxes and class names drawn: for a look."""
    tiles = []
    for i in range(count):
        im = render(seed, i, size)
        tile = im.image.copy()
        if draw_boxes:
            for b in im.boxes:
                cv2.rectangle(tile, (b.x1, b.y1), (b.x2 - 1, b.y2 - 1), (0, 0, 255), 1)
                cv2.putText(tile, CLASSES[b.cls][:9], (b.x1, max(10, b.y1 - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                            (0, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(tile, im.surface, (3, size - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[r:r + columns]) for r in range(0, len(tiles), columns)]
    return np.vstack(rows)
