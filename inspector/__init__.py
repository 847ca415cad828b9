"""Inspector: offline visual inspection for factory lines (the engine: no Qt, no database)."""

import os as _os

from inspector.core.privacy import guard_process as _guard_process

# First thing in every process that runs Inspector code, before any third-party import: nothing
# may call out (OpenVINO/NNCF telemetry, Ultralytics analytics, update checks and downloads).
_guard_process()

# OpenCV refuses images above this many pixels before allocating them (read once, at first decode):
# a small file that claims a gigantic picture is refused instead of exhausting memory.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(80_000_000))
