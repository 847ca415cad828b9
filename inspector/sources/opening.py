"""Which source a run reads: chosen by ``[camera] type``; for ``"opencv"`` (the default) from what the user
types: a folder, a video file, a camera index or a stream URL; for ``"pylon"`` and ``"genicam"`` the camera
``[camera]`` names (its SDK imported only then, by its own module)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inspector.core.config import CameraConfig, CameraType
from inspector.core.errors import CameraError, SourceError
from inspector.core.names import without_password
from inspector.sources.folder import FolderSource
from inspector.sources.images import IMAGE_SUFFIXES
from inspector.sources.live import CameraState, LiveSource, opencv_opener
from inspector.sources.video import VideoSource

MAX_CAMERA_INDEX = 9999


def open_camera(cfg: CameraConfig, on_state: Callable[[CameraState], None] | None = None):
    """The GenICam camera ``[camera]`` names (type ``pylon`` or ``genicam``), opened and acquiring."""
    from inspector.sources.camera import GenICamSource

    if cfg.type == CameraType.PYLON:
        from inspector.sources import pylon

        return GenICamSource(pylon.opener(cfg), cfg, on_state)
    if cfg.type == CameraType.GENICAM:
        from inspector.sources import genicam

        return GenICamSource(genicam.opener(cfg), cfg, on_state)
    raise CameraError(f"[camera] type = {cfg.type.value!r} is not a GenICam camera.")


def discover(cti: tuple[Path, ...] = ()) -> tuple[list, list[str]]:
    """The cameras pylon and the GenTL producers find, and a sentence for each SDK that could not look."""
    from inspector.sources import genicam, pylon

    found, notes = [], []
    for name, sdk, look in (("pylon", pylon, pylon.list_cameras), ("genicam", genicam,
                                                                   lambda: genicam.list_cameras(cti))):
        missing = sdk.available()
        if missing:
            notes.append(f"{name}: {missing}")
            continue
        try:
            found += look()
        except CameraError as e:
            notes.append(f"{name}: {e}")
    return found, notes


def open_source(spec: str, cfg: CameraConfig | None = None, loop: bool = False,
                on_state: Callable[[CameraState], None] | None = None):
    """A source from what a user types: a folder, a video file, a camera index or a URL; or the GenICam camera
    of ``[camera]`` when its type is ``pylon`` or ``genicam`` (``spec`` is not used then)."""
    cfg = cfg or CameraConfig()
    if cfg.type != CameraType.OPENCV:
        return open_camera(cfg, on_state)
    if spec.isdigit():
        if len(spec) > 4:  # OpenCV takes an int; an index this large is no camera (and overflows it)
            raise SourceError(f"camera index {spec[:24]}{'...' * (len(spec) > 24)} is too large: give the index of "
                              f"a connected camera (0 for the first, up to {MAX_CAMERA_INDEX}).")
        return LiveSource(f"camera {spec}", opencv_opener(int(spec), cfg), cfg, on_state)
    if "://" in spec:
        shown_url = without_password(spec)  # the password goes to the camera, never to a message or the log
        if not spec.lower().startswith(("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")):
            raise SourceError(f"unsupported stream URL {shown_url!r}: use rtsp://, http:// or https://.")
        return LiveSource(shown_url, opencv_opener(spec, cfg), cfg, on_state)
    p = Path(spec)
    if p.is_dir():
        return FolderSource(p, loop)
    if p.is_file():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{p} is a single image: give its folder as --source.")
        return VideoSource(p, loop)
    raise SourceError(f"source not found: {spec} (give an image folder, a video file, a camera index or a URL).")
