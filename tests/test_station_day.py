"""Changeover on a running station (the shipped model on the sample images, a real SQLite file): the product,
lot and work order switch between parts without a restart, each part records them, the switch passes the
recipe's trust check and is audited; alarm rules raise recorded alarms that a user acknowledges."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from inspector.core.auth import Role
from inspector.core.config import config_from_dict
from inspector.core.errors import ConfigError, PermissionDenied
from tests.conftest import signed

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images"
ALL_DAY = {"D": "06:00-18:00", "N": "18:00-06:00"}
PRODUCTS = {"P1": {"recipe": {"name": "p1", "fail_conf": 0.02, "review_conf": 0.01}},
            "P2": {"recipe": {"name": "p2", "fail_conf": 0.99, "review_conf": 0.98}, "classes": ["scratch"]},
            "ghost": {"classes": ["ghost"]}}


def wait(pred, timeout=60.0, what=""):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("select product, lot, work_order, shift, recipe_sha256, verdict from inspections "
                           "order by id").fetchall()
    finally:
        con.close()


@pytest.fixture
def station(tmp_path):
    from station import Station, StationSpec

    cfg = config_from_dict({"station": {"name": "st"}, "shifts": ALL_DAY, "products": PRODUCTS,
                            "alarms": {"fail_streak": 2}})
    alarms: list = []
    committed: list = []
    db = tmp_path / "day.db"
    st = Station(StationSpec(str(SAMPLES), f"sqlite:///{db}", cfg, loop=True, product="P1", lot="L1"),
                 on_committed=committed.extend, on_alarm=lambda i, a: alarms.append((i, a)))
    st.start()
    yield st, db, committed, alarms
    st.stop()
    st.runner.join(30)
    st.finish("stopped")


@pytest.mark.slow
def test_changeover_lot_and_alarms_on_a_running_station(station):
    from db import AuditRepo
    from db.repositories.alarms import AlarmRepo

    st, db, committed, alarms = station
    wait(lambda: len(committed) >= 4, what="parts of P1")
    wait(lambda: alarms, what="the fail streak alarm")  # P1 fails anything it sees
    st.switch_product("P2")
    st.set_lot("L2", "WO-7")
    n = len(committed)
    wait(lambda: sum(1 for _, i in committed[n:] if i.day.product == "P2") >= 4, what="parts of P2")
    alarm_id, alarm = alarms[0]
    assert alarm.rule == "fail_streak" and alarm_id > 0
    assert st.acknowledge_alarm(alarm_id) == "local-admin (no users yet)"
    st.stop()
    st.runner.join(30)
    got = rows(db)
    products = [r[0] for r in got]
    first_p2 = products.index("P2")
    assert set(products[:first_p2]) == {"P1"} and set(products[first_p2:]) == {"P2"}, "one switch point"
    assert {r[1] for r in got[:first_p2]} == {"L1"} and got[-1][1:3] == ("L2", "WO-7")
    assert all(r[3] and r[3][-2:] in ("/D", "/N") for r in got)
    assert len({r[4] for r in got[:first_p2]}) == 1 and got[0][4] != got[-1][4], "each part names its recipe"
    assert "FAIL" in {r[5] for r in got[:first_p2]} and "FAIL" not in {r[5] for r in got[first_p2:]}, \
        "each product judged by its own recipe"
    with st.sessions() as s:
        actions = {e.action: e for e in AuditRepo.list(s)}
        assert actions["product.switch"].detail["product"] == "P2" and actions["lot.set"].detail["lot"] == "L2"
        assert actions["alarm.ack"].actor == "local-admin (no users yet)"
        assert AlarmRepo.open(s, "st") == [] and AuditRepo.verify(s).ok
    with pytest.raises(ConfigError, match="expects ghost"):
        st.switch_product("ghost")
    with pytest.raises(ConfigError, match="no product 'nope'"):
        st.switch_product("nope")
    assert st.day.product == "P2"


def test_a_switch_needs_a_user_and_a_registered_recipe_once_the_station_has_users(tmp_path):
    from db import TrustRepo, UserRepo
    from inspector.core.day import product_config
    from station import Station, StationSpec, open_db
    from station.day import recipe_hash

    url = f"sqlite:///{tmp_path / 'users.db'}"
    engine, sessions = open_db(url)
    boss, olga = signed("boss", Role.ADMIN), signed("olga", Role.OPERATOR)
    with sessions.begin() as s:
        UserRepo.add(s, None, "boss", "admin", "scrypt$x")
        UserRepo.add(s, boss, "olga", "operator", "scrypt$x")
    engine.dispose()
    cfg = config_from_dict({"products": PRODUCTS})
    st = Station(StationSpec(str(SAMPLES), url, cfg, max_frames=1))
    try:
        with pytest.raises(PermissionDenied, match="signed-in user"):
            st.switch_product("P2")
        with pytest.raises(PermissionDenied, match="not registered on this station"):
            st.switch_product("P2", olga)
        assert st.day.product == "" and st.runner._switch is None, "a refused switch changes nothing"
        with st.sessions.begin() as s:
            TrustRepo.add(s, boss, "recipe", recipe_hash(product_config(cfg, "P2")), "p2")
        assert st.switch_product("P2", olga).product == "P2"
        with pytest.raises(PermissionDenied, match="signed-in user"):
            st.set_lot("L1", "")
    finally:
        st.finish("stopped")


@pytest.mark.slow
def test_run_and_report_by_product_lot_and_shift(tmp_path, capsys):
    import csv
    import datetime as dt

    from inspector.cli import main
    from inspector.core.day import Shifts

    conf = tmp_path / "c.toml"
    conf.write_text('[shifts]\nD = "06:00-18:00"\nN = "18:00-06:00"\n\n[products.P2.recipe]\nname = "p2"\n'
                    'fail_conf = 0.9\nreview_conf = 0.8\n', encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    common = ["--source", str(SAMPLES), "--db", url, "--config", str(conf), "--quiet"]
    assert main(["run", *common, "--max-frames", "3", "--product", "P2", "--lot", "L7", "--work-order", "W1"]) == 0
    assert main(["run", *common, "--max-frames", "2", "--lot", "L8"]) == 0
    shift = Shifts({"D": "06:00-18:00", "N": "18:00-06:00"}).label_at(dt.datetime.now(dt.timezone.utc))

    def report(*args: str) -> list[dict]:
        out = tmp_path / "r.csv"
        assert main(["report", "--db", url, "--config", str(conf), "--out", str(out), *args]) == 0
        with open(out, encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))

    lot7 = report("--lot", "L7")
    assert len(lot7) == 3 and {(r["product"], r["lot"], r["work_order"]) for r in lot7} == {("P2", "L7", "W1")}
    assert len(report("--product", "P2")) == 3 and len(report("--lot", "L8")) == 2
    assert len(report("--shift", shift)) == 5 and report("--shift", shift, "--lot", "L8")[0]["shift"] == shift
    html = tmp_path / "r.html"
    assert main(["report", "--db", url, "--out", str(html), "--lot", "L7"]) == 0
    assert "lot L7" in html.read_text(encoding="utf-8") and "3 inspections" in capsys.readouterr().out
    assert main(["report", "--db", url, "--config", str(conf), "--out", str(html), "--shift", "2026-11-30/X"]) == 2
    assert "no shift 'X'" in capsys.readouterr().err
    assert main(["run", *common, "--product", "nope"]) == 2
    assert "--product 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_configuration_product_is_registered_by_a_signed_in_qc_on_first_use(tmp_path):
    """Issue 26: once users exist, a product of the configuration could not be switched to, and the error named a
    recipe file that does not exist. A QC choosing it registers its recipe (audited); an operator is told how."""
    from db import AuditRepo, TrustRepo, UserRepo
    from station import Station, StationSpec, open_db
    from station.day import recipe_hash

    url = f"sqlite:///{tmp_path / 'users.db'}"
    engine, sessions = open_db(url)
    boss, olga, quinn = signed("boss", Role.ADMIN), signed("olga", Role.OPERATOR), signed("quinn", Role.QC)
    with sessions.begin() as s:
        UserRepo.add(s, None, "boss", "admin", "scrypt$x")
        UserRepo.add(s, boss, "olga", "operator", "scrypt$x")
        UserRepo.add(s, boss, "quinn", "qc", "scrypt$x")
    engine.dispose()
    cfg = config_from_dict({"products": PRODUCTS})
    st = Station(StationSpec(str(SAMPLES), url, cfg, max_frames=1))
    try:
        with pytest.raises(PermissionDenied, match="choosing the product while signed in") as e:
            st.switch_product("P2", olga)
        assert "recipe add --product" in str(e.value) and "FILE --user" not in str(e.value)
        assert st.switch_product("P2", quinn).product == "P2"
        from inspector.core.day import product_config

        with st.sessions() as s:
            assert recipe_hash(product_config(cfg, "P2")) in TrustRepo.trusted(s, "recipe")
            assert any("recipe" in a.action and a.actor == "quinn" for a in AuditRepo.list(s)[:3])
        assert st.switch_product("", olga).product == ""
        assert st.switch_product("P2", olga).product == "P2"  # registered: an operator may now choose it
    finally:
        st.finish("stopped")


def test_recipe_add_registers_a_product_of_the_configuration(tmp_path, monkeypatch, capsys):
    from db import TrustRepo
    from inspector.cli import main
    from inspector.core.config import load_config
    from inspector.core.day import product_config
    from station import open_db
    from station.day import recipe_hash

    conf = tmp_path / "station.toml"
    conf.write_text('[products.P2.recipe]\nname = "p2"\nfail_conf = 0.9\nreview_conf = 0.8\n')
    url = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("INSPECTOR_NEW_PASSWORD", "boss-password-1")
    assert main(["user", "add", "boss", "--role", "admin", "--db", url]) == 0
    monkeypatch.setenv("INSPECTOR_PASSWORD", "boss-password-1")
    assert main(["recipe", "add", "--product", "nope", "--config", str(conf), "--db", url, "--user", "boss"]) == 2
    assert "defines no product 'nope'" in capsys.readouterr().err
    assert main(["recipe", "add", "--product", "P2", "--config", str(conf), "--db", url, "--user", "boss"]) == 0
    assert "registered recipe 'p2'" in capsys.readouterr().out
    engine, sessions = open_db(url)
    try:
        with sessions() as s:
            assert recipe_hash(product_config(load_config(conf), "P2")) in TrustRepo.trusted(s, "recipe")
    finally:
        engine.dispose()
