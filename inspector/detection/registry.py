"""Which model files may be loaded: a ``.pt`` is a pickle that runs code, so only known hashes load.

Trusted hashes are those in the cards of the models shipped inside the installed package
(``models/*/card.json`` beside this package; no environment variable adds to them) and those that
the composition root read from the station's database (``inspector model add``, sealed and audited
there). A ``.pt`` that is not trusted may still be read by ``inspector.detection.checkpoint.vet``, which unpickles only
an allow-list of PyTorch and Ultralytics layer classes, so no code in it can run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.core.errors import ModelError
from inspector.core.home import data_home
from inspector.detection.card import CARD_FILE, ModelCard, load_card, read_card_file

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pt", ".onnx", ".xml")


PACKAGE_MODELS = Path(__file__).resolve().parents[2] / "models"


def shipped_models_dir() -> Path:
    """Where the default model is looked for (INSPECTOR_MODELS_DIR may move it; it never adds trust)."""
    env = os.environ.get("INSPECTOR_MODELS_DIR")
    return Path(env) if env else PACKAGE_MODELS


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    sha256: str
    name: str
    classes: tuple[str, ...]
    imgsz: int


def _card_hashes(card_path: Path) -> dict[str, str]:
    card = read_card_file(card_path)  # an unreadable card is logged there and trusts nothing
    if card is None or not card.auto_trust:  # an export's card: its files are trusted only by `model add`
        return {}
    return {f.sha256: f.name for f in card.files}


def shipped_hashes() -> dict[str, str]:
    """sha256 -> card name, from the cards of the models installed with this package only."""
    out: dict[str, str] = {}
    for card in sorted(PACKAGE_MODELS.glob(f"*/{CARD_FILE}")):
        for h in _card_hashes(card):
            out[h] = f"shipped card {card.parent.name}"
    return out


_warned_legacy = False


def _warn_legacy_registry() -> None:
    global _warned_legacy
    legacy = data_home() / "models.json"
    if not _warned_legacy and legacy.exists():
        _warned_legacy = True
        log.warning("%s is no longer read: models are trusted in the station's database; re-add each with "
                    "'inspector model add FILE --user NAME'", legacy)


class ModelRegistry:
    """The shipped hashes plus ``trusted`` (sha256 -> where from), read by the caller from the station's
    database."""

    def __init__(self, trusted: Mapping[str, str] | None = None) -> None:
        self.extra = dict(trusted or {})
        _warn_legacy_registry()

    def trusted(self) -> dict[str, str]:
        """sha256 -> where it was trusted from."""
        return {**self.extra, **shipped_hashes()}

    def allow(self, path: Path, why: str) -> str:
        """Trust a file this process made itself, for this registry object only (benchmarks); its hash."""
        h = sha256_file(Path(path))
        self.extra[h] = why
        return h

    def is_trusted(self, sha256: str) -> bool:
        return sha256 in self.trusted()

    def check(self, path: Path) -> str:
        """Return the file's SHA-256 if trusted; raise ModelError otherwise."""
        h = sha256_file(path)
        if h not in self.trusted():
            raise ModelError(
                f"refusing to load {path}: its SHA-256 ({h[:12]}...) is not in the model registry of this "
                "station's database. The file may have been changed or come from elsewhere; a signed-in admin "
                "can trust it with 'inspector model add FILE --user NAME'.")
        return h



def card_is_trusted(model_file: Path, trusted: Mapping[str, str] | Collection[str]) -> bool:
    """Whether the card beside ``model_file`` may decide anything: a card shipped inside the package, or one
    whose own SHA-256 is trusted (``inspector model add`` trusts the card beside the model it adds)."""
    card = Path(model_file).parent / "card.json"
    if not card.is_file():
        return False
    try:
        if card.resolve().parent.parent == PACKAGE_MODELS.resolve():
            return True
        return sha256_file(card) in trusted
    except OSError:
        return False


def trusted_card(model_file: Path, trusted: Mapping[str, str] | Collection[str]) -> ModelCard | None:
    """The card beside ``model_file`` when it is trusted (``card_is_trusted``), else None: the fields of a card
    that change verdicts (image size) or provenance are taken only from a card the trust decision covers."""
    card = load_card(model_file)
    if card is None or card_is_trusted(model_file, trusted):
        return card
    if card is not None:
        log.warning("%s beside %s is not trusted here: its image size and provenance are not used (an admin "
                    "trusts it with 'inspector model add %s')", "card.json", model_file.name, model_file.name)
    return None


def recipe_sha256(recipe: Mapping[str, Any]) -> str:
    """The hash that identifies a recipe: SHA-256 of its values as canonical JSON (not of its file)."""
    text = json.dumps(dict(recipe), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_model_dir() -> Path:
    """The shipped default model's folder, named in models/DEFAULT."""
    d = shipped_models_dir()
    marker = d / "DEFAULT"
    if marker.exists():
        return d / marker.read_text().strip()
    cards = sorted(d.glob(f"*/{CARD_FILE}"))
    if not cards:
        raise ModelError(f"no shipped model in {d}; give one with --model.")
    return cards[0].parent


def resolve_model(path: Path | str | None, prefer: tuple[str, ...] = (".pt", ".onnx")) -> Path:
    """A model file from a file, a model folder or None (the shipped default)."""
    p = Path(path) if path else default_model_dir()
    if p.is_dir():
        for suffix in prefer:
            files = sorted(p.glob(f"*{suffix}"))
            if files:
                return files[0]
        raise ModelError(f"{p} holds no model file ({', '.join(MODEL_SUFFIXES)}).")
    if not p.exists():
        raise ModelError(f"model file not found: {p}")
    if p.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelError(f"{p}: unknown model format {p.suffix!r}; Inspector loads {', '.join(MODEL_SUFFIXES)} files.")
    return p


def int8_variant(model_file: Path) -> Path | None:
    """The INT8 variant a model's card names (``variants.int8.file``, beside the card), when it is there. It is
    trusted like any file: by its hash (a shipped card's files, or the station's database)."""
    card = load_card(model_file)
    f = card.variant_file("int8") if card is not None else None
    if f is None:
        return None
    path = model_file.parent / f
    return path if path.is_file() else None
