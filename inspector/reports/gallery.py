"""Pictures of the worst failures: the stored JPEG with the model's boxes drawn on a copy, scaled down."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from inspector.core.palette import class_colour_bgr
from inspector.reports.data import Box, Failure

log = logging.getLogger(__name__)

def colour(box: Box) -> tuple[int, int, int]:
    """The box's class colour (BGR), the window's own (one palette: inspector/palette.py)."""
    return class_colour_bgr(box.cls, box.label)


def load_image(root: Path | None, rel: str | None) -> np.ndarray | None:
    """The stored image (BGR), or None when it is not kept or cannot be read."""
    if root is None or not rel:
        return None
    import cv2

    path = Path(root) / rel
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError:
        log.info("report: image %s not found", path)
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        log.info("report: image %s cannot be read", path)
    return img


def annotated_jpeg(failure: Failure, root: Path | None, max_side: int = 480, quality: int = 82) -> bytes | None:
    """JPEG bytes of the failure's image with its boxes and labels drawn; None without an image."""
    import cv2

    img = load_image(root, failure.image_path)
    if img is None:
        return None
    img = img.copy()
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    thick = max(2, round(max(img.shape[:2]) / 200))
    font_scale = max(0.4, max(img.shape[:2]) / 900)
    for b in failure.boxes:
        c = colour(b)
        p1 = (round(b.x1 * scale), round(b.y1 * scale))
        p2 = (round(b.x2 * scale), round(b.y2 * scale))
        cv2.rectangle(img, p1, p2, c, thick)
        tag = f"{b.label} {b.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = p1[1] - 4 if p1[1] - th - 6 > 0 else p2[1] + th + 4
        cv2.rectangle(img, (p1[0], ty - th - 3), (p1[0] + tw + 4, ty + base - 1), c, -1)
        cv2.putText(img, tag, (p1[0] + 2, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else None
