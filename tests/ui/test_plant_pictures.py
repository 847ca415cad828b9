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
