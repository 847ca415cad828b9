"""The Plant tab (issue 30) with real widgets (offscreen) over a real SQLite database: every station with its model
and outbox backlog as last reported (a station gone quiet says so in words), and the alarms of the plant or of one
station (the station filter, as the Review screen's)."""

from __future__ import annotations

import datetime as dt

import pytest


@pytest.fixture
def plant(tmp_path):
    from sqlalchemy import update

    from db.repositories.alarms import AlarmRepo
    from db.repositories.stations import StationRepo
    from db.schema import StationStatus
    from station import open_db
    from ui.plant.service import PlantService
    from ui.review.service import Database

    url = f"sqlite:///{tmp_path / 'plant.db'}"
    engine, sessions = open_db(url)
    with sessions.begin() as s:
        StationRepo.add(s, None, "line-1", "ab" * 32)
        AlarmRepo.raise_(s, "line-1", None, "fail_streak", "5 FAIL parts in a row")
        AlarmRepo.raise_(s, "line-2", None, "low_yield", "yield 81 % over the last 200 parts")
        AlarmRepo.raise_(s, "line-2", None, "model_refused", "the model x promoted by qc could not be loaded here")
        StationRepo.report(s, "line-1", 17, 4, "parts-v2/parts-v2.onnx")
        StationRepo.report(s, "line-2", 230, 9, "parts-v2/parts-v2.onnx")
        long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3)  # cut off from the server since
        s.execute(update(StationStatus).where(StationStatus.station == "line-2").values(reported_at=long_ago))
    with sessions.begin() as s:
        AlarmRepo.acknowledge(s, None, 1)
    engine.dispose()
    db = Database(url, tmp_path)
    yield PlantService(db, "line-1")
    db.close()


def test_the_plant_tab_shows_every_stations_backlog_and_filters_alarms_by_station(qtbot, plant, tmp_path):
    from ui.plant.tab import PlantTab

    tab = PlantTab(plant)
    qtbot.addWidget(tab)
    tab.resize(1024, 700)
    tab.show()
    qtbot.waitUntil(lambda: tab.idle and tab.overview is not None and bool(tab.alarm_rows), timeout=20000)
    cells = [[tab.stations.item(r, c).text() for c in range(tab.stations.columnCount())]
             for r in range(tab.stations.rowCount())]
    assert [c[0] for c in cells] == ["line-1 (this station)", "line-2"]
    assert cells[0][2:4] == ["17", "17"] and cells[0][4].endswith("s ago") and not cells[0][5].startswith("no key")
    assert cells[1][2] == "230" and cells[1][4].startswith("NO REPORT for 1") and cells[1][5].startswith("no key")
    assert "backlog 247 record(s) in all" in tab.summary.text() and "NO RECENT REPORT from line-2" in tab.summary.text()
    assert [a.station for a in tab.alarm_rows] == ["line-2", "line-2", "line-1"]  # the whole plant, newest first
    tab.set_station("line-1")  # as typed into the filter
    qtbot.waitUntil(lambda: tab.idle and [a.station for a in tab.alarm_rows] == ["line-1"], timeout=20000)
    assert tab.alarms.item(0, 4).text().startswith("local-admin")  # who acknowledged it
    tab.stations.selectRow(1)  # a click on a station fills the filter in
    qtbot.waitUntil(lambda: tab.idle and tab.station.text() == "line-2" and len(tab.alarm_rows) == 2, timeout=20000)
    assert {tab.alarms.item(r, 2).text() for r in range(2)} == {"low_yield", "model_refused"}
    tab.open_only.setChecked(True)
    tab.set_station("")
    qtbot.waitUntil(lambda: tab.idle and [a.station for a in tab.alarm_rows] == ["line-2", "line-2"], timeout=20000)
    assert "of the whole plant" in tab.alarms_note.text()
    tab.grab().save(str(tmp_path / "plant-tab.png"))
    assert tab.width() <= 1024


@pytest.mark.model
def test_the_window_has_a_plant_tab(qtbot, make_spec, parts, tiny_model):
    from ui.app import build_window

    window = build_window(make_spec(parts, tiny_model))
    qtbot.addWidget(window)
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert "Plant" in titles
    window.resize(1024, 768)
    window.show()
    window.tabs.setCurrentIndex(titles.index("Plant"))  # read when shown
    tab = window.tabs.widget(titles.index("Plant"))
    qtbot.waitUntil(lambda: tab.overview is not None and tab.idle, timeout=30000)
    assert tab.error.isHidden() and "this one: " in tab.summary.text()
    assert window.width() <= 1024
