"""Basler's own code path without a camera: pypylon's camera emulator (PYLON_CAMEMU) serving a folder of known
parts (ImageFileMode/ImageFilename), fired by software trigger; end to end, an MQTT trigger per part into a real
station (shipped model, SQLite file) with the verdicts of the same pictures read from the folder."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pypylon", reason="pypylon is not installed: pip install -e \".[cameras]\" (the test extra "
                                      "pulls it in)")
os.environ.setdefault("PYLON_CAMEMU", "2")  # read when pylon enumerates: two emulated cameras

from inspector.core.config import CameraConfig, config_from_dict  # noqa: E402
from inspector.core.errors import CameraError  # noqa: E402
from inspector.core.types import Frame, Gap  # noqa: E402
from inspector.sources import pylon  # noqa: E402
from inspector.sources.camera import GenICamSource  # noqa: E402
from tests.timing import loose  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    """Eight of the sample parts as PNG files (the emulator reads PNG, TIFF, BMP), 320 x 320."""
    out = tmp_path_factory.mktemp("parts")
    for i, f in enumerate(sorted(SAMPLES.glob("*.jpg"))[:8]):
        im = cv2.imread(str(f))
        assert im.shape[:2] == (320, 320)
        cv2.imwrite(str(out / f"p{i:02d}.png"), im)
    return out


def emulated(folder: Path, **kw) -> dict:
    return {"type": "pylon", "trigger": "software", "read_timeout_s": 2.0,
            "features": {"PixelFormat": "RGB8Packed", "Width": 320, "Height": 320, "TestImageSelector": "Off",
                         "ImageFileMode": "On", "ImageFilename": str(folder)}, **kw}


def test_the_emulator_is_listed_with_its_serial_and_reachable():
    found = pylon.list_cameras()
    serials = {c.serial: c for c in found}
    assert "0815-0000" in serials and serials["0815-0000"].reachable
    assert serials["0815-0000"].vendor == "Basler" and "0815-0000" in serials["0815-0000"].line()


def test_each_software_trigger_gives_the_injected_picture_pixel_identical(parts):
    src = GenICamSource(pylon.opener(CameraConfig(**emulated(parts))), CameraConfig(**emulated(parts)))
    try:
        files = sorted(parts.glob("*.png"))
        frames = [src.read() for _ in range(len(files) + 1)]
        for f, want in zip(frames, files + files[:1], strict=True):
            assert isinstance(f, Frame) and f.ok
            assert np.array_equal(f.image, cv2.imread(str(want))), want.name
        assert [f.name.split(",")[0] for f in frames[:3]] == ["camera frame 0", "camera frame 1", "camera frame 2"]
        assert src.name == "Emulation (0815-0000)" and src.state.dropped == src.state.incomplete == 0
    finally:
        src.close()


def test_the_camera_is_picked_by_serial_and_an_unknown_one_is_one_sentence(parts):
    cfg = CameraConfig(**emulated(parts, id="0815-0001"))
    src = GenICamSource(pylon.opener(cfg), cfg)
    try:
        assert src.name == "Emulation (0815-0001)" and src.read().ok
    finally:
        src.close()
    with pytest.raises(CameraError, match="pylon finds no camera with serial number or user id 'P-404'"):
        pylon.PylonDevice(CameraConfig(**emulated(parts, id="P-404")))


@pytest.mark.parametrize("features, error", [
    ({"NoSuchNode": 1}, "the camera has no node NoSuchNode (set by [camera] features.NoSuchNode)"),
    ({"PixelFormat": "YUV9"}, "the camera refused PixelFormat = 'YUV9' (set by [camera] features.PixelFormat): "),
    ({"Width": 100000}, "the camera refused Width = 100000 (set by [camera] features.Width): "),
])
def test_a_node_the_camera_lacks_or_refuses_stops_the_opening_in_one_sentence(parts, features, error):
    with pytest.raises(CameraError) as e:
        pylon.PylonDevice(CameraConfig(type="pylon", features=features))
    assert str(e.value).startswith(error) and "\n" not in str(e.value), str(e.value)


def test_mono12_is_scaled_to_8_bits(parts):
    cfg = CameraConfig(**emulated(parts, pixel_format="Mono12", features={
        **emulated(parts)["features"], "PixelFormat": "Mono12"}))
    src = GenICamSource(pylon.opener(cfg), cfg)
    try:
        f = src.read()
        want = cv2.cvtColor(cv2.imread(str(sorted(parts.glob("*.png"))[0])), cv2.COLOR_BGR2GRAY)
        got = f.image[..., 0]
        assert f.image.dtype == np.uint8 and np.array_equal(f.image[..., 0], f.image[..., 2])
        assert abs(float(got.mean()) - float(want.mean())) < 3.0, (got.mean(), want.mean())
    finally:
        src.close()


def test_a_closed_camera_is_a_gap_at_once_and_comes_back(parts):
    cfg = CameraConfig(**emulated(parts, reconnect_initial_s=0.05))
    src = GenICamSource(pylon.opener(cfg), cfg)
    try:
        assert src.read().ok
        src._device._cam.Close()  # the camera goes away under the source (its cable pulled)
        t = time.monotonic()
        gap = src.read()
        assert isinstance(gap, Gap) and "camera lost" in gap.reason and time.monotonic() - t < loose(1.0)
        end = time.monotonic() + 15
        while src.state.state != "running" and time.monotonic() < end:
            time.sleep(0.05)
        assert src.reconnects == 1 and src.read().ok
    finally:
        src.close()


def test_a_product_changeover_sets_the_exposure_on_the_running_camera(parts):
    cfg = CameraConfig(**emulated(parts, reconnect_initial_s=0.05))
    src = GenICamSource(pylon.opener(cfg), cfg)
    try:
        assert src.read().ok
        src.set_features({**cfg.features, "ExposureTime": 4321.0})
        assert float(src._device._nodes.GetNode("ExposureTime").ToString()) == 4321.0 and src.read().ok
        with pytest.raises(CameraError, match="the camera has no node Exposure2"):
            src.set_features({"Exposure2": 1.0})
    finally:
        src.close()


# end to end: MQTT triggers into a station ------------------------------------------------------------------
def _station(tmp_path: Path, cfg, source: str, db: str):
    from station import Station, StationSpec

    st = Station(StationSpec(source, f"sqlite:///{tmp_path / db}", cfg, loop=False))
    st.start()
    return st


def _stop(st) -> None:
    st.stop()
    st.runner.join(30)
    st.finish("stopped")


def test_mqtt_triggers_fire_the_emulated_camera_one_part_each_with_the_folders_verdicts(parts, tmp_path):
    from tests.test_line_mqtt import MOSQUITTO, Broker, Plc

    if MOSQUITTO is None:
        pytest.skip("Debian's mosquitto is not installed (.ci/run installs it)")
    ref = _station(tmp_path, config_from_dict({"station": {"name": "ref"}}, "t"), str(parts), "ref.db")
    ref.runner.join(120)
    _stop(ref)
    with sqlite3.connect(tmp_path / "ref.db") as con:
        want = [v for (v,) in con.execute("select verdict from inspections order by frame_name")]
    assert len(want) == 8

    broker = Broker(tmp_path)
    broker.start()
    plc = Plc(broker.port, "cam")
    cfg = config_from_dict({"station": {"name": "cam"}, "camera": emulated(parts, reconnect_initial_s=0.05),
                            "line": {"trigger": "mqtt", "trigger_timeout_s": 3.0,
                                     "mqtt": {"url": f"mqtt://127.0.0.1:{broker.port}"}}}, "t")
    st = _station(tmp_path, cfg, "unused", "cam.db")
    try:
        plc.wait(lambda: plc.state.get("ready") is True, timeout=120, what="ready")
        for i in range(8):
            plc.trigger(f"C{i}")
            time.sleep(0.15)
        plc.wait(lambda: len(plc.results) == 8, timeout=60, what="8 results")
        assert [len(plc.results[f"C{i}"]) for i in range(8)] == [1] * 8
        assert [plc.results[f"C{i}"][0]["verdict"] for i in range(8)] == want

        st.source._device._cam.Close()  # the camera goes away: the next trigger is answered at once
        t = time.monotonic()
        plc.trigger("GONE")
        plc.wait(lambda: "GONE" in plc.results, timeout=10, what="the answer while the camera is away")
        assert time.monotonic() - t < loose(2.0)
        assert plc.results["GONE"][0]["verdict"] == "NOT_INSPECTED"
        plc.wait(lambda: st.source.reconnects == 1 and st.source.state.state == "running", timeout=30,
                 what="the camera reopened")
        time.sleep(0.5)  # the station's not-ready and ready again have reached the PLC (the line checks every 0.1 s)
        plc.wait(lambda: plc.state.get("ready") is True, timeout=30, what="ready after the reconnect")
        plc.trigger("BACK")
        plc.wait(lambda: "BACK" in plc.results, timeout=30, what="a part after the reconnect")
        assert plc.results["BACK"][0]["verdict"] in ("PASS", "FAIL", "REVIEW"), plc.results["BACK"][0]["reasons"]
    finally:
        _stop(st)
        plc.close()
        broker.stop()
    with sqlite3.connect(tmp_path / "cam.db") as con:
        rows = con.execute("select part_id, frame_name, image_path, verdict, reasons from inspections order by id")\
            .fetchall()
    by_part = {r[0]: r for r in rows}
    assert set(by_part) == {f"C{i}" for i in range(8)} | {"GONE", "BACK"}
    assert by_part["C0"][1].startswith("camera frame 0") and by_part["C7"][1].startswith("camera frame 7")
    assert "camera lost" in by_part["GONE"][4] or "camera reconnecting" in by_part["GONE"][4]
    # the stored picture is the injected one, within JPEG loss
    stored = sorted((tmp_path).rglob("*.jpg"))
    assert stored, "no picture stored"
    first = next(p for p in stored if by_part["C0"][2] and Path(by_part["C0"][2]).name == p.name)
    diff = np.abs(cv2.imread(str(first)).astype(int) - cv2.imread(str(parts / "p00.png")).astype(int))
    assert diff.mean() < 3.0, diff.mean()


def test_a_station_switching_product_sets_its_exposure_and_a_refused_one_changes_nothing(parts, tmp_path):
    from inspector.core.errors import InspectorError

    cfg = config_from_dict({"station": {"name": "px"}, "camera": emulated(parts),
                            "products": {"dark": {"camera": {"ExposureTime": 4321.0}},
                                         "odd": {"camera": {"NoSuchNode": 1}}}}, "t")
    st = _station(tmp_path, cfg, "unused", "px.db")
    try:
        node = st.source._device._nodes.GetNode("ExposureTime")
        st.switch_product("dark")
        assert float(node.ToString()) == 4321.0 and st.product == "dark"
        with pytest.raises(InspectorError, match="the camera has no node NoSuchNode"):
            st.switch_product("odd")
        assert st.product == "dark" and float(node.ToString()) == 4321.0
        assert "NoSuchNode" not in st.source.cfg.features  # a reconnect sets what was accepted
    finally:
        _stop(st)
