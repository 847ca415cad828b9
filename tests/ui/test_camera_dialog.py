"""The window's camera picker with pylon's emulator: found, previewed live, and the choice saved into
[camera] (exposure and gain with it)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("pypylon", reason="pypylon is not installed: pip install -e \".[cameras]\" (the test extra "
                                      "pulls it in)")
os.environ.setdefault("PYLON_CAMEMU", "2")

from inspector.core.config import Config, load_config  # noqa: E402
from ui.camera_dialog import CameraDialog  # noqa: E402


def test_find_preview_and_use_the_emulated_camera(qtbot, tmp_path):
    path = tmp_path / "config.toml"
    d = CameraDialog(Config(), path)
    qtbot.addWidget(d)
    d.find()
    qtbot.waitUntil(lambda: d.cameras.count() >= 2, timeout=30000)
    assert "0815-0000" in d.cameras.item(0).text() and d.cameras.currentRow() == 0
    d.cameras.setCurrentRow(1)
    d.exposure.setText("1500")
    d.gain.setText("2")
    d.start_preview()
    qtbot.waitUntil(lambda: d.frames >= 2, timeout=30000)
    assert not d.picture.pixmap().isNull() and "Emulation (0815-0001)" in d.status.text()
    with qtbot.waitSignal(d.saved, timeout=30000):
        d.save()
    assert d.preview is None  # the camera was closed before the choice was saved
    cam = load_config(path).camera
    assert (cam.type.value, cam.id, cam.exposure_us, cam.gain_db) == ("pylon", "0815-0001", 1500.0, 2.0)


def test_a_wrong_number_and_no_camera_are_one_sentence(qtbot, tmp_path):
    d = CameraDialog(Config(), tmp_path / "c.toml", discoverer=lambda cti: ([], ["genicam: no GenTL producer."]))
    qtbot.addWidget(d)
    d.save()
    assert d.status.text() == "Pick a camera first (Find cameras)."
    d.find()
    qtbot.waitUntil(lambda: "0 camera(s) found." in d.status.text(), timeout=10000)
    assert "no GenTL producer" in d.status.text() and not (tmp_path / "c.toml").exists()
