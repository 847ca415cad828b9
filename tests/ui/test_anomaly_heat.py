"""The anomaly model's heat map through the real station and the real window: stored beside each picture,
drawn on the live screen and in review, H and a box to hide it; a detector's parts have none.

Generated surfaces and a tiny model trained on them in seconds: nothing from ``../shared`` is needed.
``INSPECTOR_TEST_SHOTS=DIR`` keeps the screenshots there (else in the test's own folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from inspector.core.heatmaps import heat_path
from tests.anomaly_parts import train_tiny, write_surfaces
from tests.ui.conftest import db_rows, run_until_idle

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def heat_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("heat-model")
    write_surfaces(root / "train", 10, False, seed=0)
    return train_tiny(root / "train", root / "blobs")


@pytest.fixture
def heat_parts(tmp_path) -> Path:
    """Four parts larger than the model's input (the map is scaled to them): two good, two with a blob."""
    folder = tmp_path / "parts"
    write_surfaces(folder, 2, False, seed=7, width=320, height=240, prefix="a_good")
    write_surfaces(folder, 2, True, seed=8, width=320, height=240, prefix="b_blob")
    return folder


def _shots(tmp_path: Path) -> Path:
    d = Path(os.environ.get("INSPECTOR_TEST_SHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """The share of pixels that differ clearly (by more than 40 in a channel) between two screenshots."""
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 40).mean())


def _grab(widget, path: Path) -> np.ndarray:
    assert widget.grab().save(str(path))
    img = cv2.imread(str(path))
    assert img is not None
    return img


def test_heat_maps_are_stored_beside_the_pictures_and_drawn_live_and_in_review(qtbot, open_window, make_spec,
                                                                               heat_parts, heat_model, tmp_path):
    from ui.review.service import Database
    from ui.review.tab import ReviewTab

    spec = make_spec(heat_parts, heat_model)
    w = open_window(spec)
    assert w.start()
    run_until_idle(qtbot, w)
    db = Path(spec.db_url[len("sqlite:///"):])
    rows = db_rows(db, "select id, verdict, image_path from inspections order by id")
    assert len(rows) == 4 and all(p for _, _, p in rows), rows
    assert {v for _, v, _ in rows} & {"FAIL", "REVIEW"}, rows  # the blobs are seen
    for _, _, rel in rows:  # each stored picture has its 8-bit heat map beside it, nothing else is left
        heat = cv2.imread(str(tmp_path / heat_path(rel)), cv2.IMREAD_UNCHANGED)
        assert heat is not None and heat.dtype == np.uint8 and heat.ndim == 2, rel
    folder = (tmp_path / rows[0][2]).parent
    assert sorted(f.name for f in folder.iterdir() if not f.name.startswith(".")) == sorted(
        n for _, _, rel in rows for n in (Path(rel).name, Path(heat_path(rel)).name))

    # the live screen: the last part's heat map drawn over it; H hides it, the box follows
    live = w.live
    canvas = live.canvas
    qtbot.waitUntil(lambda: canvas.result is not None and canvas.result.heat is not None, timeout=10_000)
    assert live.heat_box.isEnabled() and live.heat_box.isChecked() and canvas.heat_shown()
    shots = _shots(tmp_path)
    on = _grab(canvas, shots / "live_heat_on.png")
    live.activateWindow()
    qtbot.waitUntil(live.isActiveWindow, timeout=5_000)
    qtbot.keyClick(w, Qt.Key.Key_H)
    assert not live.heat_box.isChecked() and not canvas.heat_shown()
    off = _grab(canvas, shots / "live_heat_off.png")
    assert _changed(on, off) > 0.002  # the overlay changed what the screen shows
    live.heat_box.setChecked(True)
    assert canvas.heat_shown()

    # review: the stored heat map, coloured over the stored picture; H toggles it
    tab = ReviewTab(Database(spec.db_url, tmp_path))
    qtbot.addWidget(tab)
    tab.resize(1300, 850)
    tab.show()
    tab.activateWindow()
    try:
        qtbot.waitUntil(lambda: tab.idle and tab.detail.shown is not None, timeout=10_000)
        rc = tab.detail.canvas
        shown = tab.detail.shown.detail
        assert shown.heatmap_path == heat_path(shown.row.image_path)  # the record names it
        assert tab.detail.shown.heat is not None and rc.heat is not None and rc.heat_shown()
        assert tab.heat_box.isEnabled() and tab.heat_box.isChecked()
        r_on = _grab(rc, shots / "review_heat_on.png")
        qtbot.waitUntil(tab.isActiveWindow, timeout=5_000)
        qtbot.keyClick(QApplication.focusWidget() or tab.table, Qt.Key.Key_H)
        assert not rc.heat_shown() and not tab.heat_box.isChecked()
        r_off = _grab(rc, shots / "review_heat_off.png")
        assert _changed(r_on, r_off) > 0.002
    finally:
        tab.shutdown()


def test_a_detectors_parts_have_no_heat_map_and_the_toggle_is_greyed(qtbot, open_window, make_spec, parts,
                                                                     tiny_model, tmp_path):
    from ui.review.service import Database
    from ui.review.tab import ReviewTab

    spec = make_spec(parts, tiny_model)
    w = open_window(spec)
    assert w.start()
    run_until_idle(qtbot, w)
    assert w.live.canvas.result is not None and w.live.canvas.result.heat is None
    assert not w.live.heat_box.isEnabled() and not w.live.canvas.heat_shown()
    assert not list(tmp_path.rglob("*.heat.png"))
    tab = ReviewTab(Database(spec.db_url, tmp_path))
    qtbot.addWidget(tab)
    tab.show()
    try:
        qtbot.waitUntil(lambda: tab.idle and tab.detail.shown is not None, timeout=10_000)
        assert tab.detail.shown.detail.heatmap_path is None
        assert tab.detail.shown.heat is None and not tab.heat_box.isEnabled()
        assert not tab.detail.canvas.heat_shown()
    finally:
        tab.shutdown()
