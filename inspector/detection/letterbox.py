"""Letterboxing exactly as Ultralytics' ``LetterBox`` (auto=False, centred, pad 114, INTER_LINEAR).

The geometry of each input size is computed once and the padded canvas is reused: the padding is
written only when the input size changes, and the resize writes straight into the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Geometry:
    """Where an HxW image lands in the square model input, and how to map boxes back."""

    height: int
    width: int
    new_w: int
    new_h: int
    top: int
    left: int
    gain_x: float  # new_w / width, as Ultralytics' scale_boxes computes it
    gain_y: float


def geometry(height: int, width: int, size: tuple[int, int]) -> Geometry:
    """Ultralytics' LetterBox.get_params and scale_boxes arithmetic for a (h, w) target ``size``."""
    th, tw = size
    r = min(th / height, tw / width)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    dw, dh = (tw - new_w) / 2, (th - new_h) / 2
    top, left = round(dh - 0.1), round(dw - 0.1)
    return Geometry(height, width, new_w, new_h, top, left, new_w / width, new_h / height)


class Letterbox:
    """Resizes BGR uint8 images into a reused ``size`` canvas; ``__call__`` returns the canvas.

    ``out`` is an (h, w, 3) uint8 buffer to use as the canvas (a runtime's input tensor, say).
    """

    def __init__(self, size: tuple[int, int], out: np.ndarray | None = None) -> None:
        self.size = size
        if out is None:
            out = np.empty((size[0], size[1], 3), np.uint8)
        if out.shape != (size[0], size[1], 3) or out.dtype != np.uint8:
            raise ValueError(f"expected a {size[0]}x{size[1]}x3 uint8 canvas, got {out.dtype} {out.shape}")
        out[...] = PAD_VALUE
        self.canvas = out
        self._geo: Geometry | None = None
        self._roi: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, Geometry]:
        h, w = image.shape[:2]
        geo = self._geo
        if geo is None or geo.height != h or geo.width != w:
            geo = geometry(h, w, self.size)
            self.canvas[...] = PAD_VALUE
            self._roi = self.canvas[geo.top:geo.top + geo.new_h, geo.left:geo.left + geo.new_w]
            self._geo = geo
        roi = self._roi
        assert roi is not None
        if geo.new_w == w and geo.new_h == h:
            roi[...] = image
        else:
            out = cv2.resize(image, (geo.new_w, geo.new_h), dst=roi, interpolation=cv2.INTER_LINEAR)
            if out is not roi and out.ctypes.data != roi.ctypes.data:  # OpenCV allocated: copy it in
                roi[...] = out
        return self.canvas, geo
