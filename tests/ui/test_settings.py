"""The settings dialog over the typed configuration: descriptions shown, bad values refused, nothing half-saved."""

from __future__ import annotations

import pytest

from inspector.core.config import Config, load_config, save_config
from tests.conftest import signed
from ui.settings_dialog import SettingsDialog


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "inspector.toml"
    cfg = Config().model_copy(update={"run": Config().run.model_copy(update={"station": "line-4"})})
    save_config(cfg, path)
    return path


def dialog(qtbot, path, cfg=None):
    d = SettingsDialog(cfg or load_config(path), path)
    qtbot.addWidget(d)
    d.show()
    return d


def test_every_field_is_shown_with_its_description(qtbot, saved):
    d = dialog(qtbot, saved)
    assert set(Config.model_fields) - set(d.sections) == {"products", "shifts"}  # tables: the file, the live screen
    for section in d.sections:
        for name, info in Config.model_fields[section].annotation.model_fields.items():
            f = d.fields[(section, name)]
            assert f.help.text() == info.description and info.description
    assert d.fields[("run", "station")].editor.text() == "line-4"
    assert d.fields[("model", "backend")].editor.currentText() == "auto"


@pytest.mark.parametrize("key, text, error", [
    (("model", "imgsz"), "333", "multiple of 32"),
    (("model", "imgsz"), "big", "valid integer"),
    (("recipe", "fail_conf"), "1.5", "less than or equal to 1"),
    (("recipe", "roi"), "0.5, 0.1, 0.2, 0.9", "roi must be fractions"),
    (("recipe", "classes"), "{scratch: 1", "JSON"),
    (("camera", "open_timeout_s"), "0", "greater than 0"),
])
def test_a_wrong_value_is_shown_next_to_its_field_and_nothing_is_saved(qtbot, saved, key, text, error):
    before = saved.read_bytes()
    d = dialog(qtbot, saved)
    d.fields[key].editor.setText(text)
    d.buttons.button(d.buttons.StandardButton.Save).click()
    qtbot.wait(50)
    assert error in d.errors()[".".join(key)]
    assert not d.fields[key].error.isHidden()
    assert d.isVisible() and "Not saved" in d.status.text()
    assert saved.read_bytes() == before
    assert d.tabs.currentIndex() == list(Config.model_fields).index(key[0])  # the operator sees the field


def test_a_rule_across_fields_is_shown_at_both(qtbot, saved):
    d = dialog(qtbot, saved)
    d.fields[("recipe", "review_conf")].editor.setText("0.8")
    assert d.validate() is None
    errors = d.errors()
    assert "must not be above" in errors["recipe.review_conf"] and "must not be above" in errors["recipe.fail_conf"]


def test_valid_settings_are_saved_and_reload(qtbot, saved):
    d = dialog(qtbot, saved)
    got = []
    d.saved.connect(got.append)
    d.fields[("model", "imgsz")].editor.setText("416")
    d.fields[("recipe", "roi")].editor.setText("0.1, 0.2, 0.9, 0.8")
    d.fields[("recipe", "classes")].editor.setText('{"scratch": {"fail_conf": 0.7}}')
    d.fields[("run", "mode")].editor.setCurrentText("stream")
    d.save()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    cfg = load_config(saved)
    assert cfg.model.imgsz == 416 and cfg.recipe.roi == (0.1, 0.2, 0.9, 0.8)
    assert cfg.recipe.classes["scratch"].fail_conf == 0.7 and cfg.run.mode.value == "stream"
    assert cfg.run.station == "line-4" and got[0] == cfg


def test_a_failed_write_is_shown_and_the_dialog_stays(qtbot, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    d = dialog(qtbot, blocker / "inspector.toml", Config())
    d.save()
    qtbot.waitUntil(lambda: "Not saved" in d.status.text(), timeout=5000)
    assert d.isVisible() and d.buttons.isEnabled()


def test_the_window_saves_to_the_config_file_and_uses_it_next_start(qtbot, tmp_path, make_spec):
    from ui.controller import LiveController
    from ui.main_window import MainWindow

    path = tmp_path / "settings.toml"
    w = MainWindow(LiveController(lambda *a, **k: None), make_spec(tmp_path, None), path)
    qtbot.addWidget(w)
    d = w.open_settings()
    assert d.path == path
    d.fields[("recipe", "name")].editor.setText("bracket-B")
    d.save()
    qtbot.waitUntil(lambda: w.spec.config.recipe.name == "bracket-B", timeout=5000)
    assert load_config(path).recipe.name == "bracket-B"


@pytest.fixture
def station_db(tmp_path):
    """A station database with an admin, a QC and an operator (issue 12.5)."""
    from db import UserRepo, open_database, session_factory
    from inspector.core.auth import Role

    engine = open_database(f"sqlite:///{tmp_path / 'station.db'}")
    sessions = session_factory(engine)
    with sessions.begin() as s:
        UserRepo.add(s, None, "boss", "admin", "scrypt$test")
        UserRepo.add(s, signed("boss", Role.ADMIN), "anna", "qc", "scrypt$test")
    yield sessions
    engine.dispose()


def test_verdict_settings_need_a_signed_in_user_and_are_audited(qtbot, saved, station_db):
    """Issue 12.5: fail_conf saved while not signed in was how a lax recipe got in; camera settings stay free."""
    from db import AuditRepo, TrustRepo
    from inspector.core.auth import STATION_OPERATOR, Role
    from inspector.detection.registry import recipe_sha256
    from ui.settings_guard import settings_guard

    who = [STATION_OPERATOR]
    before = saved.read_bytes()
    d = SettingsDialog(load_config(saved), saved, guard=settings_guard(lambda: station_db, lambda: who[0]))
    qtbot.addWidget(d)
    d.fields[("recipe", "fail_conf")].editor.setText("0.9")
    d.fields[("recipe", "review_conf")].editor.setText("0.85")
    d.save()
    qtbot.waitUntil(lambda: "Not saved" in d.status.text(), timeout=5000)
    assert "signed-in" in d.status.text() and saved.read_bytes() == before
    got = []
    d.saved.connect(got.append)
    who[0] = signed("anna", Role.QC)
    d.save()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert load_config(saved).recipe.fail_conf == 0.9
    with station_db() as s:
        entry = next(e for e in AuditRepo.list(s) if e.action == "settings.change")
        trusted = TrustRepo.trusted(s, "recipe")
        assert AuditRepo.verify(s).ok
    assert entry.actor == "anna" and entry.detail["recipe.fail_conf"] == {"old": 0.5, "new": 0.9}
    assert recipe_sha256(got[0].recipe.model_dump(mode="json")) in trusted


def test_operator_settings_stay_free(qtbot, saved, station_db):
    from inspector.core.auth import STATION_OPERATOR
    from ui.settings_guard import settings_guard

    d = SettingsDialog(load_config(saved), saved, guard=settings_guard(lambda: station_db, lambda: STATION_OPERATOR))
    qtbot.addWidget(d)
    got = []
    d.saved.connect(got.append)
    d.fields[("camera", "open_timeout_s")].editor.setText("7")
    d.save()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert load_config(saved).camera.open_timeout_s == 7


def test_a_product_edit_is_audited_only_when_its_save_happened(saved, station_db):
    """The product editor's guard runs the file's write inside its transaction: a write that fails leaves no
    audit entry and no trusted recipe; one that succeeds leaves exactly one of each."""
    from db import AuditRepo, TrustRepo
    from inspector.core.auth import Role
    from inspector.core.config import RecipeConfig
    from ui.settings_guard import product_guard

    guard = product_guard(lambda: station_db)
    old, new = RecipeConfig(), RecipeConfig(name="flange", fail_conf=0.8)
    anna = signed("anna", Role.QC)

    def fails() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        guard("flange.80", old, new, anna, fails)
    with station_db() as s:
        assert [e for e in AuditRepo.list(s) if e.action == "product.edit"] == []
        assert TrustRepo.trusted(s, "recipe") == {}
    wrote = []
    assert guard("flange.80", old, new, anna, lambda: wrote.append(True)) == "anna" and wrote == [True]
    with station_db() as s:
        edits = [e for e in AuditRepo.list(s) if e.action == "product.edit"]
        assert len(edits) == 1 and edits[0].target == "product:flange.80" and len(TrustRepo.trusted(s, "recipe")) == 1
        assert AuditRepo.verify(s).ok
