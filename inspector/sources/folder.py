"""A folder of picture files, each one part."""

from __future__ import annotations

import time
from pathlib import Path

from inspector.core.errors import SourceError
from inspector.core.types import Frame
from inspector.sources.images import IMAGE_SUFFIXES, read_scaled


class FolderSource:
    """Every image file of a folder, sorted by name; each image is one part."""

    live = False

    def __init__(self, folder: Path | str, loop: bool = False, target_hw: tuple[int, int] | None = None) -> None:
        self.folder = Path(folder)
        # the model's input (h, w): a larger JPEG is decoded at the scale it needs (``read_scaled``)
        self.target_hw = target_hw
        if not self.folder.is_dir():
            raise SourceError(f"image folder not found: {self.folder}")
        # every entry named like an image, files or not: a folder, a broken link or a FIFO is a part
        # that could not be inspected, recorded with its reason
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no image files in {self.folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
        self.name = str(self.folder)
        self.loop = loop
        self._i = 0

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> Frame | None:
        if self._i >= len(self.files):
            if not self.loop:
                return None
        path = self.files[self._i % len(self.files)]
        seq = self._i
        self._i += 1
        img, err, jpeg, full = read_scaled(path, self.target_hw)
        # the full path, so a QC engineer can always find the part's original picture (a broken
        # link is named as it is, not as its missing target)
        where = path.resolve() if path.exists() else path.absolute()
        return Frame(img, seq, self.name, time.time(), where.as_posix(), err, jpeg, full_size=full)

    def decode_for(self, target_hw: tuple[int, int]) -> None:
        """Decode JPEGs for a model whose input is ``target_hw`` (h, w) from the next read on."""
        self.target_hw = target_hw

    def close(self) -> None:
        pass
