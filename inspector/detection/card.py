"""The model card: how a model was made and what it may be used for, read and written here alone.

``card.json`` sits beside the model files it names (with their SHA-256) and ``card.md`` is its
human-readable twin. ``ModelCard`` is the typed, frozen view the rest of the engine reads: no other
module parses card.json or reads a card by key. ``load_card`` reads one, ``write_card`` writes one.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from inspector.core.clock import format_duration
from inspector.core.files import write_atomic

log = logging.getLogger(__name__)

CARD_FILE = "card.json"
TASKS = ("detect", "anomaly")


@dataclass(frozen=True)
class CardFile:
    """A file the card names, beside it: its SHA-256 and size."""

    name: str
    sha256: str
    bytes: int | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.sha256, str) or not self.sha256:
            raise ValueError(f"expected a card file with a name and a SHA-256, got {self.name!r}: {self.sha256!r}")


@dataclass(frozen=True)
class CardExport:
    """How an exported model was made from its source (``inspector model export``)."""

    source: str
    source_sha256: str
    format: str
    precision: str
    calibration: Mapping[str, Any] | None = None  # {"images": n, "data": folder}
    accuracy: Mapping[str, Any] | None = None  # source and export mAP50 on held-out parts

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CardExport:
        return cls(str(d.get("source", "")), str(d.get("source_sha256", "")), str(d.get("format", "")),
                   str(d.get("precision", "")), _mapping(d.get("calibration")), _mapping(d.get("accuracy")))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "source_sha256": self.source_sha256, "format": self.format,
                "precision": self.precision, "calibration": _plain(self.calibration),
                "accuracy": _plain(self.accuracy)}


def _mapping(v: Any) -> Mapping[str, Any] | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ValueError(f"expected a mapping in the card, got {type(v).__name__}")
    return copy.deepcopy(dict(v))


def _plain(v: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if v is None else copy.deepcopy(dict(v))


def _opt_int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise ValueError(f"expected a whole number for the card's {what}, got {v!r}")
    return int(v)


def _opt_float(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number for the card's {what}, got {v!r}")
    return float(v)


# card.json keys of the typed fields, in the order card.json is written
_KEYS = ("name", "task", "architecture", "role", "role_note", "base", "base_note", "data", "data_note", "classes",
         "imgsz", "epochs_planned", "epochs_done", "interrupted", "stopped_by", "best_epoch", "train_val_map50",
         "train_val_map50_95", "selection", "time_budget_s", "train_seconds", "command", "date", "machine",
         "auto_trust", "export", "validation", "variants", "files")
# keys written only when set (the cards written before them did not have them)
_OPTIONAL = ("role", "role_note", "base_note", "data_note", "stopped_by", "best_epoch", "train_val_map50",
             "train_val_map50_95", "selection", "time_budget_s", "auto_trust", "export", "validation", "variants",
             "machine", "epochs_done")


@dataclass(frozen=True)
class ModelCard:
    """What a card says, typed; keys this version does not know stay in ``extra`` (and are written back)."""

    name: str
    task: str = "detect"
    classes: tuple[str, ...] = ()
    imgsz: int = 320
    architecture: str = ""
    files: tuple[CardFile, ...] = ()
    role: str = ""  # "base": the shipped general base that fine-tuning starts from
    role_note: str = ""
    base: str = ""  # what training started from
    base_note: str = ""
    data: str = ""
    data_note: str = ""
    epochs_planned: int | None = None
    epochs_done: int | None = None
    interrupted: bool = False
    stopped_by: str = ""
    best_epoch: int | None = None
    train_val_map50: float | None = None
    train_val_map50_95: float | None = None
    selection: str = ""  # how the kept epoch was chosen
    time_budget_s: float | None = None  # the training budget, when one was given
    train_seconds: float = 0.0
    command: str = ""
    date: str = ""
    machine: str = ""
    auto_trust: bool = True  # False (an export's card): its files are trusted only by `inspector model add`
    export: CardExport | None = None
    validation: Mapping[str, Any] = field(default_factory=dict)  # `inspector model eval --card` figures
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # {"int8": {"file": ..., ...}}
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("expected a model card with a name, got an empty one")
        if self.task not in TASKS:
            raise ValueError(f"expected a card task in {TASKS}, got {self.task!r}")
        if not isinstance(self.imgsz, int) or isinstance(self.imgsz, bool) or not 16 <= self.imgsz <= 8192:
            raise ValueError(f"expected a card imgsz between 16 and 8192, got {self.imgsz!r}")
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError(f"expected each file once in a card, got {names}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        """The typed card from card.json's mapping; ValueError (one sentence) for a card that is not one."""
        if not isinstance(d, Mapping):
            raise ValueError(f"expected a card as a JSON object, got {type(d).__name__}")
        files = d.get("files") or {}
        if not isinstance(files, Mapping):
            raise ValueError(f"expected the card's files as an object, got {type(files).__name__}")
        typed_files = []
        for n, f in files.items():
            if not isinstance(f, Mapping):
                raise ValueError(f"expected the card's entry for {n} as an object, got {type(f).__name__}")
            typed_files.append(CardFile(str(n), f.get("sha256"), _opt_int(f.get("bytes"), f"{n} bytes")))
        classes = d.get("classes") or ()
        if isinstance(classes, (str, bytes)) or not isinstance(classes, (list, tuple)):
            raise ValueError(f"expected the card's classes as a list, got {classes!r}")
        variants = d.get("variants") or {}
        if not isinstance(variants, Mapping) or not all(isinstance(v, Mapping) for v in variants.values()):
            raise ValueError("expected the card's variants as an object of objects")
        export = d.get("export")
        imgsz = _opt_int(d.get("imgsz"), "imgsz")
        return cls(
            name=str(d.get("name") or "model"), task=str(d.get("task") or "detect"),
            classes=tuple(str(c) for c in classes), imgsz=320 if imgsz is None else imgsz,
            architecture=str(d.get("architecture") or ""), files=tuple(typed_files),
            role=str(d.get("role") or ""), role_note=str(d.get("role_note") or ""),
            base=str(d.get("base") or ""), base_note=str(d.get("base_note") or ""),
            data=str(d.get("data") or ""), data_note=str(d.get("data_note") or ""),
            epochs_planned=_opt_int(d.get("epochs_planned"), "epochs_planned"),
            epochs_done=_opt_int(d.get("epochs_done"), "epochs_done"), interrupted=bool(d.get("interrupted")),
            stopped_by=str(d.get("stopped_by") or ""), best_epoch=_opt_int(d.get("best_epoch"), "best_epoch"),
            train_val_map50=_opt_float(d.get("train_val_map50"), "train_val_map50"),
            train_val_map50_95=_opt_float(d.get("train_val_map50_95"), "train_val_map50_95"),
            selection=str(d.get("selection") or ""),
            time_budget_s=_opt_float(d.get("time_budget_s"), "time_budget_s"),
            train_seconds=_opt_float(d.get("train_seconds"), "train_seconds") or 0.0,
            command=str(d.get("command") or ""), date=str(d.get("date") or ""), machine=str(d.get("machine") or ""),
            auto_trust=d.get("auto_trust") is not False,
            export=CardExport.from_dict(export) if isinstance(export, Mapping) else None,
            validation=_mapping(d.get("validation")) or {},
            variants={str(k): copy.deepcopy(dict(v)) for k, v in variants.items()},
            extra={k: copy.deepcopy(v) for k, v in d.items() if k not in _KEYS})

    def to_dict(self) -> dict[str, Any]:
        """card.json's mapping (keys this version does not know kept)."""
        d: dict[str, Any] = {}
        for k in _KEYS:
            v = getattr(self, k)
            if k in _OPTIONAL and (v is None or (k == "auto_trust" and v) or (k != "auto_trust" and v in ("", {}))):
                continue
            if k == "classes":
                v = list(v)
            elif k == "files":
                v = {f.name: {"sha256": f.sha256, **({"bytes": f.bytes} if f.bytes is not None else {})}
                     for f in self.files}
            elif k == "export":
                v = v.to_dict()
            elif isinstance(v, Mapping):
                v = copy.deepcopy(dict(v))
            d[k] = v
        files = d.pop("files")
        d.update(copy.deepcopy(dict(self.extra)))
        d["files"] = files
        return d

    def with_changes(self, **changes: Any) -> ModelCard:
        """A copy with some fields changed (the card of an export, an evaluation recorded)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"expected card fields among {sorted(known)}, got {sorted(unknown)}")
        return replace(self, **changes)

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)

    def sha256_of(self, file_name: str) -> str | None:
        """The SHA-256 the card records for one of its files, or None when it names no such file."""
        for f in self.files:
            if f.name == file_name:
                return f.sha256
        return None

    def variant_file(self, kind: str) -> str | None:
        """The relative path of a variant (``"int8"``) the card names, or None (absent, or a path that would leave
        the card's folder)."""
        f = (self.variants.get(kind) or {}).get("file")
        if not isinstance(f, str) or not f or Path(f).is_absolute() or ".." in Path(f).parts:
            return None
        return f

    @property
    def is_base(self) -> bool:
        """The shipped general base that fine-tuning starts from."""
        return self.role == "base"

    @property
    def evaluated_map50(self) -> float | None:
        v = self.validation.get("map50")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    @property
    def evaluated_images(self) -> int | None:
        v = self.validation.get("images")
        return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def read_card_file(card_path: Path) -> ModelCard | None:
    """The typed card in a card.json file, or None when there is none or it is not a card (logged)."""
    try:
        d = json.loads(Path(card_path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("unreadable model card %s (%s)", card_path, e)
        return None
    try:
        return ModelCard.from_dict(d)
    except (ValueError, TypeError) as e:
        log.warning("model card %s is not a card: %s", card_path, e)
        return None


def load_card(model_file: Path) -> ModelCard | None:
    """The typed card beside a model file, or None when there is none or it is not a card."""
    return read_card_file(Path(model_file).parent / CARD_FILE)


def cards_in(folder: Path) -> list[tuple[Path, ModelCard]]:
    """The model folders under ``folder`` (``*/card.json``) with their readable cards, by folder name."""
    folder = Path(folder)
    out = []
    for p in sorted(folder.glob(f"*/{CARD_FILE}")) if folder.is_dir() else ():
        card = read_card_file(p)
        if card is not None:
            out.append((p.parent, card))
    return out


def write_card(out: Path, card: ModelCard | Mapping[str, Any]) -> ModelCard:
    """Write card.json and its human-readable twin card.md into the folder ``out``; returns the typed card."""
    c = card if isinstance(card, ModelCard) else ModelCard.from_dict(card)
    write_atomic(Path(out) / CARD_FILE, (json.dumps(c.to_dict(), indent=2) + "\n").encode())
    lines = [f"# Model card: {c.name}", "",
             f"- Task: {c.task} ({c.architecture}), image size {c.imgsz} px",
             f"- Classes: {', '.join(c.classes)}",
             f"- Base: {c.base}" + (f" ({c.base_note})" if c.base_note else ""),
             f"- Data: {c.data}" + (f" ({c.data_note})" if c.data_note else ""),
             f"- Epochs: {c.epochs_done} done of {c.epochs_planned} planned"
             + (" (interrupted)" if c.interrupted else ""),
             f"- Training time: {c.train_seconds:.0f} s on {c.machine or '?'}",
             f"- Date: {c.date}",
             f"- Command: `{c.command}`"]
    if c.selection:
        lines += [f"- Best epoch {c.best_epoch}: val mAP50 {c.train_val_map50}, mAP50-95 "
                  f"{c.train_val_map50_95} ({c.selection}); stopped by {c.stopped_by or None}"]
    if c.time_budget_s:
        lines += [f"- Time budget: {format_duration(c.time_budget_s)}"]
    if c.extra.get("imgsz_note"):
        lines += [f"- Image size: {c.extra['imgsz_note']}"]
    lines += ["", "## Files", ""]
    lines += [f"- `{f.name}`: {f.bytes} bytes, SHA-256 `{f.sha256}`" for f in c.files]
    if c.export is not None:
        lines += export_card_lines(c.export)
    if c.role_note:
        lines[2:2] = [f"- Role: {c.role or None}: {c.role_note}"]
    if c.extra.get("federated"):  # rounds, stations and their parts (inspector federate serve)
        lines += ["", "## Federated", "", "```", json.dumps(c.extra["federated"], indent=2), "```"]
    if c.extra.get("transfer"):
        lines += ["", "## Transfer to real defects", "", "```", json.dumps(c.extra["transfer"], indent=2), "```"]
    if c.validation:
        lines += ["", "## Evaluation", ""]
        if c.validation.get("command"):
            lines += [f"Command: `{c.validation['command']}`", ""]
        lines += ["```", json.dumps({k: v for k, v in c.validation.items() if k != "command"}, indent=2), "```"]
    write_atomic(Path(out) / "card.md", ("\n".join(lines) + "\n").encode())
    return c


def export_card_lines(export: CardExport) -> list[str]:
    """The export section of card.md."""
    lines = ["", "## Export", "",
             f"- Source: `{export.source}`, SHA-256 `{export.source_sha256}`",
             f"- Format: {export.format}, precision {export.precision}"]
    cal = export.calibration
    if cal:
        lines.append(f"- Calibration: {cal.get('images')} images from {cal.get('data') or '?'}")
    acc = export.accuracy
    if acc:
        lines.append(f"- mAP50 on {acc['images']} held-out parts: source {acc['source_map50']:.3f} "
                     f"({acc['source_backend']}), export {acc['export_map50']:.3f} ({acc['export_backend']})")
    else:
        lines.append("- Accuracy against the source: not measured (give --data with held-out parts)")
    lines += ["- Trust: not trusted by this card; an admin or QC user trusts it with `inspector model add FILE`"]
    return lines
