"""Decisions made before training starts: the time budget, the base model, the image size.

Each is a small pure function of the data set and the shipped models, so ``inspector train`` (and
later the window) can say in one line what it chose and why, and the card can record it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from inspector.core.clock import format_duration
from inspector.core.errors import ConfigError
from inspector.detection.card import cards_in, load_card
from inspector.detection.registry import sha256_file, shipped_models_dir
from inspector.training.datasets import Dataset

log = logging.getLogger(__name__)

SCRATCH_BASE = "yolo11n.yaml"
DEFAULT_IMGSZ = 320
MAX_IMGSZ = 1280
MIN_DEFECT_PX = 8  # below this a nano detector's stride-8 head barely sees a defect
SMALL_SHARE = 0.10  # the size that this share of the boxes is smaller than decides "your smallest defects"

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$",
                       re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in '45m', '1h30m', '90s', '0.5h' or a bare number of minutes; ConfigError otherwise."""
    t = str(text).strip()
    try:
        seconds = float(t) * 60
    except ValueError:
        m = _DURATION.match(t)
        if not t or not m or not any(m.groups()):
            raise ConfigError(f"time budget {text!r}: expected a duration such as 45m, 1h30m, 90s or 0.5h.") from None
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"time budget {text!r}: must be longer than zero.")
    return seconds


# ---- base model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseChoice:
    ref: str  # what Ultralytics loads: a .pt path or an architecture .yaml
    asked: str | None  # what the user gave with --base
    note: str  # one line for the output and the card ('' when the asked base is used as it is)


def shipped_base() -> Path | None:
    """The shipped general base model (a card with ``"role": "base"``), or None."""
    for folder, card in cards_in(shipped_models_dir()):
        if card.is_base:
            for name in card.file_names:
                if name.endswith(".pt") and (folder / name).is_file():
                    return folder / name
    return None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def model_classes(pt: Path) -> tuple[str, ...]:
    """Class names from a model's card (beside it), else from the checkpoint itself."""
    card = load_card(pt)
    try:
        if card is not None and card.classes and card.sha256_of(pt.name) == sha256_file(pt):
            return card.classes
    except OSError:
        pass
    return ()


def choose_base(asked: str | None, data_classes: Collection[str], trusted: Collection[str],
                keep: bool = False) -> BaseChoice:
    """The model to start from.

    No ``--base``: the shipped general surface base (its backbone was pre-trained on varied
    surfaces), else ``yolo11n.yaml``. A trusted base whose classes share none of the data's:
    its detection head is discarded anyway, so the general surface base is the better start
    (unless ``keep``). Anything else is used as given.
    """
    general = shipped_base()
    if asked is None:
        if general is None:
            return BaseChoice(SCRATCH_BASE, None, f"no shipped base model: training from scratch ({SCRATCH_BASE})")
        return BaseChoice(str(general), None, f"no --base given: starting from the shipped general surface base "
                                              f"{general.parent.name} (pre-trained on varied surfaces and defects)")
    p = Path(asked)
    if keep or general is None or p.suffix.lower() != ".pt" or not p.is_file():
        return BaseChoice(asked, asked, "")
    if p.resolve() == general.resolve():
        return BaseChoice(asked, asked, "")
    try:
        h = sha256_file(p)
    except OSError:
        return BaseChoice(asked, asked, "")
    if h not in trusted:
        return BaseChoice(asked, asked, "")
    theirs = model_classes(p)
    shared = {_norm(c) for c in theirs} & {_norm(c) for c in data_classes}
    if not theirs or shared:
        return BaseChoice(asked, asked, "")
    note = (f"--base {p.name} knows none of this data's classes ({', '.join(theirs)} vs "
            f"{', '.join(data_classes)}): starting instead from the shipped general surface base "
            f"{general.parent.name}, whose backbone was pre-trained on varied surfaces "
            f"(--keep-base uses {p.name} as given)")
    return BaseChoice(str(general), asked, note)


# ---- image size ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeAdvice:
    imgsz: int  # the size to train at
    smallest_px: float | None  # the short side of the smallest defects (SMALL_SHARE quantile) at imgsz
    image_px: int  # the typical (median) long side of the images
    message: str  # one line for the output and the card


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * (len(s) - 1) + 0.5)))]


def _round32(x: float) -> int:
    return int(math.ceil(x / 32) * 32)


def advise_imgsz(ds: Dataset, default: int = DEFAULT_IMGSZ) -> SizeAdvice:
    """The training size from the data's image and box sizes.

    Rule: start from ``default``; images smaller than it are trained at their own size (rounded
    up to a multiple of 32: upscaling adds no detail and costs time per epoch); if the smallest
    defects (the 10 % quantile of the boxes' short side) would be under 8 px, go up until they
    are not, at most to the image's own size (beyond it, tile: train on crops).
    """
    ims = [im for part in ds.splits.values() for im in part]
    if not ims:
        return SizeAdvice(default, None, 0, "")
    image_px = int(_quantile([max(im.width, im.height) for im in ims], 0.5))
    short_rel = [min(b.x2 - b.x1, b.y2 - b.y1) / max(im.width, im.height) for im in ims for b in im.boxes]
    size = min(default, _round32(image_px))
    note = ""
    if short_rel:
        small = _quantile(short_rel, SMALL_SHARE)
        if small * size < MIN_DEFECT_PX:
            need = _round32(MIN_DEFECT_PX / max(small, 1e-6))
            cap = min(MAX_IMGSZ, max(default, _round32(image_px)))
            if need > cap:
                note = (f"; even at {cap} px they are {small * cap:.0f} px: tile the images (train on crops "
                        f"around the defects) for these")
            size = max(size, min(need, cap))
        px = small * size
        msg = (f"your smallest defects (the smallest {SMALL_SHARE:.0%} of {len(short_rel)} boxes) are "
               f"{small * default:.0f} px at {default}" + (f", {px:.0f} px at {size}" if size != default else "")
               + f"; images are {image_px} px: training at {size}" + note)
        return SizeAdvice(size, round(px, 1), image_px, msg)
    return SizeAdvice(size, None, image_px, f"no boxes in the data; images are {image_px} px: training at {size}")


# ---- budget ----------------------------------------------------------------------------------------


def training_seconds(budget_s: float, elapsed_s: float) -> float:
    """Seconds left for the training loop, keeping a reserve for the final validation, export and card."""
    reserve = min(120.0, max(5.0, 0.03 * budget_s))  # NEU-DET, 45m: the final validation and export took ~30 s
    left = budget_s - elapsed_s - reserve
    if left < 1:
        raise ConfigError(f"time budget {format_duration(budget_s)} is used up before training starts "
                          f"({elapsed_s:.0f} s preparing the data): give a longer --time-budget.")
    return left
