"""Which reviews still stand. An undo is a new review record whose ``detail`` names the review it takes
back (``{"undoes": id}``): nothing is ever edited. The undone review and the undo itself then count
for nothing in the boxes as reviewed (false marks, drawn boxes); the final verdict needs no help, since
the undo's new verdict is the undone review's old one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

UNDOES = "undoes"


class ReviewLike(Protocol):
    @property
    def id(self) -> int | None: ...

    @property
    def detail(self) -> Mapping[str, Any]: ...


R = TypeVar("R", bound=ReviewLike)


def undone_ids(reviews: Iterable[ReviewLike]) -> set[int]:
    """The ids of the reviews taken back by an undo."""
    out = set()
    for r in reviews:
        v = (r.detail or {}).get(UNDOES)
        if isinstance(v, int):
            out.add(v)
    return out


def standing(reviews: Iterable[R]) -> list[R]:
    """The reviews that still count, oldest first: neither undone nor undos themselves."""
    reviews = list(reviews)
    gone = undone_ids(reviews)
    return [r for r in reviews if r.id not in gone and UNDOES not in (r.detail or {})]
