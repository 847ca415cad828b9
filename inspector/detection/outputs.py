"""Where a command may write a model: never into a trusted model's folder, never over a file unless asked.

A trusted model (its SHA-256 in a shipped card or the registry) is what the station runs; a command
that overwrote it, or the card beside it, would leave the station refusing its own model.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from inspector.core.errors import ModelError
from inspector.detection.registry import MODEL_SUFFIXES, sha256_file

_MODEL_FILES = (*MODEL_SUFFIXES, ".bin")  # .bin: an OpenVINO IR's weights


def trusted_files(folder: Path, trusted: Collection[str]) -> list[Path]:
    """The model files directly in ``folder`` whose SHA-256 is trusted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [f for f in sorted(folder.iterdir())
            if f.is_file() and f.suffix.lower() in _MODEL_FILES and sha256_file(f) in trusted]


def refuse_trusted_folder(folder: Path, trusted: Collection[str]) -> None:
    """Raise ModelError if ``folder`` holds a trusted model: nothing may be written there, even with --force."""
    held = trusted_files(folder, trusted)
    if held:
        raise ModelError(f"refusing to write into {folder}: it holds the trusted model {held[0].name}, which the "
                         "station runs. Give another --out folder (even --force never replaces a trusted model).")


def check_new_files(folder: Path, names: Iterable[str], trusted: Collection[str], force: bool) -> None:
    """Refuse a trusted folder, and any existing file among ``names`` unless ``force``."""
    refuse_trusted_folder(folder, trusted)
    existing = [Path(folder) / n for n in names if (Path(folder) / n).exists()]
    if existing and not force:
        raise ModelError(f"{existing[0]} already exists; give --force to replace it, or another --out folder.")
    for f in existing:
        if not f.is_file():
            raise ModelError(f"{f} is in the way and is not a file; give another --out folder.")
