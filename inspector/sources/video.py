"""A video file, each frame one part; what the decoder reports about a frame stays with that frame."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2

from inspector.core.errors import SourceError, SourceIncomplete
from inspector.core.types import Frame
from inspector.sources.decoding import native_messages, tidy

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".wmv", ".mpg", ".mpeg", ".webm"}
EXACT_COUNT_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi"}  # containers that index every frame
TS_PACKET = {".ts": 188, ".mts": 192, ".m2ts": 192}  # MPEG transport streams: a whole file is whole packets


class VideoSource:
    """Every frame of a video file; each frame is one part.

    The decoder runs on the reading thread (one decoder thread), so what it reports on stderr belongs
    to the frame just read: a frame it reports damaged is NOT_INSPECTED, and so is every frame after it
    until the next keyframe (they are predicted from the damaged one). A file that ends before the
    frames its container declares raises ``SourceIncomplete`` ("read N of M")."""

    live = False
    stream = True  # decoded video: a picture the decoder smeared is caught (Pipeline)

    def __init__(self, path: Path | str, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self.name = str(self.path)
        self.loop = loop
        with native_messages() as msgs:
            self._cap = _open_video(self.path)
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video {self.path}: unreadable or unsupported format.")
        self._container_notes = [tidy(x) for x in msgs.lines]
        if msgs:
            log.warning("video %s: the demuxer reported %s", self.path.name, " | ".join(self._container_notes))
        self.declared = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        # MP4/MOV/AVI index every frame; elsewhere (MKV, WebM, TS) the count is duration x rate, which a
        # variable frame rate makes too high: a shortfall there counts only when the file also complained
        self._exact_count = self.path.suffix.lower() in EXACT_COUNT_SUFFIXES
        self._complained = bool(msgs)
        self._seq = 0
        self._in_file = 0
        self._damaged = False  # a frame since the last keyframe was damaged: its successors are too

    def read(self) -> Frame | None:
        with native_messages() as msgs:
            ok, img = self._cap.read()
        if not ok:
            self._check_complete(msgs.first)
            if self.loop and self._in_file > 0:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._in_file, self._damaged = 0, False
                with native_messages() as msgs:
                    ok, img = self._cap.read()
            if not ok:
                return None
        seq = self._seq
        self._seq += 1
        self._in_file += 1
        return Frame(img, seq, self.name, time.time(), f"frame {seq}", self._damage(msgs))

    def _damage(self, msgs) -> str | None:
        """Why this frame cannot be judged although it decoded, or None."""
        if msgs:
            log.warning("video %s frame %d: the decoder reported %s", self.path.name, self._in_file - 1,
                        " | ".join(msgs.lines))
            self._damaged = self._complained = True
            return f"video frame damaged: the decoder reported {msgs.first!r}"
        if self._damaged and self._frame_type() != "I":
            return "video frame predicted from a damaged frame (no keyframe since)"
        self._damaged = False
        return None

    def _frame_type(self) -> str:
        prop = getattr(cv2, "CAP_PROP_FRAME_TYPE", None)  # OpenCV >= 4.9; without it: never a keyframe
        code = int(self._cap.get(prop)) if prop is not None else 0
        return chr(code) if 0 < code < 128 else "?"

    def _check_complete(self, last_message: str) -> None:
        cut = _cut_packet(self.path)
        if cut:
            raise SourceIncomplete(f"video {self.path.name} ended early: read {self._in_file} frames; {cut}.")
        short = self.declared and self._in_file < self.declared
        if short and (self._exact_count or self._complained or last_message):
            notes = [*self._container_notes, last_message] if last_message else self._container_notes
            why = f" ({'; '.join(notes)})" if notes else ""
            raise SourceIncomplete(f"video {self.path.name} ended early: read {self._in_file} of the "
                                   f"{self.declared} frames its container declares; the file is damaged or "
                                   f"cut short{why}.")

    def close(self) -> None:
        self._cap.release()


def _cut_packet(path: Path) -> str | None:
    """Why an MPEG transport stream file is cut short (it ends inside a packet), or None. Its demuxer ends such a
    file silently, and its frame count is only an estimate from the duration, which shrinks with the cut."""
    size = TS_PACKET.get(path.suffix.lower())
    if size is None:
        return None
    try:
        extra = path.stat().st_size % size
    except OSError:
        return None
    if not extra:
        return None
    return f"the file ends {extra} bytes into a {size}-byte transport packet, so it was cut short"


def _open_video(path: Path) -> cv2.VideoCapture:
    """FFmpeg with one decoder thread (errors reported with their frame), else any backend."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if cap.isOpened():
        return cap
    cap.release()
    return cv2.VideoCapture(str(path))
