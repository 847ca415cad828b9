"""Which source a run reads: chosen by ``[camera] type``; for ``"opencv"`` (the default) from what the user
types: a folder, a video file, a camera index or a stream URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inspector.core.config import CameraConfig
from inspector.core.errors import SourceError
from inspector.sources.folder import FolderSource
from inspector.sources.images import IMAGE_SUFFIXES
from inspector.sources.live import CameraState, LiveSource, opencv_opener
from inspector.sources.video import VideoSource


def open_source(spec: str, cfg: CameraConfig | None = None, loop: bool = False,
                on_state: Callable[[CameraState], None] | None = None):
    """A source from what a user types: a folder, a video file, a camera index or a URL."""
    cfg = cfg or CameraConfig()
    if spec.isdigit():
        return LiveSource(f"camera {spec}", opencv_opener(int(spec), cfg), cfg, on_state)
    if "://" in spec:
        if not spec.lower().startswith(("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")):
            raise SourceError(f"unsupported stream URL {spec!r}: use rtsp://, http:// or https://.")
        return LiveSource(spec, opencv_opener(spec, cfg), cfg, on_state)
    p = Path(spec)
    if p.is_dir():
        return FolderSource(p, loop)
    if p.is_file():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{p} is a single image: give its folder as --source.")
        return VideoSource(p, loop)
    raise SourceError(f"source not found: {spec} (give an image folder, a video file, a camera index or a URL).")
