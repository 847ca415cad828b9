"""An anomaly model's heat map as stored and as drawn: 8 bits beside the picture, a coloured overlay on screen.

The map a model gives is float in [0, 1] (0.5 at its threshold), smaller than the picture. It is stored as an
8-bit grey PNG named after the picture (``0000012_fail.jpg`` -> ``0000012_fail.heat.png``, same folder), and
drawn as a colour map whose transparency grows as the score falls, so good areas show the part itself.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import cv2
import numpy as np

HEAT_SUFFIX = ".heat.png"
# below this score (the map's scale: 0.5 at the threshold) a pixel stays clear; full colour from 2 x this
CLEAR_BELOW = 0.15


def heat_path(image_rel: str) -> str:
    """The heat map's path beside a stored picture's (relative, '/'-separated, as the record names pictures)."""
    p = PurePosixPath(image_rel)
    return str(p.with_name(p.stem + HEAT_SUFFIX))


def is_heat_path(rel: str) -> bool:
    return rel.endswith(HEAT_SUFFIX)


def picture_of(heat_rel: str) -> str:
    """The stored picture's path that a heat map's path belongs to (the inverse of ``heat_path`` for JPEGs)."""
    if not is_heat_path(heat_rel):
        raise ValueError(f"expected a path ending in {HEAT_SUFFIX}, got {heat_rel!r}")
    return heat_rel[: -len(HEAT_SUFFIX)] + ".jpg"


def to_8bit(heat: np.ndarray) -> np.ndarray:
    """The map as uint8 (0..255 for 0..1), 2-D."""
    a = np.asarray(heat, np.float32)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected a non-empty 2-D heat map, got shape {getattr(a, 'shape', None)}")
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def encode_png(heat: np.ndarray) -> bytes:
    """The 8-bit PNG of a heat map (float in [0, 1] or already uint8)."""
    a = heat if heat.dtype == np.uint8 else to_8bit(heat)
    ok, buf = cv2.imencode(".png", a)
    if not ok:
        raise ValueError("could not encode the heat map as PNG")
    return buf.tobytes()


def overlay_bgra(heat: np.ndarray, width: int, height: int) -> np.ndarray:
    """A BGRA picture of ``width`` x ``height`` to draw over the part: the JET colour map of the heat, clear
    where the score is low, about 60 % opaque at and above the threshold."""
    a8 = heat if heat.dtype == np.uint8 else to_8bit(heat)
    a8 = cv2.resize(a8, (max(1, width), max(1, height)), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(a8, cv2.COLORMAP_JET)
    v = a8.astype(np.float32) / 255.0
    alpha = np.clip((v - CLEAR_BELOW) / CLEAR_BELOW, 0.0, 1.0) * 0.6
    out = np.empty((a8.shape[0], a8.shape[1], 4), np.uint8)
    out[..., :3] = colour
    out[..., 3] = np.rint(alpha * 255).astype(np.uint8)
    return out
