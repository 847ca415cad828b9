"""The Models tab with real widgets (offscreen), a real SQLite database, real models and a real training process:
who sees it, the list and cards, promote and roll back (and a forged actor refused), compare in a worker, and a
training job followed live, found again after the tab is closed, and cancelled cleanly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from inspector.core.auth import Role
from tests.conftest import QC, signed, staff

ROOT = Path(__file__).resolve().parents[2]
PARTS_ONNX = ROOT / "models" / "parts-v2" / "parts-v2.onnx"


@pytest.fixture
def service(tmp_path, tiny_model):
    from db import TrustRepo, UserRepo
    from inspector.core.config import config_from_dict
    from inspector.detection.registry import sha256_file
    from station import open_db
    from ui.models.service import ModelsService
    from ui.review.service import Database

    url = f"sqlite:///{tmp_path / 'models.db'}"
    engine, sessions = open_db(url)
    with sessions.begin() as s:  # as 'inspector model add' does: the file's place in the audit entry
        for f in (tiny_model, tiny_model.with_suffix(".onnx")):
            TrustRepo.add(s, None, "model", sha256_file(f), f.name, {"file": str(f)})
    with sessions.begin() as s:
        staff(s)

        UserRepo.add(s, signed("root-admin", Role.ADMIN), "op", "operator", "scrypt$test")
    engine.dispose()
    db = Database(url, tmp_path)
    yield ModelsService(db, config_from_dict({"station": {"name": "cell-1"}}), jobs_root=tmp_path / "jobs")
    db.close()


def _tab(qtbot, service, actor=None):
    from ui.models.tab import ModelsTab

    tab = ModelsTab(service)
    qtbot.addWidget(tab)
    if actor is not None:
        tab.actor = actor
        qtbot.waitUntil(lambda: tab.overview is not None and tab.idle, timeout=30000)
    return tab


def _select(tab, name: str) -> None:
    row = next(i for i, m in enumerate(tab.overview.models) if m.name == name)
    tab.models_table.selectRow(row)


def _active(service):
    from db import PromotionRepo

    with service.db.sessions()() as s:
        return PromotionRepo.active(s, "cell-1")


@pytest.mark.model
def test_only_qc_and_admin_see_the_models_and_promote_or_roll_back(qtbot, service):
    tab = _tab(qtbot, service)
    assert not tab.allowed and tab.content.isHidden()
    tab.actor = signed("op", Role.OPERATOR)
    assert not tab.allowed and tab.content.isHidden()
    tab.actor = QC()
    qtbot.waitUntil(lambda: tab.overview is not None and tab.idle, timeout=30000)
    names = [tab.models_table.item(r, 1).text() for r in range(tab.models_table.rowCount())]
    assert "tiny/tiny.onnx" in names and names[0] == "parts-v2/parts-v2.onnx"
    assert tab.models_table.item(0, 0).text() == "●"  # the configuration's model, active before any promotion
    _select(tab, "tiny/tiny.onnx")
    assert "Classes: scratch" in tab.card.toPlainText() and "never promoted" in tab.card.toPlainText()
    from tests.test_promotion_gate import PARTS_ONNX, compared

    compared(service.db.sessions(), PARTS_ONNX, tab.selected().path)  # a promotion needs a comparison (issue 26)
    tab.promote(reason="fewer false rejects on lot 12")
    qtbot.waitUntil(lambda: tab.idle and tab.overview.models[0].name == "tiny/tiny.onnx", timeout=30000)
    assert _active(service).actor == "qc-anna" and tab.models_table.item(0, 0).text() == "●"
    assert "promote by qc-anna" in tab.card.toPlainText()
    assert [label for label, _ in tab.overview.earlier] == ["parts-v2/parts-v2.onnx"]
    tab.rollback(target=tab.overview.earlier[0][1], reason="escapes on lot 13")
    qtbot.waitUntil(lambda: tab.idle and tab.overview.models[0].name == "parts-v2/parts-v2.onnx", timeout=30000)
    assert _active(service).action == "rollback"
    # an operator claiming the QC role is refused where it is stored; nothing changes
    tab.actor = signed("op", Role.QC)
    qtbot.waitUntil(lambda: tab.idle, timeout=30000)
    _select(tab, "tiny/tiny.onnx")
    tab.promote(reason="I like it")
    qtbot.waitUntil(lambda: tab.idle and tab.error.isVisibleTo(tab), timeout=30000)
    assert "operator on this station" in tab.error.text.text()
    assert _active(service).action == "rollback"


@pytest.mark.model
def test_the_tab_promotes_and_rolls_back_by_product_as_the_command_line_does(qtbot, service, tmp_path):
    """Issue 30: 'For: Product P' promotes for every station that runs P (the target 'product:P', as 'inspector
    model promote MODEL --product P'), with the same guard: a comparison on record, a QC or admin signed in."""
    from db import PromotionRepo
    from inspector.core.config import config_from_dict
    from station.models import active_promotion
    from tests.test_promotion_gate import compared
    from ui.models.service import ModelsService

    cfg = config_from_dict({"station": {"name": "cell-1"}, "products": {"P": {}, "Q": {}}})
    tab = _tab(qtbot, ModelsService(service.db, cfg, jobs_root=tmp_path / "jobs"), QC())
    labels = [tab.scope.itemText(i) for i in range(tab.scope.count())]
    assert labels == ["This station (cell-1)", "Product P (all its stations)",
                      "Product Q (all its stations)"]
    tab.set_product("P")
    qtbot.waitUntil(lambda: tab.idle and tab.overview.product == "P", timeout=30000)
    assert tab.status.text().startswith("Product P: model parts-v2/parts-v2.onnx for every station")
    _select(tab, "tiny/tiny.onnx")
    tab.promote(reason="untested")  # no comparison on record: a QC is refused, nothing recorded
    qtbot.waitUntil(lambda: tab.idle and tab.error.isVisibleTo(tab), timeout=30000)
    assert "run Compare first" in tab.error.text.text()
    sessions = service.db.sessions()
    assert active_promotion(sessions, "s-any", "P") is None
    compared(sessions, PARTS_ONNX, tab.selected().path)
    tab.promote(reason="better on lot 12, every line")
    qtbot.waitUntil(lambda: tab.idle and tab.overview.models[0].name == "tiny/tiny.onnx", timeout=30000)
    for station in ("line-1", "line-2"):  # every station running P, not this station alone
        promo = active_promotion(sessions, station, "P")
        assert promo.station == "product:P" and promo.actor == "qc-anna" and promo.name == "tiny/tiny.onnx"
    assert active_promotion(sessions, "line-1", "Q") is None and _active(service) is None
    assert "for product P" in tab.status.text() or tab.overview.product == "P"
    assert [label for label, _ in tab.overview.earlier] == ["parts-v2/parts-v2.onnx"]
    tab.grab().save(str(tmp_path / "models-by-product.png"))
    tab.rollback(target=tab.overview.earlier[0][1], reason="escapes on lot 13")
    qtbot.waitUntil(lambda: tab.idle and tab.overview.models[0].name == "parts-v2/parts-v2.onnx", timeout=30000)
    with sessions() as s:
        assert PromotionRepo.active(s, "product:P").action == "rollback"
    # an operator claiming the QC role is refused where it is stored, for a product as for a station
    tab.actor = signed("op", Role.QC)
    qtbot.waitUntil(lambda: tab.idle, timeout=30000)
    tab.set_product("P")
    qtbot.waitUntil(lambda: tab.idle and tab.overview.product == "P", timeout=30000)
    _select(tab, "tiny/tiny.onnx")
    tab.promote(reason="I like it", force=False)
    qtbot.waitUntil(lambda: tab.idle and tab.error.isVisibleTo(tab), timeout=30000)
    assert "operator on this station" in tab.error.text.text()
    with sessions() as s:
        assert PromotionRepo.active(s, "product:P").action == "rollback"


@pytest.mark.model
def test_the_window_shows_the_tab_only_while_a_qc_is_signed_in(qtbot, make_spec, parts, tiny_model):
    from ui.app import build_window

    window = build_window(make_spec(parts, tiny_model))
    qtbot.addWidget(window)
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    models, review = titles.index("Models"), titles.index("Review")
    assert not window.tabs.isTabVisible(models)
    window.tabs.widget(review).set_actor(QC())
    assert window.tabs.isTabVisible(models)
    window.tabs.widget(review).set_actor(signed("op", Role.OPERATOR))
    assert not window.tabs.isTabVisible(models)
    qtbot.waitUntil(lambda: window.tabs.widget(models).idle, timeout=30000)


@pytest.fixture
def few_parts(tmp_path, synth_data) -> Path:
    out = tmp_path / "held-out"
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True)
    for img in sorted((synth_data / "images").glob("*.jpg"))[:8]:
        shutil.copy(img, out / "images")
        shutil.copy(synth_data / "labels" / f"{img.stem}.txt", out / "labels")
    shutil.copy(synth_data / "classes.txt", out)
    return out


@pytest.mark.model
def test_compare_runs_in_a_worker_and_shows_both_sides_and_the_disagreements(qtbot, service, few_parts):
    tab = _tab(qtbot, service, QC())
    _select(tab, "tiny/tiny.onnx")
    tab.compare(data=few_parts)
    qtbot.waitUntil(lambda: tab.comparison is not None and tab.idle, timeout=120000)
    r = tab.comparison.result
    assert r["images"] == 8 and r["champion"]["model"].endswith("parts-v2.onnx")
    assert r["challenger"]["model"].endswith("tiny.onnx")
    for col, side in enumerate(("champion", "challenger")):
        assert tab.compare_table.item(0, col).text() == f"{r[side]['map50']:.3f}"
        assert tab.compare_table.item(4, col).text() == str(r[side]["escapes"])
    assert f"disagree on {r['disagreements']['count']} part" in tab.compare_note.text()
    if r["disagreements"]["count"]:
        assert not tab.gallery.pixmap().isNull() and tab.gallery.pixmap().height() > 100


@pytest.mark.slow
@pytest.mark.model
def test_training_runs_in_its_own_process_survives_the_tab_and_cancels_cleanly(qtbot, service, synth_data):
    tab = _tab(qtbot, service, QC())
    tab.train(data=synth_data, budget="5m", name="from-window", imgsz=64, epochs=40)
    qtbot.waitUntil(lambda: tab.job is not None and bool(tab.job.state.epochs), timeout=180000)
    job = tab.job
    # the label names the newest epoch done (a fast epoch may already be the second by now)
    assert job.alive and job.status == "training"
    assert re.search(r"epoch [1-9]\d*/\d+", tab.job_label.text()), tab.job_label.text()
    assert tab.plot.series()[0] and tab.cancel_button.isEnabled()
    tab.close()  # the window goes; the training process does not
    tab._timer.stop()
    again = _tab(qtbot, service, QC())
    qtbot.waitUntil(lambda: again.job is not None and again.job.folder == job.folder, timeout=30000)
    assert again.job.alive and again.job.status == "training"
    again.cancel_training()
    qtbot.waitUntil(lambda: again.job.status == "done", timeout=180000)
    result = again.job.state.result
    assert result["stopped_by"] == "cancelled" and result["interrupted"] and result["files"]
    assert (Path(result["out"]) / "from-window.pt").is_file()
    # the job's output is trusted by the QC signed in here, and listed with its card
    qtbot.waitUntil(lambda: again.idle and any(m.name == "from-window/from-window.pt" for m in again.overview.models),
                    timeout=30000)
    m = next(m for m in again.overview.models if m.name == "from-window/from-window.pt")
    assert m.trusted_by.startswith("qc-anna") and m.card.stopped_by == "cancelled"


def test_the_health_panel_names_the_model_that_judged_the_newest_part(qtbot):
    from ui.controller import RunInfo
    from ui.health import HealthPanel

    panel = HealthPanel()
    qtbot.addWidget(panel)
    panel.show_run(RunInfo(3, "parts/", False, "part", "parts-v2", "a" * 64, "default", "sqlite://"))
    assert panel.value("model") == f"parts-v2 · {'a' * 12}"
    panel.show_model("b" * 64)  # a promotion took over between two parts
    assert panel.value("model") == f"promoted · {'b' * 12}"
    panel.show_model("a" * 64)  # rolled back
    assert panel.value("model") == f"parts-v2 · {'a' * 12}"


@pytest.mark.model
def test_a_forged_qc_cannot_start_a_training(qtbot, service, synth_data, tmp_path):
    tab = _tab(qtbot, service, signed("op", Role.QC))  # the operator claims the QC role
    tab.train(data=synth_data, budget="5m", name="forged", imgsz=64, epochs=1)
    qtbot.waitUntil(lambda: tab.idle and tab.error.isVisibleTo(tab), timeout=30000)
    assert "operator on this station" in tab.error.text.text()
    assert tab.job is None and not (tmp_path / "jobs").exists()


@pytest.mark.model
def test_training_on_the_reviewed_parts_of_an_empty_station_is_one_sentence(qtbot, service, tmp_path):
    tab = _tab(qtbot, service, QC())
    tab.train(data=None, budget="5m", name="from-reviews")  # "the reviewed parts (export)"
    qtbot.waitUntil(lambda: tab.idle and tab.error.isVisibleTo(tab), timeout=30000)
    assert "nothing to train on" in tab.error.text.text() and "0 images" in tab.error.text.text()
    assert tab.job is None and not (tmp_path / "jobs").exists()
