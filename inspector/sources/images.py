"""Reading and decoding picture files: a bad file is a reason, never an exception nor a read that blocks."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from inspector.core.names import shown
from inspector.sources.decoding import JPEG_MAGIC, dct_reduction, decode_bytes, jpeg_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def decode_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """Read an image file; return (image, None) or (None, reason). Never raises for bad content."""
    img, err, _ = read_image(path)
    return img, err


def read_image(path: Path) -> tuple[np.ndarray | None, str | None, bytes | None]:
    """``decode_image``, plus the file's bytes when the file is a JPEG (so that it can be stored as is).

    Only a regular file is opened: a folder, a broken link or a FIFO named like an image is a reason,
    never a read that blocks."""
    img, err, jpeg, _ = read_scaled(path, None)
    return img, err, jpeg


def read_scaled(path: Path, target_hw: tuple[int, int] | None) -> tuple[
        np.ndarray | None, str | None, bytes | None, tuple[int, int] | None]:
    """``read_image`` for a model whose input is ``target_hw`` (h, w): a JPEG larger than it needs is decoded
    at 1/2, 1/4 or 1/8 (libjpeg's DCT scaling), never below the model's input; its file bytes are kept as
    they are. The fourth value is the picture's full (width, height) when the image is such a reduced decode."""
    special = _not_a_file(path)
    if special:
        return None, special, None, None
    name = shown(path.name)  # a name of any bytes, readable (``inspector.core.names``)
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, f"cannot read {name}: {e.strerror or e}", None, None
    if not raw:
        return None, f"empty file {name}", None, None
    size = jpeg_size(raw) if target_hw else None
    reduce = dct_reduction(size[0], size[1], target_hw) if size else 1
    img, err = decode_bytes(raw, name, reduce)
    if img is None or raw[:3] != JPEG_MAGIC:
        return img, err, None, None
    full = None
    if reduce > 1 and size is not None:
        w, h = size  # as the frame header says; an EXIF orientation of 90/270 degrees turns the decoded picture
        full = (w, h) if img.shape[1] == -(-w // reduce) else (h, w)
    return img, err, raw, full


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file that can be read (without opening it), or None."""
    name = shown(path.name)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"{name} is a broken link or was removed" if path.is_symlink() else f"{name} was removed"
    except OSError as e:
        return f"cannot read {name}: {e.strerror or e}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{name} is a folder, not an image file"
    if stat.S_ISFIFO(mode):
        return f"{name} is a pipe (FIFO), not an image file"
    return f"{name} is not a regular file"
