"""Which model files may be loaded: a ``.pt`` is a pickle that runs code, so only known hashes load.

Trusted hashes are those in the cards of the shipped models (``models/*/card.json``) and those an
authorised user registered (``inspector model add``, or ``inspector train``), kept in
``models.json`` in the user's data folder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from inspector.errors import ModelError

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pt", ".onnx", ".xml")


def data_home() -> Path:
    """The user's data folder (database, images, registry); INSPECTOR_HOME overrides it."""
    env = os.environ.get("INSPECTOR_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("inspector", appauthor=False))


def shipped_models_dir() -> Path:
    env = os.environ.get("INSPECTOR_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def sha256_file(path: Path) -> str:
    import hashlib

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
    try:
        card = json.loads(card_path.read_text())
        if card.get("auto_trust") is False:  # an export's card: its files are trusted only by `model add`
            return {}
        return {v["sha256"]: name for name, v in card.get("files", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("unreadable model card %s", card_path)
        return {}


class ModelRegistry:
    def __init__(self, registry_file: Path | None = None, shipped_dir: Path | None = None) -> None:
        self.file = registry_file or data_home() / "models.json"
        self.shipped_dir = shipped_dir or shipped_models_dir()

    def _entries(self) -> dict[str, dict]:
        try:
            return json.loads(self.file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("model registry %s is unreadable; only shipped models are trusted", self.file)
            return {}

    def trusted(self) -> dict[str, str]:
        """sha256 -> where it was trusted from."""
        out = {h: f"registry ({v.get('name', '')})" for h, v in self._entries().items()}
        if self.shipped_dir.is_dir():
            for card in sorted(self.shipped_dir.glob("*/card.json")):
                for h in _card_hashes(card):
                    out[h] = f"shipped card {card.parent.name}"
        return out

    def add(self, path: Path, actor: str = "local", name: str | None = None) -> str:
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        h = sha256_file(path)
        entries = self._entries()
        entries[h] = {"name": name or path.name, "path": str(path.resolve()), "added_by": actor,
                      "added_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(self.file.name + ".tmp")
        tmp.write_text(json.dumps(entries, indent=1))
        tmp.replace(self.file)
        return h

    def check(self, path: Path) -> str:
        """Return the file's SHA-256 if trusted; raise ModelError otherwise."""
        h = sha256_file(path)
        if h not in self.trusted():
            raise ModelError(
                f"refusing to load {path}: its SHA-256 ({h[:12]}...) is not in the model registry. "
                "The file may have been changed or come from elsewhere; an admin can trust it with "
                "'inspector model add FILE'.")
        return h


def default_model_dir() -> Path:
    """The shipped default model's folder, named in models/DEFAULT."""
    d = shipped_models_dir()
    marker = d / "DEFAULT"
    if marker.exists():
        return d / marker.read_text().strip()
    cards = sorted(d.glob("*/card.json"))
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


def read_card(model_file: Path) -> dict:
    card = model_file.parent / "card.json"
    try:
        return json.loads(card.read_text())
    except (OSError, ValueError):
        return {}
