"""Writing report files whole or not at all: a temporary name beside the target, renamed at the end.

A cancel (``threading.Event``), Ctrl-C or an error removes the temporary files, so a half-written
report never lies where the finished one would.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from inspector.core.errors import InspectorError

Progress = Callable[[int, int], None]  # (done, total)


class Cancelled(InspectorError):
    """The user cancelled a report or an export; nothing was written."""


def check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Cancelled: no file was written.")


def _tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.part")


@contextlib.contextmanager
def atomic_files(*targets: Path) -> Iterator[tuple[Path, ...]]:
    """Yield temporary paths for ``targets``; on success each is renamed onto its target, else removed."""
    finals = [Path(t) for t in targets]
    for t in finals:
        if t.is_dir():
            raise InspectorError(f"{t} is a folder; name a file for the report.")
        try:
            t.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InspectorError(f"Cannot create the folder {t.parent} ({e.strerror or e}).") from e
    tmps = tuple(_tmp_name(t) for t in finals)
    try:
        yield tmps
        for tmp in tmps:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        for tmp, final in zip(tmps, finals, strict=True):
            os.replace(tmp, final)
    except BaseException:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
