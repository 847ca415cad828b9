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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

from inspector.sources.structure import format_problem

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    """fd 2 pointed at a temporary file while decodes run; several decodes at once where the platform allows.

    Each decode notes where the file ended when it began and when it finished: every line a decoder wrote
    during its call lies in that window. A concurrent decode may write into the same window, so a decode that
    heard anything is decoded again alone (``exclusive``): a damaged picture is always refused, a whole one
    never for its neighbour's damage. The shared file offset is never moved by reading (``os.pread``); where
    there is no ``os.pread`` every capture is exclusive, one at a time, as before.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held by an exclusive capture for its whole length
        self._cond = threading.Condition()
        self._file = None
        self._saved: int | None = None  # the real stderr while fd 2 points at the file
        self._active = 0
        self._solo = 0  # exclusive captures waiting or running
        self._passed = 0  # the file's bytes up to here have been looked at for lines to pass on
        self.broken = False
        self.concurrent = hasattr(os, "pread")

    def _scratch(self):
        if self._file is None:
            self._file = tempfile.TemporaryFile()
        return self._file

    def _open(self) -> bool:
        """Point fd 2 at the file (first active capture; under ``_cond``); False when there is no stderr."""
        if self.broken:
            return False
        if self._active == 0:
            try:
                fd = self._scratch().fileno()
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                saved = os.dup(2)
            except OSError:  # no stderr to redirect (a windowed process): decode without hearing
                self.broken = True
                log.warning("decoder messages cannot be captured here: damaged pictures are caught by "
                            "structure checks only")
                return False
            os.dup2(fd, 2)
            self._saved, self._passed = saved, 0
        self._active += 1
        return True

    def _end(self) -> int:
        return os.fstat(self._scratch().fileno()).st_size

    def _read(self, start: int, end: int) -> str:
        fd = self._scratch().fileno()
        if self.concurrent:
            data = os.pread(fd, end - start, start)
        else:  # alone: moving the offset is harmless, fd 2 is put back before anyone writes again
            os.lseek(fd, start, os.SEEK_SET)
            data = os.read(fd, end - start)
        return data.decode("utf-8", "replace")

    def _close(self, msgs: Messages, start: int) -> None:
        """Collect this capture's lines; pass other threads' lines on; the last one out restores fd 2."""
        end = self._end()
        for line in self._read(start, end).splitlines():
            if line.strip() and not _OPENCV_INFO.match(line) and not _NOT_DECODER.match(line):
                msgs.lines.append(line)
        self._active -= 1
        if end > self._passed:  # log lines of other threads written meanwhile go where they were meant to
            passed_on = [x for x in self._read(self._passed, end).splitlines() if _NOT_DECODER.match(x)]
            self._passed = end
            if passed_on and self._saved is not None:
                os.write(self._saved, ("\n".join(passed_on) + "\n").encode())
        if self._active == 0 and self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None
            if not self.concurrent:
                os.lseek(self._scratch().fileno(), 0, os.SEEK_SET)

    @contextmanager
    def capture(self, exclusive: bool = False) -> Iterator[Messages]:
        msgs = Messages()
        exclusive = exclusive or not self.concurrent
        with self.lock if exclusive else _nothing():
            with self._cond:
                if exclusive:  # the captures already running finish first, and no new one starts meanwhile
                    self._solo += 1
                    self._cond.wait_for(lambda: self._active == 0)
                else:
                    self._cond.wait_for(lambda: self._solo == 0)
                hearing = self._open()
                start = self._end() if hearing else 0
            try:
                yield msgs
            finally:
                with self._cond:
                    if hearing:
                        self._close(msgs, start)
                    if exclusive:
                        self._solo -= 1
                    self._cond.notify_all()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


_capture = _StderrCapture()


@contextmanager
def native_messages(exclusive: bool = True) -> Iterator[Messages]:
    """Collect what a decoder writes to stderr during the ``with`` block. ``exclusive`` (the default): no
    other capture runs meanwhile, so every line heard is this block's; ``False``: captures overlap, and a
    line heard may be another block's (``decode_bytes`` then decodes again alone before it refuses)."""
    with _capture.capture(exclusive) as msgs:
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
        # decodes run side by side (a folder read ahead, several cameras): what one heard may be its
        # neighbour's complaint, so a picture is refused only on what its decoder said alone
        with native_messages(exclusive=False) as msgs:
            img = cv2.imdecode(np.frombuffer(raw, np.uint8), flag)
        if msgs:
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


class ReadAhead:
    """The next few pictures of a finite source read and decoded in a small pool while the current one is
    judged: decoding a 5 MP JPEG then overlaps inference instead of preceding it. ``take(i, load, tag)``
    returns ``load(i)``, from the pool when it was started already with the same ``tag`` (the decode scale)."""

    def __init__(self, workers: int = 2, ahead: int = 2) -> None:
        self.workers, self.ahead = workers, ahead
        self._pool = None
        self._futures: dict[int, Any] = {}
        self._tag: object = None

    def take(self, i: int, load: Callable[[int], T], tag: object = None, end: int | None = None) -> T:
        if tag != self._tag:  # a new decode scale: what was read ahead is read again
            self._futures.clear()
            self._tag = tag
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="inspector-decode")
        for k in range(i, i + 1 + self.ahead):
            if k not in self._futures and (end is None or k < end):
                self._futures[k] = self._pool.submit(load, k)
        fut = self._futures.pop(i, None)
        return fut.result() if fut is not None else load(i)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()
