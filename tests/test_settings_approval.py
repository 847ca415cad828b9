"""Issue 24, settings: a configuration file's quality, storage, station, alarms, shadow and line sections are
approved by a signed-in admin before the next run once the station has users (like an unregistered recipe);
``[quality] min_contrast = 0`` from a hand-edited file (black frames judged PASS) needed no sign-in before."""

from __future__ import annotations

import pytest

from inspector.core.auth import Role
from inspector.core.config import Config, QualityConfig
from inspector.core.errors import PermissionDenied
from tests.conftest import signed


@pytest.fixture
def station_db(tmp_path):
    from db import UserRepo, open_database, session_factory

    url = f"sqlite:///{tmp_path / 'station.db'}"
    engine = open_database(url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        UserRepo.add(s, None, "boss", "admin", "scrypt$test")
        UserRepo.add(s, signed("boss", Role.ADMIN), "otto", "operator", "scrypt$test")
    yield url, sessions
    engine.dispose()


def start(sessions, cfg: Config) -> None:
    """What a run checks before it judges a part (``station.core.station_trust``)."""
    from station.core import station_trust

    station_trust(sessions, cfg)


def lax() -> Config:
    return Config(quality=QualityConfig(min_contrast=0), station={"name": "cell-1"})


def test_a_changed_quality_section_needs_an_admins_approval(station_db):
    from db import AuditRepo
    from db.repositories.settings import SettingsRepo
    from inspector.core.guarded import section_hashes

    _, sessions = station_db
    base = Config(station={"name": "cell-1"})
    start(sessions, base)  # the first run with users adopts what it finds (audited)
    start(sessions, base)
    with pytest.raises(PermissionDenied, match="quality settings changed"):
        start(sessions, lax())
    for who in (None, signed("otto", Role.OPERATOR), signed("otto", Role.ADMIN)):
        with sessions.begin() as s, pytest.raises(PermissionDenied):
            SettingsRepo.approve(s, who, "cell-1", section_hashes(lax()))
    with sessions.begin() as s:
        assert SettingsRepo.approve(s, signed("boss", Role.ADMIN), "cell-1", section_hashes(lax())) == ["quality"]
    start(sessions, lax())
    with pytest.raises(PermissionDenied, match="quality settings changed"):
        start(sessions, base)  # going back is a change too
    with sessions() as s:
        actions = [(e.actor, e.action) for e in AuditRepo.list(s) if e.action.startswith("settings.")]
        assert AuditRepo.verify(s).ok
    assert actions == [("boss", "settings.approve"), ("inspector (first run with users)", "settings.adopt")]


@pytest.mark.parametrize("section", [{"alarms": {"fail_streak": 0, "min_yield_pct": 0.0, "yield_window": 7}},
                                     {"station": {"name": "cell-2"}},
                                     {"storage": {"keep_pass_fraction": 0.0}}])
def test_other_guarded_sections_need_approval_too(station_db, section):
    _, sessions = station_db
    start(sessions, Config(station={"name": "cell-1"}))
    changed = Config(**{"station": {"name": "cell-1"}, **section})
    name = changed.station_name
    if name != "cell-1":  # another station name is another station: its first run adopts, the next change is held
        start(sessions, changed)
        changed = Config(station={"name": name}, quality=QualityConfig(min_contrast=0))
    with pytest.raises(PermissionDenied, match="settings changed"):
        start(sessions, changed)


def test_a_fresh_install_runs_any_settings(tmp_path):
    from db import open_database, session_factory

    engine = open_database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        start(session_factory(engine), lax())
    finally:
        engine.dispose()


def test_an_approval_edited_in_the_database_is_refused(station_db):
    import json

    from sqlalchemy import select

    from db.schema import DatabaseInfo

    _, sessions = station_db
    start(sessions, Config(station={"name": "cell-1"}))
    from inspector.core.guarded import section_hashes

    with sessions.begin() as s:
        row = s.scalars(select(DatabaseInfo).where(DatabaseInfo.key.like("settings:%"))).one()
        value = json.loads(row.value)
        value["sections"] = section_hashes(lax())
        row.value = json.dumps(value)
    with pytest.raises(PermissionDenied, match="changed outside Inspector"):
        start(sessions, lax())


def test_the_command_line_approves_with_a_sign_in(station_db, tmp_path, monkeypatch, capsys):
    from db.accounts import create_user
    from inspector.cli import main

    url, sessions = station_db
    with sessions.begin() as s:
        create_user(s, signed("boss", Role.ADMIN), "root", Role.ADMIN, "root-password-1")
    start(sessions, Config(station={"name": "cell-1"}))
    path = tmp_path / "station.toml"
    path.write_text('[station]\nname = "cell-1"\n[quality]\nmin_contrast = 0\n')
    assert main(["settings", "approve", "--config", str(path), "--db", url]) != 0  # no sign-in: refused
    monkeypatch.setenv("INSPECTOR_PASSWORD", "root-password-1")
    assert main(["settings", "approve", "--config", str(path), "--db", url, "--user", "root"]) == 0
    assert "quality changed" in capsys.readouterr().out
    start(sessions, lax())


def test_the_settings_window_approves_what_a_signed_in_admin_saves(qtbot, station_db, tmp_path):
    from inspector.core.auth import STATION_OPERATOR
    from inspector.core.config import load_config
    from ui.settings_dialog import SettingsDialog
    from ui.settings_guard import settings_guard

    _, sessions = station_db
    path = tmp_path / "station.toml"
    path.write_text('[station]\nname = "cell-1"\n')
    start(sessions, load_config(path))
    who = [STATION_OPERATOR]
    d = SettingsDialog(load_config(path), path, guard=settings_guard(lambda: sessions, lambda: who[0]))
    qtbot.addWidget(d)
    d.fields[("alarms", "yield_window")].editor.setText("7")
    d.save()
    qtbot.waitUntil(lambda: "Not saved" in d.status.text(), timeout=5000)
    got = []
    d.saved.connect(got.append)
    who[0] = signed("boss", Role.ADMIN)
    d.save()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert load_config(path).alarms.yield_window == 7
    start(sessions, load_config(path))  # approved by the save


@pytest.mark.parametrize("section", [{"run": {"mode": "stream"}},  # frames dropped: parts never judged
                                     {"camera": {"exposure_us": 50.0}},
                                     {"model": {"iou": 0.9}},  # boxes merged: defects counted differently
                                     {"model": {"timeout_s": 60.0}},
                                     {"camera": {"type": "genicam", "id": "other-camera"}}])
def test_the_run_mode_and_the_camera_from_a_config_file_need_approval(station_db, section):
    """Issue 24, second round: ``run.mode`` and ``[camera]`` were free in a hand-edited file."""
    from db.repositories.settings import SettingsRepo
    from inspector.core.guarded import section_hashes

    _, sessions = station_db
    start(sessions, Config(station={"name": "cell-1"}))
    changed = Config(**{"station": {"name": "cell-1"}, **section})
    with pytest.raises(PermissionDenied, match=f"{next(iter(section))} settings changed"):
        start(sessions, changed)
    with sessions.begin() as s:
        assert SettingsRepo.approve(s, signed("boss", Role.ADMIN), "cell-1", section_hashes(changed)) == [
            next(iter(section))]
    start(sessions, changed)


def test_the_run_queue_the_model_file_and_its_speed_settings_stay_free(station_db):
    _, sessions = station_db
    start(sessions, Config(station={"name": "cell-1"}))
    start(sessions, Config(station={"name": "cell-1"}, run={"queue_size": 32},
                           model={"path": "other.onnx", "backend": "onnxruntime", "threads": 2, "precision": "f32"}))


def test_an_approval_from_before_run_and_camera_were_guarded_keeps_running(station_db):
    """Existing stations: an approval recorded before ``run`` and ``camera`` were guarded adopts them once
    (audited); from then on a change to either is held like any other."""
    from db import AuditRepo
    from db.repositories.settings import SettingsRepo
    from inspector.core.guarded import section_hashes

    _, sessions = station_db
    cfg = Config(station={"name": "cell-1"}, run={"mode": "stream"})
    old = {k: v for k, v in section_hashes(cfg).items() if k not in ("run", "camera", "model")}
    with sessions.begin() as s:
        SettingsRepo.approve(s, signed("boss", Role.ADMIN), "cell-1", old)
    start(sessions, cfg)
    start(sessions, cfg)
    with sessions() as s:
        adopted = [e for e in AuditRepo.list(s) if e.action == "settings.adopt"]
        assert len(adopted) == 1 and adopted[0].detail["note"] == "newly guarded: camera, model, run"
    with pytest.raises(PermissionDenied, match="run settings changed"):
        start(sessions, Config(station={"name": "cell-1"}))


@pytest.mark.parametrize("field,value", [(("run", "mode"), "stream"), (("camera", "exposure_us"), "900")])
def test_the_settings_window_saves_run_mode_and_camera_only_for_a_signed_in_admin(qtbot, station_db, tmp_path,
                                                                                   field, value):
    from inspector.core.auth import STATION_OPERATOR
    from inspector.core.config import load_config
    from ui.settings_dialog import SettingsDialog
    from ui.settings_guard import settings_guard

    _, sessions = station_db
    path = tmp_path / "station.toml"
    path.write_text('[station]\nname = "cell-1"\n')
    start(sessions, load_config(path))
    who = [STATION_OPERATOR]  # nobody signed in
    d = SettingsDialog(load_config(path), path, guard=settings_guard(lambda: sessions, lambda: who[0]))
    qtbot.addWidget(d)
    editor = d.fields[field].editor
    editor.setCurrentText(value) if hasattr(editor, "setCurrentText") else editor.setText(value)
    d.save()
    qtbot.waitUntil(lambda: "Not saved" in d.status.text(), timeout=5000)
    assert load_config(path) == Config(station={"name": "cell-1"})  # nothing written
    got = []
    d.saved.connect(got.append)
    who[0] = signed("boss", Role.ADMIN)
    d.save()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    saved = getattr(load_config(path), field[0]).model_dump(mode="json")[field[1]]
    assert str(saved).startswith(value)
    start(sessions, load_config(path))  # approved by the save


def test_a_products_camera_nodes_need_no_new_approval(station_db):
    """The approval covers the configuration as written; running a product (its recipe and camera nodes applied)
    is checked against that, not refused as a changed camera."""
    from inspector.core.day import product_config
    from station.core import station_trust

    _, sessions = station_db
    base = Config(station={"name": "cell-1"}, products={"P1": {"camera": {"ExposureTime": 500}}})
    start(sessions, base)
    station_trust(sessions, product_config(base, "P1"), base=base)
    with pytest.raises(PermissionDenied, match="camera settings changed"):
        start(sessions, product_config(base, "P1"))  # the product's nodes as if written in [camera]
