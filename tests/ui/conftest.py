"""Fixtures for the window's tests: real widgets (offscreen), the real Station, real SQLite files."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import trust_models
from ui.app import drop_foreign_qt_plugins

drop_foreign_qt_plugins()  # before pytest-qt creates the QApplication (opencv points Qt at its own plugins)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


@pytest.fixture
def parts(tmp_path) -> Path:
    """A finite folder of 12 sample parts."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for f in sorted(SAMPLES.glob("*.jpg"))[:12]:
        shutil.copy(f, folder)
    return folder


@pytest.fixture
def make_spec(tmp_path):
    """A StationSpec over ``source`` with the given model, a database in tmp_path, fast camera timeouts."""
    from inspector.core.config import Config, config_from_dict
    from station import StationSpec

    def make(source: Path | str, model: Path | None, loop: bool = False, db: str = "t.db",
             trusted: bool = True) -> StationSpec:
        data = Config().model_dump(mode="python")
        data["model"]["path"] = model
        data["camera"].update(open_timeout_s=1.0, read_timeout_s=1.0, reconnect_initial_s=0.05, reconnect_max_s=0.1)
        url = f"sqlite:///{(tmp_path / db).as_posix()}"
        if model is not None and trusted:  # the station's database trusts the model (issue 12)
            trust_models(url, Path(model))
        return StationSpec(str(source), url, config_from_dict(data), loop=loop)

    return make


@pytest.fixture
def open_window(qtbot, tmp_path):
    """The real main window over the real Station (as ``ui.app`` builds it); stopped cleanly afterwards."""
    from ui.app import build_window
    from ui.theme import apply_theme

    windows = []

    def make(spec):
        from PySide6.QtWidgets import QApplication

        apply_theme(QApplication.instance())
        w = build_window(spec, tmp_path / "settings.toml")
        qtbot.addWidget(w)
        w.resize(1280, 860)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        if not w.controller.idle:
            w.controller.stop()
            qtbot.waitUntil(lambda w=w: w.controller.idle, timeout=60_000)
        w.controller.shutdown()


def run_until_idle(qtbot, window, timeout_ms: int = 90_000) -> None:
    qtbot.waitUntil(lambda: window.controller.idle, timeout=timeout_ms)


def db_rows(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def make_inspection(seq: int, verdict, boxes=(), reasons=("no defect",), image: np.ndarray | None = None):
    """An Inspection as the pipeline makes it (boxes: (cls, label, confidence, (x1, y1, x2, y2)))."""
    from inspector.core.types import Detection, Detections, Inspection, Verdict

    if image is None and verdict != Verdict.NOT_INSPECTED:
        image = np.full((240, 320, 3), 90, np.uint8)
    dets = None
    if verdict != Verdict.NOT_INSPECTED:
        dets = Detections(tuple(Detection(c, lbl, cf, *b) for c, lbl, cf, b in boxes), 320, 240, 5.0, "a" * 64)
    return Inspection(seq, "test", verdict, tuple(reasons), dets, dt.datetime.now(dt.timezone.utc), 12.0,
                      f"part_{seq}.jpg", "a" * 64, image)

