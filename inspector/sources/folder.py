"""A folder of picture files, each one part."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from inspector.core.errors import SourceError
from inspector.core.names import readable, shown
from inspector.core.types import Frame
from inspector.sources.decoding import ReadAhead
from inspector.sources.images import IMAGE_SUFFIXES, read_scaled

log = logging.getLogger(__name__)


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
        self.name = readable(str(self.folder))
        self.loop = loop
        self._i = 0
        self._ahead = ReadAhead()  # the next pictures decoded while this one is judged

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> Frame | None:
        if self._i >= len(self.files):
            if not self.loop:
                return None
        path = self.files[self._i % len(self.files)]
        seq = self._i
        self._i += 1
        # the full path, so a QC engineer can always find the part's original picture (a broken
        # link is named as it is, not as its missing target); a name of any bytes in its readable form
        where = shown(path.resolve() if path.exists() else path.absolute())
        try:
            n, target = len(self.files), self.target_hw
            img, err, jpeg, full = self._ahead.take(seq, lambda k: read_scaled(self.files[k % n], target), target,
                                                    None if self.loop else n)
        except Exception as e:  # noqa: BLE001 - one file never ends a folder run: it is a part not inspected
            log.warning("reading %s failed", where, exc_info=True)
            return Frame(None, seq, self.name, time.time(), where, f"cannot read {shown(path.name)}: {e}")
        return Frame(img, seq, self.name, time.time(), where, err, jpeg, full_size=full)

    def decode_for(self, target_hw: tuple[int, int]) -> None:
        """Decode JPEGs for a model whose input is ``target_hw`` (h, w) from the next read on."""
        self.target_hw = target_hw

    def close(self) -> None:
        self._ahead.close()
