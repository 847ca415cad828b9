"""Rendered parts, for tests and demos without a camera."""

from __future__ import annotations

import time

from inspector.core.types import Frame


class SyntheticSource:
    """Rendered parts, for tests and demos without a camera."""

    live = False

    def __init__(self, count: int, seed: int = 0) -> None:
        from inspector.sources.synth import generate

        self.name = f"synthetic(seed={seed})"
        self._it = generate(count, seed)
        self._seq = 0

    def read(self) -> Frame | None:
        try:
            stem, part = next(self._it)
        except StopIteration:
            return None
        seq = self._seq
        self._seq += 1
        return Frame(part.image, seq, self.name, time.time(), stem)

    def close(self) -> None:
        pass
