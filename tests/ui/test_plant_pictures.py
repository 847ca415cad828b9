"""Pictures in a plant (issue 30): with ``[storage] image_root`` every station saves under the shared root, one
folder per station, and a review screen on any PC finds them there; a picture that cannot be reached says where it
lives."""

from __future__ import annotations

from pathlib import Path

from inspector.core.config import config_from_dict
from station import image_base
from ui.review.service import Database, load_image


def test_a_shared_image_root_is_the_base_for_every_station_and_database(tmp_path):
    cfg = config_from_dict({"storage": {"image_root": str(tmp_path / "share")}}, "test")
    assert image_base("postgresql://plant/db", cfg) == (tmp_path / "share", "")
    assert image_base("sqlite:///x/inspections.db", cfg) == (tmp_path / "share", "")
    plain = config_from_dict({}, "test")
    assert image_base("sqlite:///x/inspections.db", plain) == (Path("x"), "inspections-images")


def test_a_picture_on_a_share_not_mounted_here_says_where_it_lives(tmp_path):
    db = Database("sqlite:///unused.db", tmp_path / "not-mounted")
    image, note = load_image(db, "3f2a/s2/run-7/part_0001.jpg", "s2")
    assert image is None
    assert "station s2" in note and "3f2a/s2/run-7/part_0001.jpg" in note and "not-mounted" in note
    (tmp_path / "share").mkdir()
    image, note = load_image(Database("sqlite:///unused.db", tmp_path / "share"), "3f2a/s2/run-7/gone.jpg", "s2")
    assert image is None and "judged on station s2" in note and str(tmp_path / "share") in note


def test_review_and_reports_show_one_station_of_the_plant(qtbot, tmp_path):
    """Station as a filter in the Review and Reports screens (a plant's stations share one database)."""
    import dataclasses
    import datetime as dt

    from db import InspectionRepo, ModelRepo, RunRepo, open_database, session_factory
    from inspector.core.types import Verdict
    from tests.ui.conftest import make_inspection
    from ui.reports.tab import ReportsTab
    from ui.review.tab import ReviewTab

    url = f"sqlite:///{(tmp_path / 'plant.db').as_posix()}"
    engine = open_database(url)
    with session_factory(engine).begin() as s:
        model = ModelRepo.get_or_create(s, "m", "m.onnx", "ab" * 32, ["scratch"])
        for station, parts in (("s1", 5), ("s2", 3)):
            run = RunRepo.start(s, "folder", "{}", "default", model.id, station, "part").id
            now = dt.datetime.now(dt.timezone.utc)
            for k in range(parts):
                insp = dataclasses.replace(make_inspection(k, Verdict.PASS), started_at=now)
                InspectionRepo.add(s, run, insp, None)
    engine.dispose()
    review = ReviewTab(Database(url, tmp_path))
    qtbot.addWidget(review)
    review.show()
    qtbot.waitUntil(lambda: review.idle and review.total == 8, timeout=15_000)
    review.filters.day.set(station="s2")
    qtbot.waitUntil(lambda: review.idle and review.total == 3, timeout=15_000)
    review.shutdown()
    reports = ReportsTab(Database(url, tmp_path))
    qtbot.addWidget(reports)
    reports.show()
    qtbot.waitUntil(lambda: reports.idle and reports.data is not None and reports.data.totals.inspected == 8,
                    timeout=15_000)
    reports.day.set(station="s1")
    qtbot.waitUntil(lambda: reports.idle and reports.data.totals.inspected == 5, timeout=15_000)
    assert reports.data.scope == "station s1"
    reports.shutdown()
