"""One plant, many stations (issue 30): each station signs its rows with its own Ed25519 key; anyone checks them
with the public keys in the database, with no private key (and no HMAC key file) at hand.

Runs on SQLite and, with INSPECTOR_TEST_PG_URL, on PostgreSQL (the ``db_url`` fixture).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from db import AuditRepo, DayFilter, InspectionRepo, ModelRepo, RunRepo, open_database, session_factory
from db.plant import attach_signer
from db.repositories.stations import StationRepo
from inspector.core.errors import StorageError
from inspector.core.signing import ensure_key_pair, private_path, read_public
from inspector.core.types import Verdict


def _key(home: Path) -> str:
    return read_public(ensure_key_pair(home))


def test_a_station_key_is_made_once_owner_only_and_its_public_half_is_what_is_registered(tmp_path):
    pub = ensure_key_pair(tmp_path)
    first = read_public(pub)
    assert ensure_key_pair(tmp_path) == pub and read_public(pub) == first and len(first) == 64
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(private_path(tmp_path)).st_mode) == 0o600
    with pytest.raises(StorageError, match="private key"):
        read_public(private_path(tmp_path))


class Plant:
    """Three stations on one database, each with its own data folder and key, registered by the first admin."""

    def __init__(self, url: str, folder: Path, names=("s1", "s2", "s3")) -> None:
        self.url, self.engine = url, open_database(url)
        self.homes = {n: folder / n for n in names}
        with session_factory(self.engine)() as s, s.begin():
            for n in names:
                StationRepo.add(s, None, n, _key(self.homes[n]))
        self.sessions = {}
        for n in names:
            self.sessions[n] = session_factory(self.engine)
            assert attach_signer(self.sessions[n], self.homes[n], station=n).name == n

    def run(self, name: str, parts: int, mk, on_behalf_of: str | None = None) -> int:
        """A run of ``on_behalf_of`` (default: the station itself) written by station ``name``."""
        with self.sessions[name]() as s, s.begin():
            model = ModelRepo.get_or_create(s, "tiny", "/models/tiny.pt", "ab" * 32, ["scratch"])
            run = RunRepo.start(s, "folder:parts", "{}", "default", model.id, on_behalf_of or name, "folder")
            AuditRepo.append(s, actor=f"station:{name}", action="run.start", target=f"run:{run.id}")
            InspectionRepo.add_many(s, run.id, [(mk.inspection(q, Verdict.FAIL if q % 3 else Verdict.PASS), None)
                                                for q in range(parts)])
        return run.id

    def verify(self, monkeypatch, empty: Path):
        """``audit verify`` as from a fourth PC: a plain session, a data folder with no key of any kind."""
        empty.mkdir(exist_ok=True)
        monkeypatch.setenv("INSPECTOR_HOME", str(empty))
        with session_factory(self.engine)() as s:
            return AuditRepo.verify(s)


@pytest.fixture
def plant(db_url, tmp_path):
    p = Plant(db_url, tmp_path)
    yield p
    p.engine.dispose()


def test_each_station_signs_its_rows_and_any_pc_verifies_them_with_public_keys_only(plant, mk, monkeypatch,
                                                                                     tmp_path):
    for n in ("s1", "s2", "s3"):
        plant.run(n, 5, mk)
    rep = plant.verify(monkeypatch, tmp_path / "pc4")
    assert rep.ok, rep.problems
    assert [line.split(":")[0] for line in rep.stations] == ["station s1", "station s2", "station s3"]
    assert all("1 entries" in line for line in rep.stations) and not rep.notes
    with plant.sessions["s1"]() as s:
        assert {st.name: st.entries for st in StationRepo.list(s)} == {"s1": 1, "s2": 1, "s3": 1}


def test_a_row_signed_by_one_station_but_claiming_another_is_reported(plant, mk, monkeypatch, tmp_path):
    plant.run("s2", 2, mk)
    plant.run("s1", 3, mk, on_behalf_of="s2")  # s1's key, s2's name: a stolen panel PC writing as another line
    rep = plant.verify(monkeypatch, tmp_path / "pc4")
    assert not rep.ok
    forged = [p for p in rep.problems if "signed with the key of station 's1' but claims station 's2'" in p]
    assert len(forged) == 3, rep.problems


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE inspections SET verdict = 'PASS' WHERE verdict = 'FAIL'", "signature by station 's1' does not match"),
    ("UPDATE inspections SET signer = 's2' WHERE id = 1", "signature by station 's2' does not match"),
    ("DELETE FROM audit_log", "its chain ends at entry 0, but its anchor records entry"),
    ("UPDATE stations SET public_key = '" + "ab" * 32 + "' WHERE name = 's1'", "not signed by its key"),
    ("DELETE FROM stations WHERE name = 's1'", "not registered"),
])
def test_rows_or_chains_changed_behind_inspectors_back_are_reported(plant, mk, monkeypatch, tmp_path, sql, expected):
    plant.run("s1", 4, mk)
    mk.raw_execute(plant.url, plant.engine, sql)
    rep = plant.verify(monkeypatch, tmp_path / "pc4")
    assert not rep.ok and any(expected in p for p in rep.problems), rep.problems


def test_a_key_registered_as_another_station_is_refused_at_start(plant, tmp_path):
    sessions = session_factory(plant.engine)
    with pytest.raises(StorageError, match="registered as station 's1', but this station runs as 's2'"):
        attach_signer(sessions, plant.homes["s1"], station="s2")
    _key(tmp_path / "stranger")
    with pytest.raises(StorageError, match="registered in this database with another key"):
        attach_signer(sessions, tmp_path / "stranger", station="s2")
    assert attach_signer(sessions, tmp_path / "stranger") is None  # unregistered: HMAC seals, as a single station


def test_registering_is_idempotent_and_a_name_keeps_its_key(plant, tmp_path):
    with session_factory(plant.engine)() as s, s.begin():
        assert StationRepo.add(s, None, "s1", _key(plant.homes["s1"]))[1] is False
        with pytest.raises(ValueError, match="registered already with another key"):
            StationRepo.add(s, None, "s1", _key(tmp_path / "other"))
        with pytest.raises(ValueError, match="station 's2''s already"):
            StationRepo.add(s, None, "s9", _key(plant.homes["s2"]))


def test_hmac_sealed_rows_from_a_single_station_stay_checkable_with_its_key_file(db_url, mk, monkeypatch, tmp_path):
    """A station that ran alone (HMAC seals with its key file) joins a plant: with the key file its old rows are
    checked; from a PC without it they are counted as not checked, and the signed rows still are."""
    old_home = tmp_path / "single"
    old_home.mkdir()
    monkeypatch.setenv("INSPECTOR_HOME", str(old_home))
    engine = open_database(db_url)
    try:
        single = session_factory(engine)
        run = mk.start_run(single)
        with single() as s, s.begin():
            InspectionRepo.add_many(s, run, [(mk.inspection(q), None) for q in range(3)])
            AuditRepo.append(s, actor="station:line-1", action="run.start", target=f"run:{run}")
            StationRepo.add(s, None, "s1", _key(tmp_path / "s1"))
        signed = session_factory(engine)
        attach_signer(signed, tmp_path / "s1", station="s1")
        with signed() as s, s.begin():
            RunRepo.start(s, "folder:parts", "{}", "default", 1, "s1", "folder")
            AuditRepo.append(s, actor="station:s1", action="run.start", target="run:2")
            InspectionRepo.add_many(s, 2, [(mk.inspection(q), None) for q in range(2)])
        with session_factory(engine)() as s:
            with_key = AuditRepo.verify(s)
        assert with_key.ok and not with_key.notes, with_key.problems
        (tmp_path / "pc4").mkdir()
        monkeypatch.setenv("INSPECTOR_HOME", str(tmp_path / "pc4"))
        with session_factory(engine)() as s:
            without = AuditRepo.verify(s)
        assert without.ok, without.problems
        assert any("3 HMAC-sealed row(s)" in n for n in without.notes), without.notes
        assert any("single-station chain (1 entries)" in n for n in without.notes), without.notes
        mk.raw_execute(db_url, engine, "UPDATE inspections SET verdict = 'FAIL' WHERE run_id = 1")
        monkeypatch.setenv("INSPECTOR_HOME", str(old_home))
        with session_factory(engine)() as s:
            assert not AuditRepo.verify(s).ok
    finally:
        engine.dispose()


def test_the_station_filter_keeps_one_stations_parts_in_review_counts_and_the_csv(plant, mk, tmp_path):
    import csv

    from db import InspectionFilter
    from station.reports import make_report

    for n, parts in (("s1", 4), ("s2", 3), ("s3", 2)):
        plant.run(n, parts, mk)
    only = DayFilter(station="s2")
    with session_factory(plant.engine)() as s:
        assert InspectionRepo.count(s, InspectionFilter(day=only)) == 3
        assert InspectionRepo.count(s, InspectionFilter()) == 9
        assert InspectionRepo.counts(s, day=only).inspected == 3
        assert len(InspectionRepo.page(s, InspectionFilter(day=only, verdict="FAIL"), 50)) == 2
    out = tmp_path / "s2.csv"
    assert make_report(session_factory(plant.engine), "csv", out, day=only) == 3
    rows = list(csv.DictReader(out.open()))
    assert {r["station"] for r in rows} == {"s2"} and len(rows) == 3


def test_a_plant_report_gives_yield_and_pareto_per_station_and_for_the_plant(plant, mk, tmp_path):
    from db.reporting import report_data

    for n, parts in (("s1", 6), ("s2", 3)):
        plant.run(n, parts, mk)
    with session_factory(plant.engine)() as s, s.begin():
        data = report_data(s)
        one = report_data(s, day=DayFilter(station="s2"))
    assert data.totals.inspected == 9 and data.stations == ("s1", "s2")
    by = {f.station: f.totals for f in data.by_station}
    assert (by["s1"].inspected, by["s1"].failed, by["s2"].inspected, by["s2"].failed) == (6, 4, 3, 2)
    assert sum(t.passed for t in by.values()) == data.totals.passed
    assert one.by_station == () and one.totals.inspected == 3 and one.scope == "station s2"
    from inspector.reports import write_html, write_pdf

    write_pdf(data, tmp_path / "plant.pdf")
    write_html(data, tmp_path / "plant.html")
    html = (tmp_path / "plant.html").read_text()
    assert "By station" in html and "<td>s2</td>" in html
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "plant.pdf").pages)
    assert "By station" in text and "s1" in text


def test_alarms_are_signed_by_their_station_and_listed_per_station(plant, mk, monkeypatch, tmp_path, capsys):
    from db.repositories.alarms import AlarmRepo
    from inspector.cli import main

    runs = {n: plant.run(n, 1, mk) for n in ("s1", "s2")}
    for n in ("s1", "s2"):
        with plant.sessions[n]() as s, s.begin():
            AlarmRepo.raise_(s, n, runs[n], "fail_streak", f"5 FAIL parts in a row on {n}")
    with plant.sessions["s1"]() as s, s.begin():
        AlarmRepo.raise_(s, "s1", runs["s1"], "model_refused", "the promoted model could not be loaded here")
    with session_factory(plant.engine)() as s:
        assert [a.station for a in AlarmRepo.list(s, "s1")] == ["s1", "s1"]
        assert len(AlarmRepo.list(s)) == 3 and len(AlarmRepo.list(s, "s2", open_only=True)) == 1
    assert plant.verify(monkeypatch, tmp_path / "pc4").ok
    assert main(["station", "alarms", "--db", plant.url, "--station", "s2"]) == 0
    out = capsys.readouterr().out
    assert "on s2" in out and "on s1" not in out and "OPEN" in out


def test_stations_starting_at_once_register_the_same_model_once(pg_url):
    """Two stations' first runs on a new plant database register the same model in the same moment: the second
    insert waits for the first, then takes its row instead of failing."""
    import threading

    engine = open_database(pg_url)
    try:
        first_inserted, first_may_commit = threading.Event(), threading.Event()
        ids: dict[str, int] = {}

        def first() -> None:
            with session_factory(engine)() as s, s.begin():
                ids["first"] = ModelRepo.get_or_create(s, "m", "m.onnx", "cd" * 32, ["scratch"]).id
                first_inserted.set()
                first_may_commit.wait(10)

        t = threading.Thread(target=first)
        t.start()
        assert first_inserted.wait(10)
        threading.Timer(0.5, first_may_commit.set).start()  # commits while the second insert waits on its key
        with session_factory(engine)() as s, s.begin():
            ids["second"] = ModelRepo.get_or_create(s, "m", "m.onnx", "cd" * 32, ["scratch"]).id
        t.join(10)
        assert ids["first"] == ids["second"]
    finally:
        engine.dispose()
