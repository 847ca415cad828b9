"""Model rollout by product (issue 30): ``inspector model promote MODEL --product P`` makes a model the one for every
station that runs P; each station reads it (the newer of its own and its product's promotion wins), checks the
file's hash before loading it, and a station that cannot load it keeps the old model and says so."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from inspector.core.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
PARTS_ONNX = ROOT / "models" / "parts-v2" / "parts-v2.onnx"


@pytest.fixture
def plant_db(tmp_path):
    from station import open_db

    engine, sessions = open_db(f"sqlite:///{tmp_path / 'plant.db'}")
    yield sessions
    engine.dispose()


def test_a_product_promotion_reaches_every_station_running_it_and_a_stations_own_newer_one_wins(plant_db, tmp_path):
    from station.models import active_promotion, change_model, product_target

    copy = tmp_path / "share" / "parts-v2.onnx"  # the same file (same hash) where the plant keeps its models
    copy.parent.mkdir()
    shutil.copy(PARTS_ONNX, copy)
    p = change_model(plant_db, None, product_target("P"), copy, "better on lot 12",
                     tmp_path / "old.onnx", force=True)
    assert p.station == "product:P"
    for station in ("s1", "s2"):
        assert active_promotion(plant_db, station, "P").id == p.id
        assert active_promotion(plant_db, station, "Q") is None  # another product: its configuration's model
    own = change_model(plant_db, None, "s2", PARTS_ONNX, "s2 keeps the shipped file",
                     tmp_path / "old.onnx", force=True)
    assert active_promotion(plant_db, "s2", "P").id == own.id and active_promotion(plant_db, "s1", "P").id == p.id


def test_a_promoted_file_is_checked_by_its_hash_never_trusted_by_its_path(plant_db, tmp_path):
    from station.models import change_model, checked_file, product_target

    copy = tmp_path / "parts-v2.onnx"
    shutil.copy(PARTS_ONNX, copy)
    p = change_model(plant_db, None, product_target("P"), copy, "rollout",
                     tmp_path / "old.onnx", force=True)
    assert checked_file(p) == copy
    copy.write_bytes(copy.read_bytes()[:-1] + b"\0")  # replaced on the share after the promotion
    with pytest.raises(ModelError, match="sha256 differs"):
        checked_file(p)
    copy.unlink()
    with pytest.raises(ModelError, match="missing here"):
        checked_file(p)


def test_a_station_that_cannot_take_the_model_keeps_the_old_one_and_is_told(plant_db, tmp_path):
    from station.models import PromotionWatcher, change_model, product_target

    refused: list[tuple[object, Exception]] = []
    done = threading.Event()

    def take(promo) -> None:
        raise ModelError("the recipe's classes are not the model's")

    def refuse(promo, error) -> None:
        refused.append((promo, error))
        done.set()

    watcher = PromotionWatcher(plant_db, "s1", None, take, poll_s=0.05, product=lambda: "P", on_refused=refuse)
    watcher.start()
    try:
        p = change_model(plant_db, None, product_target("P"), PARTS_ONNX, "rollout",
                     tmp_path / "old.onnx", force=True)
        assert done.wait(10)
    finally:
        watcher.stop()
    assert refused[0][0].id == p.id and "classes" in str(refused[0][1])
