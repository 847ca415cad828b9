"""The model card: how a model was made and what it may be used for, read and written here alone.

``card.json`` sits beside the model files it names (with their SHA-256) and ``card.md`` is its
human-readable twin. ``ModelCard`` is the typed, frozen view the rest of the engine reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.core.clock import format_duration
from inspector.core.files import write_atomic

CARD_FILE = "card.json"
TASKS = ("detect", "anomaly")


@dataclass(frozen=True)
class ModelCard:
    """The fields every part of the engine relies on; everything else the card holds stays in ``extra``."""

    name: str
    task: str = "detect"
    classes: tuple[str, ...] = ()
    imgsz: int = 320
    architecture: str = ""
    files: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("expected a model card with a name, got an empty one")
        if self.task not in TASKS:
            raise ValueError(f"expected a card task in {TASKS}, got {self.task!r}")
        if not isinstance(self.imgsz, int) or not 16 <= self.imgsz <= 8192:
            raise ValueError(f"expected a card imgsz between 16 and 8192, got {self.imgsz!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        known = {"name", "task", "classes", "imgsz", "architecture", "files"}
        imgsz = d.get("imgsz", 320)
        return cls(name=str(d.get("name") or "model"), task=str(d.get("task") or "detect"),
                   classes=tuple(str(c) for c in d.get("classes") or ()),
                   imgsz=int(imgsz) if isinstance(imgsz, (int, float)) and not isinstance(imgsz, bool) else -1,
                   architecture=str(d.get("architecture") or ""), files=dict(d.get("files") or {}),
                   extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "task": self.task, "architecture": self.architecture,
                             "classes": list(self.classes), "imgsz": self.imgsz}
        d.update(self.extra)
        d["files"] = {k: dict(v) for k, v in self.files.items()}
        return d

    def get(self, key: str, default: Any = None) -> Any:
        """A field by its card.json key (typed fields first)."""
        return self.to_dict().get(key, default)

    def sha256_of(self, file_name: str) -> str | None:
        entry = self.files.get(file_name) or {}
        sha = entry.get("sha256") if isinstance(entry, Mapping) else None
        return str(sha) if sha else None


def read_card(model_file: Path) -> dict:
    """The card beside a model file as a plain mapping ({} when there is none or it does not parse)."""
    card = model_file.parent / CARD_FILE
    try:
        d = json.loads(card.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def load_card(model_file: Path) -> ModelCard | None:
    """The typed card beside a model file, or None when there is none or it is not a card."""
    d = read_card(model_file)
    if not d:
        return None
    try:
        return ModelCard.from_dict(d)
    except (ValueError, TypeError):
        return None


def write_card(out: Path, card: dict) -> None:
    """Write card.json and its human-readable twin card.md."""
    write_atomic(out / CARD_FILE, (json.dumps(card, indent=2) + "\n").encode())
    lines = [f"# Model card: {card['name']}", "",
             f"- Task: {card['task']} ({card['architecture']}), image size {card['imgsz']} px",
             f"- Classes: {', '.join(card['classes'])}",
             f"- Base: {card['base']}" + (f" ({card['base_note']})" if card.get("base_note") else ""),
             f"- Data: {card['data']}" + (f" ({card['data_note']})" if card.get("data_note") else ""),
             f"- Epochs: {card.get('epochs_done')} done of {card['epochs_planned']} planned"
             + (" (interrupted)" if card.get("interrupted") else ""),
             f"- Training time: {card['train_seconds']:.0f} s on {card.get('machine', '?')}",
             f"- Date: {card['date']}",
             f"- Command: `{card['command']}`"]
    if card.get("selection"):
        lines += [f"- Best epoch {card.get('best_epoch')}: val mAP50 {card.get('train_val_map50')}, mAP50-95 "
                  f"{card.get('train_val_map50_95')} ({card['selection']}); stopped by {card.get('stopped_by')}"]
    if card.get("time_budget_s"):
        lines += [f"- Time budget: {format_duration(card['time_budget_s'])}"]
    if card.get("imgsz_note"):
        lines += [f"- Image size: {card['imgsz_note']}"]
    lines += ["", "## Files", ""]
    lines += [f"- `{n}`: {v['bytes']} bytes, SHA-256 `{v['sha256']}`" for n, v in card["files"].items()]
    if card.get("export"):
        lines += export_card_lines(card["export"])
    if card.get("role_note"):
        lines[2:2] = [f"- Role: {card.get('role')}: {card['role_note']}"]
    if card.get("transfer"):
        lines += ["", "## Transfer to real defects", "", "```", json.dumps(card["transfer"], indent=2), "```"]
    val = card.get("validation") or {}
    if val:
        lines += ["", "## Evaluation", ""]
        if val.get("command"):
            lines += [f"Command: `{val['command']}`", ""]
        lines += ["```", json.dumps({k: v for k, v in val.items() if k != "command"}, indent=2), "```"]
    write_atomic(out / "card.md", ("\n".join(lines) + "\n").encode())


def export_card_lines(export: dict) -> list[str]:
    """The export section of card.md."""
    lines = ["", "## Export", "",
             f"- Source: `{export['source']}`, SHA-256 `{export['source_sha256']}`",
             f"- Format: {export['format']}, precision {export['precision']}"]
    cal = export.get("calibration")
    if cal:
        lines.append(f"- Calibration: {cal['images']} images from {cal['data'] or '?'}")
    acc = export.get("accuracy")
    if acc:
        lines.append(f"- mAP50 on {acc['images']} held-out parts: source {acc['source_map50']:.3f} "
                     f"({acc['source_backend']}), export {acc['export_map50']:.3f} ({acc['export_backend']})")
    else:
        lines.append("- Accuracy against the source: not measured (give --data with held-out parts)")
    lines += ["- Trust: not trusted by this card; an admin or QC user trusts it with `inspector model add FILE`"]
    return lines
