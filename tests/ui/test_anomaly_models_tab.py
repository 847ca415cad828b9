"""The Models tab with anomaly models: a training job of the anomaly kind in its own process (progress, trusted by
who started it), listed with its task, compared against the active detector on a folder of parts.

Generated surfaces (a tiny model in seconds): nothing from ``../shared`` is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.anomaly_parts import write_surfaces
from tests.conftest import QC
from tests.ui.test_models_tab import _active, _select, _tab, service  # noqa: F401 - service: a fixture

pytestmark = pytest.mark.model


@pytest.mark.slow
def test_an_anomaly_job_trains_in_its_own_process_and_its_model_is_listed_and_compared(qtbot, service,  # noqa: F811
                                                                                         tmp_path):
    good = tmp_path / "good"
    write_surfaces(good, 12, False, seed=0)
    write_surfaces(tmp_path / "parts" / "good", 4, False, seed=5)
    write_surfaces(tmp_path / "parts" / "blob", 4, True, seed=6)
    tab = _tab(qtbot, service, QC())
    tab.train(data=good, budget="30s", name="an-window", kind="anomaly")
    qtbot.waitUntil(lambda: tab.job is not None, timeout=30_000)
    assert tab.job.request["kind"] == "anomaly" and "Training anomaly model an-window" in tab.job_label.text()
    assert not tab.cancel_button.isEnabled()  # it ends within its budget: nothing to stop after
    assert tab.plot.isHidden()  # no epochs to plot
    qtbot.waitUntil(lambda: tab.job.status in ("done", "failed", "ended"), timeout=240_000)
    assert tab.job.status == "done", (tab.job_label.text(), (tab.job.folder / "train.log").read_text()[-2000:])
    name = "an-window/an-window.onnx"
    qtbot.waitUntil(lambda: tab.idle and tab.overview is not None
                    and any(m.name == name for m in tab.overview.models), timeout=60_000)
    m = next(m for m in tab.overview.models if m.name == name)
    assert m.trusted_by.startswith("qc-anna") and m.card.task == "anomaly"
    _select(tab, name)
    row = next(i for i, k in enumerate(tab.overview.models) if k.name == name)
    assert tab.models_table.item(row, 4).text() == "anomaly"
    assert tab.models_table.item(0, 4).text() == "detect"  # the active detector
    assert "Anomaly: learnt from" in tab.card.toPlainText()
    tab.compare(data=tmp_path / "parts")
    qtbot.waitUntil(lambda: tab.comparison is not None and tab.idle, timeout=120_000)
    r = tab.comparison.result
    assert r["mode"] == "parts" and r["images"] == 8 and r["challenger"]["task"] == "anomaly"
    assert tab.compare_table.item(0, 1).text() == "–"  # no mAP for an anomaly model
    assert "same verdict on" in tab.compare_note.text() and "image AUROC" in tab.compare_note.text()
    tab.promote(reason="learns the good tiles, no labels needed")  # the comparison just recorded is shown
    qtbot.waitUntil(lambda: tab.idle and _active(service) is not None, timeout=60_000)
    assert _active(service).sha256 == m.sha256 and _active(service).actor == "qc-anna"
    shots = Path(os.environ.get("INSPECTOR_TEST_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    tab.resize(1300, 800)
    assert tab.grab().save(str(shots / "models_tab_anomaly.png"))


def test_anomaly_training_on_too_few_confirmed_good_parts_is_one_sentence(qtbot, service, tmp_path):  # noqa: F811
    tab = _tab(qtbot, service, QC())
    tab.train(data=None, budget="1m", name="from-good", kind="anomaly")  # "the parts QC confirmed good"
    qtbot.waitUntil(lambda: tab.idle and tab.error.isVisibleTo(tab), timeout=30_000)
    assert "too few to learn from" in tab.error.text.text() and "0 picture(s)" in tab.error.text.text()
    assert tab.job is None and not (tmp_path / "jobs").exists()
