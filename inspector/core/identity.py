"""One name for a part on every screen and in every report: the run and the part's sequence in it."""

from __future__ import annotations

from pathlib import PurePath


def part_name(run_id: int | None, seq: int) -> str:
    """``run 3 part 412`` (``seq`` counts from 0, people from 1)."""
    return f"run {run_id} part {seq + 1}" if run_id is not None else f"part {seq + 1}"


def short_file(name: str, most: int = 40) -> str:
    """A frame's file name for a caption: the last path part, cut in the middle if still too long."""
    base = PurePath(name).name or name
    if len(base) <= most:
        return base
    half = (most - 1) // 2
    return f"{base[:half]}…{base[-(most - 1 - half):]}"
