"""Decoding with the decoder's complaints heard: a picture that decodes only in part is not a picture.

OpenCV's decoders (libjpeg, libpng, libtiff, FFmpeg) report a damaged input on the process's
standard error and often still return a picture: libjpeg fills a JPEG cut short and re-terminated
with grey, FFmpeg conceals a damaged video frame by smearing its neighbours. ``native_messages``
captures what they write around one call, so that the caller can refuse the result; a structural
check of the file (end marker, declared size) runs first, independent of the OpenCV version.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from inspector.sources.structure import format_problem

log = logging.getLogger(__name__)

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
MAX_PIXELS = 80_000_000  # larger images are refused as not inspectable rather than exhausting memory

# lines on stderr that are not a decoder's: our own log lines and Qt's, written by other threads while
# a capture runs; they are passed on to the real stderr
_NOT_DECODER = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL): |^qt\.|^QT_|^Traceback|^  ")
# OpenCV's own log lines ("[ INFO:0@0.1] ...", "[ WARN:...]") that say nothing about the data
_OPENCV_INFO = re.compile(r"^\[ ?(INFO|DEBUG|VERBOSE)")


@dataclass
class Messages:
    """What native code wrote to stderr during one capture (decoder complaints only)."""

    lines: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.lines)

    @property
    def first(self) -> str:
        return tidy(self.lines[0]) if self.lines else ""


def tidy(line: str) -> str:
    """'[mpeg4 @ 0x55d0] ac-tex damaged at 3 7' -> 'mpeg4: ac-tex damaged at 3 7'."""
    line = re.sub(r"^\[([\w,]+) @ 0x[0-9a-f]+\] ", r"\1: ", line.strip())
    return re.sub(r"^\[ ?ERROR:\S+\] global \S+ ", "", line)[:160]


class _StderrCapture:
    """fd 2 pointed at a temporary file for the length of one call; one capture at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._file = None
        self.broken = False

    def _scratch(self):
        if self._file is None:
            self._file = tempfile.TemporaryFile()
        return self._file

    @contextmanager
    def capture(self) -> Iterator[Messages]:
        msgs = Messages()
        with self.lock:
            if self.broken:
                yield msgs
                return
            try:
                fd = self._scratch().fileno()
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                saved = os.dup(2)
            except OSError:  # no stderr to redirect (a windowed process): decode without hearing
                self.broken = True
                log.warning("decoder messages cannot be captured here: damaged pictures are caught by "
                            "structure checks only")
                yield msgs
                return
            os.dup2(fd, 2)
            try:
                yield msgs
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.lseek(fd, 0, os.SEEK_SET)
                text = os.read(fd, 1 << 16).decode("utf-8", "replace")
                passed_on = []
                for line in text.splitlines():
                    if not line.strip() or _OPENCV_INFO.match(line):
                        continue
                    (passed_on if _NOT_DECODER.match(line) else msgs.lines).append(line)
                if passed_on:
                    os.write(2, ("\n".join(passed_on) + "\n").encode())


_capture = _StderrCapture()


@contextmanager
def native_messages() -> Iterator[Messages]:
    """Collect what a decoder writes to stderr during the ``with`` block (serialised process-wide)."""
    with _capture.capture() as msgs:
        yield msgs


def structure_problem(data: bytes) -> str | None:
    """Why an image file's structure says it is incomplete, or None. Cheap: reads headers and the end."""
    if data[:3] == JPEG_MAGIC:
        # an end-of-image marker, possibly followed by padding or a trailer some cameras append
        if data.rfind(b"\xff\xd9", 2) < 0:
            return "JPEG without its end-of-image marker (cut short)"
        return None
    if data[:8] == PNG_MAGIC:
        if data.rfind(PNG_END, 8) < 0:
            return "PNG without its IEND chunk (cut short)"
        return format_problem(data)  # every chunk's CRC
    if data[:2] == b"BM" and len(data) >= 14:
        declared = struct.unpack_from("<I", data, 2)[0]
        if declared > len(data):
            return f"BMP of {len(data)} bytes, its header declares {declared}"
    return format_problem(data)  # WebP and TIFF structure (``inspector.sources.structure``)


# libjpeg decodes at 1/2, 1/4 or 1/8 of the size in its inverse DCT: far less work than decoding every
# pixel and resizing, and an area-averaged (not aliased) picture
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}
# start-of-frame markers (baseline, extended, progressive, lossless, arithmetic variants); not C4/C8/CC
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, without decoding; None when there is none to read."""
    if data[:3] != JPEG_MAGIC:
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = struct.unpack_from(">H", data, i + 2)[0]
        if marker in _SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack_from(">HH", data, i + 5)
            return (w, h) if w and h else None
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def dct_reduction(width: int, height: int, target_hw: tuple[int, int] | None) -> int:
    """The largest libjpeg scale-down (1, 2, 4 or 8) that still leaves the picture at least as large as the
    model's letterboxed input (``target_hw``, (h, w)): the model never sees an upscaled picture."""
    if not target_hw or width <= 0 or height <= 0:
        return 1
    th, tw = target_hw
    r = min(th / height, tw / width)  # the letterbox's gain on the full picture
    best = 1
    for s in (2, 4, 8):
        if s * r <= 1.0:  # the picture at 1/s (w/s x h/s) is no smaller than the letterboxed one (w*r x h*r)
            best = s
    return best


def decode_bytes(raw: bytes, name: str, reduce: int = 1) -> tuple[np.ndarray | None, str | None]:
    """Decode an encoded image; (image, None) or (None, reason). A partial decode is refused.

    ``reduce`` (2, 4, 8) decodes a JPEG at that fraction of its size (libjpeg's DCT scaling); other formats
    are always decoded at full size. The same structure check and decoder messages apply either way."""
    problem = structure_problem(raw)
    if problem:
        return None, f"image incomplete: {name}: {problem}"
    flag = _REDUCED.get(reduce, cv2.IMREAD_COLOR) if raw[:3] == JPEG_MAGIC else cv2.IMREAD_COLOR
    try:  # one decode: OpenCV checks the header's size against OPENCV_IO_MAX_IMAGE_PIXELS first
        with native_messages() as msgs:
            img = cv2.imdecode(np.frombuffer(raw, np.uint8), flag)
    except cv2.error:  # OpenCV refuses absurd sizes and some malformed headers with an exception
        return None, (f"cannot decode {name}: image too large (over {MAX_PIXELS // 1_000_000} megapixels) "
                      "or malformed")
    if msgs:
        log.info("decoder on %s: %s", name, " | ".join(msgs.lines))
        if img is not None:
            return None, f"image incomplete: {name}: the decoder reported {msgs.first!r}"
    if img is None:
        why = f" ({msgs.first})" if msgs else ""
        return None, f"cannot decode {name}: not an image or corrupt{why}"
    return img, None
