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


# ---- model files through the plant's shared folder, by hash (issue 30) ----------------------------------------

def _homes(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The plant's shared folder and two station data folders. Without station keys registered, stations sharing
    one database seal with one HMAC key file (README: a single station's key), copied into both."""
    from inspector.core.integrity import key_path, station_key

    station_key()  # this session's data folder's key, made if new
    share, s1, s2 = tmp_path / "share", tmp_path / "s1-home", tmp_path / "s2-home"
    for home in (s1, s2):
        home.mkdir()
        shutil.copy(key_path(), key_path(home))
    return share, s1, s2


def _model_folder(where: Path, src: Path = PARTS_ONNX) -> Path:
    """A model folder on one station's own disk: the file and its card."""
    where.mkdir(parents=True)
    shutil.copy(src, where / src.name)
    if (src.parent / "card.json").is_file():
        shutil.copy(src.parent / "card.json", where / "card.json")
    return where / src.name


def test_two_stations_get_a_promoted_model_through_the_shared_root_checked_by_its_hash(plant_db, tmp_path,
                                                                                        monkeypatch):
    from inspector.core.errors import ConfigError
    from inspector.detection.registry import sha256_file
    from station.models import active_promotion, change_model, checked_file, product_target

    share, s1, s2 = _homes(tmp_path)
    share = share / "models"
    monkeypatch.setenv("INSPECTOR_HOME", str(s1))
    model = _model_folder(s1 / "models" / "new")
    sha = sha256_file(model)
    p = change_model(plant_db, None, product_target("P"), model, "rollout", tmp_path / "old.onnx", force=True,
                     share=share)
    assert sha256_file(share / sha / "parts-v2.onnx") == sha and (share / sha / "card.json").is_file()
    # station 2, its own data folder: the path recorded by station 1 holds another file there (the path is a
    # name on another PC's disk, never trusted): the copy from the share is taken, checked by its hash
    monkeypatch.setenv("INSPECTOR_HOME", str(s2))
    model.write_bytes(b"not the promoted model")
    got = checked_file(active_promotion(plant_db, "s2", "P"), share)
    assert got == s2 / "models" / "plant" / sha / "parts-v2.onnx" and sha256_file(got) == sha
    assert (got.parent / "card.json").is_file()
    assert checked_file(p, share) == got  # the second time from this data folder, checked again
    # a copy replaced or damaged on the share: refused, nothing left behind to load
    got.unlink()
    shared = share / sha / "parts-v2.onnx"
    shared.write_bytes(shared.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelError, match="shared models folder .* sha256 differs"):
        checked_file(p, share)
    assert not got.exists()
    shutil.rmtree(share)  # the share not mounted
    with pytest.raises(ModelError, match="neither here .* nor on the plant's shared models folder"):
        checked_file(p, share)
    # a promotion whose file cannot be put on the share records nothing
    share.parent.mkdir(exist_ok=True)
    share.write_text("a file, not a folder")
    monkeypatch.setenv("INSPECTOR_HOME", str(s1))
    other = _model_folder(s1 / "models" / "again")
    with pytest.raises(ConfigError, match="shared models folder .* nothing was promoted"):
        change_model(plant_db, None, product_target("P"), other, "again", tmp_path / "old.onnx", force=True,
                     share=share)
    assert active_promotion(plant_db, "s2", "P").id == p.id


def test_the_shared_models_folder_is_model_root_or_beside_the_pictures(tmp_path):
    from inspector.core.config import StorageConfig
    from station.models import shared_models_root

    assert shared_models_root(StorageConfig()) is None
    assert shared_models_root(StorageConfig(image_root=tmp_path)) == tmp_path / "models"
    assert shared_models_root(StorageConfig(image_root=tmp_path, model_root=tmp_path / "m")) == tmp_path / "m"


def _running(url: str, share: Path, station: str = "s2"):
    from inspector.core.config import config_from_dict
    from station import Station, StationSpec

    cfg = config_from_dict({"station": {"name": station}, "products": {"P": {}},
                            "storage": {"model_root": str(share)}})
    st = Station(StationSpec(str(ROOT / "sample_images"), url, cfg, loop=True, product="P"))
    st.watcher.poll_s = 0.05
    return st


def _wait(cond, timeout: float = 60) -> None:
    import time

    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _pausable(watcher):
    """A context manager that holds the station's promotion watcher between two polls (none in flight) while
    its body runs: both stations share this machine's disk here, so station 2 must not look while the promoted
    file still lies at station 1's path."""
    import contextlib
    import threading

    go, parked = threading.Event(), threading.Event()
    go.set()
    product = watcher.product

    def gated() -> str:
        if not go.is_set():
            parked.set()
            go.wait()
        return product()

    watcher.product = gated

    @contextlib.contextmanager
    def paused():
        parked.clear()
        go.clear()
        assert parked.wait(60), "the promotion watcher never came round to poll"
        try:
            yield
        finally:
            go.set()
    return paused


@pytest.mark.model
def test_a_running_station_refuses_a_damaged_copy_on_the_share_and_takes_a_good_one(tmp_path, tiny_model,
                                                                                   monkeypatch):
    """Two data folders, one shared folder, one database: station 1 promotes for product P from its own disk;
    station 2, running P, copies the file from the share into its own data folder and checks its hash before
    loading it. A damaged copy keeps the old model on station 2 and raises a model_refused alarm; a good one is
    taken between two parts (a .pt with its ONNX twin: the twin travels with it)."""
    from db import AlarmRepo, AuditRepo
    from inspector.detection.registry import sha256_file
    from station import open_db
    from station.models import change_model, product_target
    from tests.conftest import trust_models

    url = f"sqlite:///{tmp_path / 'plant.db'}"
    trust_models(url, tiny_model)  # the .pt and its ONNX twin
    engine, sessions = open_db(url)
    share, s1, s2 = _homes(tmp_path)
    monkeypatch.setenv("INSPECTOR_HOME", str(s2))
    st = _running(url, share)
    shipped = st.model_sha
    paused = _pausable(st.watcher)
    st.start()
    try:
        monkeypatch.setenv("INSPECTOR_HOME", str(s1))  # station 1 promotes from its own disk
        onnx = _model_folder(s1 / "models" / "tiny-a", tiny_model.with_suffix(".onnx"))
        sha = sha256_file(onnx)
        (share / sha).mkdir(parents=True)  # the share holds a damaged copy under the model's hash
        (share / sha / onnx.name).write_bytes(onnx.read_bytes()[:-10])
        with paused():  # station 2 must not poll while the file is still at station 1's path (same machine here)
            change_model(sessions, None, product_target("P"), onnx, "rollout", PARTS_ONNX, force=True)
            shutil.rmtree(onnx.parent)  # not on station 2's disk

        def refused():
            with sessions() as s:
                return [a for a in AlarmRepo.list(s, "s2") if a.rule == "model_refused"]
        _wait(lambda: bool(refused()))
        assert "sha256 differs" in refused()[0].message
        assert st.model_sha == shipped  # the previous model keeps judging
        pt = _model_folder(s1 / "models" / "tiny-b", tiny_model)
        shutil.copy(tiny_model.with_suffix(".onnx"), pt.with_suffix(".onnx"))
        with paused():
            p = change_model(sessions, None, product_target("P"), pt, "rollout, again", PARTS_ONNX, force=True,
                             share=share)
            shutil.rmtree(pt.parent)
        _wait(lambda: st.model_sha == sha)  # the ONNX twin of the .pt judges, as on the promoting station
        assert st.model_path == s2 / "models" / "plant" / p.sha256 / "tiny.pt"
    finally:
        st.stop()
        st.runner.join(30)
        st.finish("stopped")
    try:
        with sessions() as s:
            actions = [e.action for e in AuditRepo.list(s, 1000) if e.action.startswith("model.")]
    finally:
        engine.dispose()
    assert "model.take" in actions and "model.refused" in actions, actions
