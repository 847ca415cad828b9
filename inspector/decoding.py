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
        return None
    if data[:2] == b"BM" and len(data) >= 14:
        declared = struct.unpack_from("<I", data, 2)[0]
        if declared > len(data):
            return f"BMP of {len(data)} bytes, its header declares {declared}"
    return None


def decode_bytes(raw: bytes, name: str) -> tuple[np.ndarray | None, str | None]:
    """Decode an encoded image; (image, None) or (None, reason). A partial decode is refused."""
    problem = structure_problem(raw)
    if problem:
        return None, f"image incomplete: {name}: {problem}"
    try:  # one decode: OpenCV checks the header's size against OPENCV_IO_MAX_IMAGE_PIXELS first
        with native_messages() as msgs:
            img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
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
