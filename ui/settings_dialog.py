"""Settings over the typed configuration: every field with its description, validated before it is saved.

The editors hold text; the whole tree is validated by pydantic (``inspector.core.config.Config``) and each
error is shown under its field. Only a valid configuration is written (by ``save_config`` on a pool
thread, atomically): a wrong value saves nothing. A ``guard`` (``ui.settings_guard``) checks, on that
thread, that the signed-in user may change what changed, and audits it; a refusal saves nothing.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from inspector.core.config import Config, save_config
from ui.workers import operator_message, run_job

Key = tuple[str, str]  # (section, field)


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _kind(annotation: Any) -> tuple[str, Any]:
    """The editor for a field type: ("enum", cls), ("bool", None), ("tuple", None), ("dict", None), ("text", None)."""
    base = _unwrap(annotation)
    origin = typing.get_origin(base) or base
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return "enum", origin
    if origin is bool:
        return "bool", None
    if origin is tuple:
        return "tuple", None
    if origin is dict or (isinstance(origin, type) and issubclass(origin, BaseModel)):
        return "dict", None  # a sub-section ([line.mqtt]) is edited as JSON too
    return "text", None


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


class _Field:
    """One editor, its description and its error line."""

    def __init__(self, key: Key, info: Any, value: Any) -> None:
        self.key = key
        self.kind, self.enum = _kind(info.annotation)
        self.optional = _optional(info.annotation)
        if self.kind == "enum":
            self.editor: QWidget = QComboBox()
            for m in self.enum:
                self.editor.addItem(m.value)
            self.editor.setCurrentText(value.value if isinstance(value, enum.Enum) else str(value))
        elif self.kind == "bool":
            self.editor = QCheckBox()
            self.editor.setChecked(bool(value))
        else:
            self.editor = QLineEdit(self._text(value))
        self.editor.setObjectName(f"{key[0]}.{key[1]}")
        self.help = QLabel(info.description or "")
        self.help.setObjectName("fieldHelp")
        self.help.setWordWrap(True)
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()

    def _text(self, value: Any) -> str:
        if value is None:
            return ""
        if self.kind == "tuple":
            return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        if self.kind == "dict" and isinstance(value, BaseModel):
            return json.dumps(value.model_dump(mode="json", exclude_none=True))
        if self.kind == "dict":
            return json.dumps({k: (v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v)
                               for k, v in value.items()}) if value else ""
        return str(value)

    def raw(self) -> Any:
        """The value for validation; raises ValueError for text that is not even shaped right."""
        if self.kind == "enum":
            return self.editor.currentText()
        if self.kind == "bool":
            return self.editor.isChecked()
        text = self.editor.text().strip()
        if text == "" and (self.optional or self.kind == "dict"):  # an empty sub-section: none
            return None if self.optional else {}
        if self.kind == "tuple":
            return [p.strip() for p in text.strip("()[]").split(",")]
        if self.kind == "dict":
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError('write it as JSON, e.g. {"scratch": {"fail_conf": 0.6}}') from None
        return text

    def set_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))
        if isinstance(self.editor, QLineEdit):
            self.editor.setProperty("invalid", bool(message))
            self.editor.style().unpolish(self.editor)
            self.editor.style().polish(self.editor)


class SettingsDialog(QDialog):
    """Edit ``config`` and save it to ``path``; ``saved(Config)`` after the file is written."""

    saved = Signal(object)

    def __init__(self, config: Config, path: Path, pool: QThreadPool | None = None,
                 parent: QWidget | None = None, guard: Callable[[Config, Config], None] | None = None) -> None:
        super().__init__(parent)
        self.guard = guard
        self.setWindowTitle("Settings")
        self.resize(820, 680)
        self.config = config
        self.path = Path(path)
        self.pool = pool or QThreadPool.globalInstance()
        self.fields: dict[Key, _Field] = {}
        self.section_errors: dict[str, QLabel] = {}
        self.tabs = QTabWidget()
        # products and shifts are tables of their own (the config file, the live screen's product editor): kept
        self.sections = [s for s in Config.model_fields if isinstance(getattr(config, s), BaseModel)]
        for section in self.sections:
            self.tabs.addTab(self._section_page(section, Config.model_fields[section], getattr(config, section)),
                             _title(section))
        self.status = QLabel(f"Saved to {self.path}")
        self.status.setObjectName("fieldHelp")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)

    def _section_page(self, section: str, sinfo: Any, value: BaseModel) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        grid.setColumnStretch(1, 1)
        grid.setVerticalSpacing(2)
        head = QLabel(sinfo.description or "")
        head.setObjectName("fieldHelp")
        err = QLabel()
        err.setObjectName("fieldError")
        err.setWordWrap(True)
        err.hide()
        self.section_errors[section] = err
        grid.addWidget(head, 0, 0, 1, 2)
        grid.addWidget(err, 1, 0, 1, 2)
        row = 2
        for name, info in type(value).model_fields.items():
            f = _Field((section, name), info, getattr(value, name))
            self.fields[f.key] = f
            label = QLabel(_title(name))
            label.setToolTip(f"[{section}] {name}")
            grid.addWidget(label, row, 0)
            grid.addWidget(f.editor, row, 1)
            grid.addWidget(f.help, row + 1, 1)
            grid.addWidget(f.error, row + 2, 1)
            grid.setRowMinimumHeight(row + 3, 10)
            row += 4
        grid.setRowStretch(row, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        return scroll

    # validation -----------------------------------------------------------------------------
    def validate(self) -> Config | None:
        """The edited configuration, or None with every error shown beside its field."""
        for f in self.fields.values():
            f.set_error(None)
        for label in self.section_errors.values():
            label.hide()
        data: dict[str, Any] = {s: {} for s in self.sections}
        data.update({s: getattr(self.config, s) for s in Config.model_fields if s not in self.sections})
        bad = False
        for (section, name), f in self.fields.items():
            try:
                data[section][name] = f.raw()
            except ValueError as e:
                f.set_error(str(e))
                bad = True
        if bad:
            self._focus_first_error()
            return None
        try:
            return Config.model_validate(data)
        except ValidationError as e:
            for err in e.errors():
                self._show(tuple(str(p) for p in err["loc"]), err["msg"].removeprefix("Value error, "))
            self._focus_first_error()
            return None

    def _show(self, loc: tuple[str, ...], msg: str) -> None:
        if len(loc) >= 2 and (loc[0], loc[1]) in self.fields:
            f = self.fields[(loc[0], loc[1])]
            more = f" ({'.'.join(loc[2:])})" if len(loc) > 2 else ""
            f.set_error(f"{msg}{more}" if not f.error.text() else f"{f.error.text()}; {msg}{more}")
            return
        section = loc[0] if loc else ""
        named = [k for k in self.fields if k[0] == section and re.search(rf"\b{k[1]}\b", msg)]
        for k in named:  # a rule across fields (review_conf above fail_conf): shown at each field it names
            self.fields[k].set_error(msg)
        if not named and section in self.section_errors:
            self.section_errors[section].setText(msg)
            self.section_errors[section].show()

    def _focus_first_error(self) -> None:
        for f in self.fields.values():
            if not f.error.isHidden():
                self.tabs.setCurrentIndex(self.sections.index(f.key[0]))
                f.editor.setFocus()
                return

    def errors(self) -> dict[str, str]:
        """Shown errors by "section.field" (for tests and logs)."""
        return {f"{k[0]}.{k[1]}": f.error.text() for k, f in self.fields.items() if not f.error.isHidden()}

    # saving ---------------------------------------------------------------------------------
    def save(self) -> None:
        cfg = self.validate()
        if cfg is None:
            self.status.setText("Not saved: correct the values marked in red.")
            return
        self.buttons.setEnabled(False)
        self.status.setText(f"Saving to {self.path}…")
        path, old, guard = self.path, self.config, self.guard

        def write() -> Config:
            if guard is not None:
                guard(old, cfg)  # PermissionDenied: nothing saved
            path.parent.mkdir(parents=True, exist_ok=True)
            save_config(cfg, path)
            return cfg

        run_job(self.pool, write, self._saved, self._save_failed, "saving settings")

    def _saved(self, cfg: Config) -> None:
        self.config = cfg
        self.status.setText(f"Saved to {self.path}")
        self.saved.emit(cfg)
        self.accept()

    def _save_failed(self, e: BaseException) -> None:
        self.buttons.setEnabled(True)
        self.status.setText(f"Not saved: {operator_message(e)}")
