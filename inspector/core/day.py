"""The plant's day on every part: product, lot, work order and shift.

Shifts are spans of the station's clock (``inspector.core.clock``: the station's time zone) named in ``[shifts]``;
a part's shift label is ``2026-11-30/A``, and a shift that crosses midnight belongs to the date it started.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from inspector.core.errors import ConfigError

if TYPE_CHECKING:
    from inspector.core.config import Config, RecipeConfig

MAX_TEXT = 100  # lot, work order, product: a label a person types or a PLC sends
_LABEL = re.compile(r"^(\d{4}-\d{2}-\d{2})/([A-Za-z0-9_-]{1,20})$")


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class Shifts:
    """Named spans of the day (``{"A": "06:00-14:00", "C": "22:00-06:00"}``), on the station's clock."""

    spans: dict[str, str] = field(default_factory=dict, hash=False)

    def label_at(self, t: dt.datetime) -> str:
        """``2026-11-30/A`` for an aware time ``t``; "" when no shift covers it (or none is defined)."""
        local = t.astimezone()
        now = local.hour * 60 + local.minute
        for name, span in self.spans.items():
            start, end = (_minutes(x) for x in span.split("-"))
            if start < end and start <= now < end:
                return f"{local.date().isoformat()}/{name}"
            if start > end and (now >= start or now < end):  # crosses midnight: the date it started
                day = local.date() if now >= start else local.date() - dt.timedelta(days=1)
                return f"{day.isoformat()}/{name}"
        return ""

    def check_label(self, label: str) -> str:
        """``label`` if it names a date and a defined shift; ConfigError (one sentence) otherwise."""
        m = _LABEL.match(label.strip())
        if m is None:
            raise ConfigError(f"--shift {label!r}: expected DATE/NAME such as 2026-11-30/A")
        try:
            dt.date.fromisoformat(m.group(1))
        except ValueError:
            raise ConfigError(f"--shift {label!r}: {m.group(1)} is not a date") from None
        if self.spans and m.group(2) not in self.spans:
            raise ConfigError(f"--shift {label!r}: no shift {m.group(2)!r} in [shifts] (defined: "
                              f"{', '.join(sorted(self.spans))})")
        return label.strip()


def clean_text(value: str, what: str) -> str:
    """A lot, work order or product as typed: trimmed, at most ``MAX_TEXT`` characters, no control characters."""
    v = (value or "").strip()
    if len(v) > MAX_TEXT or any(ord(c) < 32 for c in v):
        raise ValueError(f"expected a {what} of at most {MAX_TEXT} printable characters, got {value!r}")
    return v


@dataclass(frozen=True)
class DayContext:
    """What the line is making now; the runner stamps it (with the shift) on each inspection it finishes."""

    product: str = ""
    lot: str = ""
    work_order: str = ""
    recipe_sha256: str = ""
    shifts: Shifts = field(default_factory=Shifts, compare=False)

    def __post_init__(self) -> None:
        for name in ("product", "lot", "work_order"):
            object.__setattr__(self, name, clean_text(getattr(self, name), name.replace("_", " ")))

    def stamp(self, t: dt.datetime) -> PartDay:
        return PartDay(self.product, self.lot, self.work_order, self.shifts.label_at(t), self.recipe_sha256)


@dataclass(frozen=True)
class PartDay:
    """The day's facts recorded with one part."""

    product: str = ""
    lot: str = ""
    work_order: str = ""
    shift: str = ""
    recipe_sha256: str = ""


def product_config(base: Config, name: str | None) -> Config:
    """``base`` with the product's model (when it names one) and recipe; ``base`` itself for no product."""
    from inspector.core.config import config_from_dict

    if not name:
        return base
    product = base.products.get(name)
    if product is None:
        known = ", ".join(sorted(base.products)) or "none are defined"
        raise ConfigError(f"no product {name!r} in [products] ({known}).")
    data = base.model_dump(mode="python")
    data["recipe"] = product.recipe.model_dump(mode="python")
    if product.model is not None:
        data["model"] = {**data["model"], "path": product.model}
    if product.camera:  # the product's nodes after the camera's own, in the order written
        features = {k: v for k, v in data["camera"]["features"].items() if k not in product.camera}
        data["camera"] = {**data["camera"], "features": {**features, **product.camera}}
    return config_from_dict(data, f"[products.{name}]")


def with_product(base: Config, name: str, recipe: RecipeConfig) -> Config:
    """``base`` with product ``name``'s recipe replaced (the product editor's save), validated whole."""
    from inspector.core.config import config_from_dict

    if name not in base.products:
        raise ConfigError(f"no product {name!r} in [products].")
    data = base.model_dump(mode="python")
    data["products"][name]["recipe"] = recipe.model_dump(mode="python")
    return config_from_dict(data, f"[products.{name}]")


def check_expected(name: str, expected: Iterable[str], known: Iterable[str], model: str) -> None:
    """A product's expected defect classes must all be classes the model reports."""
    known = list(known)
    missing = sorted(set(expected) - set(known))
    if missing:
        raise ConfigError(f"product {name!r} expects {', '.join(missing)}, which {model} does not report; its "
                          f"classes are {', '.join(known) or '(none)'}.")
