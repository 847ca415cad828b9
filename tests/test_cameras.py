"""GenICam cameras without the SDKs: the settings and their order, pixel formats, and the source's faults (a
trigger without its frame, frame ids that skip, an incomplete buffer, a camera that goes and comes back) on a
scripted device. The real SDKs are in test_cameras_pylon.py and test_cameras_genicam.py."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from inspector.core.config import CameraConfig, config_from_dict
from inspector.core.errors import CameraError, ConfigError
from inspector.core.types import Frame, Gap
from inspector.sources.camera import GenICamSource, Grab, apply, settings, to_bgr
from tests.timing import loose


def cam(**kw) -> CameraConfig:
    kw.setdefault("read_timeout_s", 0.3)
    kw.setdefault("reconnect_initial_s", 0.05)
    return CameraConfig(type="pylon", **kw)


class ScriptedDevice:
    """A camera on cue: ``script`` holds what each grab after a trigger gives: an int (a good frame with that
    frame id), ("incomplete", id), "timeout" (no frame), "gone" (the camera disappears: CameraError)."""

    def __init__(self, script: list, name: str = "Scripted (S1)") -> None:
        self.name = name
        self.script = list(script)
        self.fired = 0
        self.closed = False
        self.stale: list[int] = []  # frames waiting in the buffer before the next trigger
        self.lock = threading.Lock()

    def configure(self, items) -> None:
        self.configured = list(items)

    def fire(self) -> None:
        if self.closed:
            raise CameraError("closed")
        self.fired += 1

    def grab(self, timeout_s: float) -> Grab | None:
        if self.closed:
            raise CameraError(f"camera {self.name} is closed")
        with self.lock:
            if self.stale:
                return self.frame(self.stale.pop(0))
            if timeout_s == 0.0:
                return None
            step = self.script.pop(0) if self.script else "timeout"
        if step == "timeout":
            time.sleep(min(timeout_s, 0.05))
            return None
        if step == "gone":
            raise CameraError(f"camera {self.name} was removed")
        if isinstance(step, tuple):
            return Grab(None, "Mono8", step[1], 1000 + step[1], "incomplete buffer from the camera: 3 packets lost")
        return self.frame(step)

    @staticmethod
    def frame(fid: int) -> Grab:
        return Grab(np.full((8, 10), fid % 256, np.uint8), "Mono8", fid, 1000 + fid)

    def close(self) -> None:
        self.closed = True


# settings --------------------------------------------------------------------------------------------------
def test_settings_in_the_order_a_camera_takes_them_with_the_features_last_as_written():
    c = cam(trigger="software", pixel_format="Mono12", exposure_us=800, gain_db=2.5, region=(16, 8, 640, 480),
            binning=2, features={"LineSelector": "Line2", "LineInverter": True, "ReverseX": False})
    names = [n for n, _ in settings(c)]
    assert names == ["BinningHorizontal", "BinningVertical", "OffsetX", "OffsetY", "Width", "Height", "OffsetX",
                     "OffsetY", "PixelFormat", "ExposureAuto", "ExposureTime", "GainAuto", "Gain",
                     "TriggerSelector", "TriggerMode", "TriggerSource", "LineSelector", "LineInverter", "ReverseX"]
    assert dict(settings(cam(trigger="hardware", hardware_line="Line3")))["TriggerSource"] == "Line3"
    assert dict(settings(cam()))["TriggerMode"] == "Off"


@pytest.mark.parametrize("nodes, refuse, error", [
    ({"TriggerMode", "TriggerSource", "Gain"}, None, "the camera has no node Nope (set by [camera] features.Nope)"),
    ({"TriggerMode", "TriggerSource", "Gain", "Nope"}, "Nope", "the camera refused Nope = 3 (set by [camera] "
                                                               "features.Nope): out of range."),
    ({"TriggerMode", "TriggerSource", "Nope"}, None, "the camera has no node Gain (set by [camera] gain_db)"),
])
def test_each_refused_setting_is_one_sentence_naming_the_key(nodes, refuse, error):
    done = []

    def setter(name, value):
        if name == refuse:
            raise RuntimeError("out of range : thrown in node 'Nope' (file 'Integer.cpp', line 12)")
        done.append(name)

    with pytest.raises(CameraError) as e:
        apply(cam(trigger="software", gain_db=1.0, features={"Nope": 3}), setter, lambda n: n in nodes)
    assert str(e.value).startswith(error) and "\n" not in str(e.value)


def test_a_camera_without_trigger_nodes_can_still_run_free():
    done = []
    apply(cam(), lambda n, v: done.append((n, v)), lambda n: False)
    assert done == []


@pytest.mark.parametrize("bad, why", [
    ({"region": [0, 0, 0, 10]}, "region"),
    ({"features": {"Bad Name": 1}}, "not a GenICam node name"),
    ({"trigger": "sometimes"}, "trigger"),
    ({"type": "gige"}, "type"),
])
def test_bad_camera_settings_are_refused_on_load(bad, why):
    with pytest.raises(ConfigError, match=why):
        config_from_dict({"camera": {"type": "pylon", **bad}}, "test")


def test_features_keep_the_order_and_type_written():
    cfg = config_from_dict({"camera": {"type": "pylon", "features": {"Width": 320, "ImageFileMode": "On",
                                                                     "ExposureTime": 12.5, "ReverseX": True}}}, "t")
    assert list(cfg.camera.features.items()) == [("Width", 320), ("ImageFileMode", "On"), ("ExposureTime", 12.5),
                                                 ("ReverseX", True)]


# pixel formats ---------------------------------------------------------------------------------------------
def test_pixel_formats_become_bgr_uint8():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB order
    assert to_bgr(rgb, "RGB8Packed")[0, 0].tolist() == [0, 0, 200]
    assert to_bgr(rgb, "BGR8")[0, 0].tolist() == [200, 0, 0]
    rgba = np.dstack([rgb, np.full((4, 6), 255, np.uint8)])
    assert to_bgr(rgba, "RGBa8")[0, 0].tolist() == [0, 0, 200]
    mono12 = np.full((4, 6), 4095, np.uint16)
    out = to_bgr(mono12, "Mono12")
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3) and out[0, 0].tolist() == [255, 255, 255]
    assert to_bgr(np.full((4, 6), 2048, np.uint16), "Mono12")[0, 0, 0] == 128
    assert to_bgr(np.full((4, 6), 77, np.uint8), "Mono8")[0, 0].tolist() == [77, 77, 77]
    with pytest.raises(CameraError, match="pixel format YUV422_8 is not supported"):
        to_bgr(np.zeros((4, 6), np.uint8), "YUV422_8")


@pytest.mark.parametrize("fmt, offset", [("BayerRG8", (0, 0)), ("BayerGR8", (0, 1)), ("BayerGB8", (1, 0)),
                                         ("BayerBG8", (1, 1))])
def test_bayer_patterns_demosaic_to_the_right_colour(fmt, offset):
    """A red picture mosaiced as the camera's pattern says comes back red (OpenCV names patterns differently)."""
    h, w = 8, 8
    mosaic = np.zeros((h, w), np.uint8)
    ry, rx = offset  # where the red site of each 2x2 cell is
    mosaic[ry::2, rx::2] = 220
    out = to_bgr(mosaic, fmt)
    b, g, r = out[2:6, 2:6].reshape(-1, 3).mean(axis=0)
    assert r > 150 and g < 60 and b < 60, (fmt, b, g, r)


# software trigger ------------------------------------------------------------------------------------------
def test_software_trigger_each_read_fires_once_and_names_the_frame():
    dev = ScriptedDevice([0, 1, 2])
    src = GenICamSource(lambda: dev, cam(trigger="software"))
    frames = [src.read() for _ in range(3)]
    assert dev.fired == 3 and not src.live
    assert [f.name for f in frames] == ["camera frame 0, camera time 1000", "camera frame 1, camera time 1001",
                                        "camera frame 2, camera time 1002"]
    assert all(isinstance(f, Frame) and f.ok and f.image.shape == (8, 10, 3) for f in frames)
    src.close()
    assert dev.closed and src.state.state == "stopped"


def test_a_trigger_without_its_frame_is_a_gap_and_its_late_frame_is_never_the_next_part():
    dev = ScriptedDevice([0, "timeout", 2])
    src = GenICamSource(lambda: dev, cam(trigger="software"))
    assert src.read().name.startswith("camera frame 0")
    gap = src.read()
    assert isinstance(gap, Gap) and "no frame within 0.3 s of the software trigger" in gap.reason
    dev.stale.append(1)  # the late answer to the trigger that timed out arrives
    f = src.read()
    assert f.ok and f.name.startswith("camera frame 2") and dev.fired == 3  # frame 1 thrown away, not this part's
    assert src.state.timeouts == 1 and src.state.dropped == 0
    src.close()


def test_ids_missing_for_triggers_that_timed_out_are_no_loss_but_more_are():
    dev = ScriptedDevice([0, "timeout", 2, "timeout", 5])
    src = GenICamSource(lambda: dev, cam(trigger="software"))
    assert src.read().ok and isinstance(src.read(), Gap)
    assert src.read().ok  # id 1 was the timed-out trigger's frame
    assert isinstance(src.read(), Gap)
    f = src.read()
    assert not f.ok and "camera frame 3 lost" in f.error and src.state.dropped == 1  # 3 and 4 missing, 1 explained
    src.close()


def test_skipped_frame_ids_and_an_incomplete_buffer_are_not_judged():
    dev = ScriptedDevice([0, 3, ("incomplete", 4), 5])
    src = GenICamSource(lambda: dev, cam(trigger="software"))
    assert src.read().ok
    skipped = src.read()
    assert not skipped.ok and "camera frame 1 lost: the camera's frame ids skipped from 0 to 3" in skipped.error
    broken = src.read()
    assert not broken.ok and "incomplete buffer" in broken.error and broken.name.startswith("camera frame 4")
    assert src.read().ok
    assert (src.state.dropped, src.state.incomplete) == (2, 1)
    src.close()


def test_a_camera_that_disappears_is_a_gap_at_once_then_reconnected_and_counted():
    first, second = ScriptedDevice([0, "gone"]), ScriptedDevice([0, 1])
    devices = [first, second]
    states = []
    src = GenICamSource(lambda: devices.pop(0), cam(trigger="software"), states.append)
    assert src.read().ok
    t = time.monotonic()
    gap = src.read()
    assert isinstance(gap, Gap) and "was removed" in gap.reason
    down = src.read()  # a trigger while the camera is away: answered at once
    assert isinstance(down, Gap) and "not connected" in down.reason and time.monotonic() - t < loose(0.5)
    end = time.monotonic() + 30  # a deadline for an event, not a bound
    while src.state.state != "running" and time.monotonic() < end:
        time.sleep(0.02)
    assert src.state.state == "running" and src.reconnects == 1 and first.closed
    assert "reconnecting" in [s.state for s in states]
    assert src.read().ok
    src.close()
    assert second.closed


def test_three_triggers_without_a_frame_count_as_a_camera_that_stopped_answering():
    first, second = ScriptedDevice(["timeout"] * 3), ScriptedDevice([7])
    devices = [first, second]
    src = GenICamSource(lambda: devices.pop(0), cam(trigger="software", read_timeout_s=0.05))
    assert all(isinstance(src.read(), Gap) for _ in range(3))
    assert first.closed and src.state.state in ("reconnecting", "running")
    end = time.monotonic() + 30  # a deadline for an event, not a bound
    while src.state.state != "running" and time.monotonic() < end:
        time.sleep(0.02)
    assert src.read().ok
    src.close()


def test_a_camera_that_never_comes_back_ends_the_source():
    devices = [ScriptedDevice(["gone"])]

    def opener():
        if devices:
            return devices.pop(0)
        raise CameraError("pylon finds no camera with serial number or user id 'S1'")

    src = GenICamSource(opener, cam(trigger="software", max_reconnects=2))
    assert isinstance(src.read(), Gap)
    end = time.monotonic() + 30  # a deadline for an event, not a bound
    while src.state.state != "stopped" and time.monotonic() < end:
        time.sleep(0.02)
    assert src.state.state == "stopped" and "gave up after 2 attempts" in src.state.reason
    assert src.read() is None
    src.close()


# free-running and hardware trigger ---------------------------------------------------------------------------
class StreamingDevice(ScriptedDevice):
    """A camera that sends frames on its own (free-running or fired by its line input)."""

    def grab(self, timeout_s: float) -> Grab | None:
        with self.lock:
            step = self.script.pop(0) if self.script else None
        if step is None:
            time.sleep(min(timeout_s, 0.02))
            return None
        if step == "gone":
            raise CameraError(f"camera {self.name} was removed")
        return self.frame(step)


def test_hardware_trigger_fills_skipped_ids_so_the_line_triggers_stay_paired_by_order():
    dev = StreamingDevice([10, 11, 14, 15])
    src = GenICamSource(lambda: dev, cam(trigger="hardware"))
    got = []
    while len(got) < 6:
        item = src.read()
        assert not isinstance(item, Gap) or "hardware trigger" in item.reason
        if isinstance(item, Frame):
            got.append(item)
    assert [f.ok for f in got] == [True, True, False, False, True, True]
    assert got[2].name == "camera frame 12" and "skipped from 11 to 14" in got[2].error
    gap = src.read()  # no part at the light barrier: waiting, not a stall
    assert isinstance(gap, Gap) and src.stalls == 0 and dev.fired == 0
    src.close()
    assert dev.closed


def test_free_running_keeps_the_newest_frames_and_reconnects_a_camera_that_is_gone():
    first, second = StreamingDevice([1, 2, "gone"]), StreamingDevice(list(range(5)))
    devices = [first, second]
    src = GenICamSource(lambda: devices.pop(0), cam(read_timeout_s=0.2))
    seen: list = []
    end = time.monotonic() + 30  # a deadline for an event, not a bound
    while not any(isinstance(i, Frame) and i.name.startswith("camera frame 4") for i in seen) \
            and time.monotonic() < end:
        seen.append(src.read())
    assert any(isinstance(i, Gap) and "camera lost" in i.reason for i in seen)
    frames = [i for i in seen if isinstance(i, Frame)]
    assert all(f.ok for f in frames) and frames[-1].name.startswith("camera frame 4")
    assert src.reconnects == 1 and src.gaps >= 1 and src.state.dropped == 0  # newest wins: nothing lost counted
    src.close()
    assert first.closed and second.closed


def test_the_picture_is_converted_at_the_boundary():
    dev = ScriptedDevice([0])
    dev.frame = lambda fid: Grab(np.dstack([np.full((6, 6), 9, np.uint8), np.zeros((6, 6), np.uint8),
                                            np.full((6, 6), 250, np.uint8)]), "RGB8", fid, 5)
    src = GenICamSource(lambda: dev, cam(trigger="software"))
    f = src.read()
    assert f.image[0, 0].tolist() == [250, 0, 9]
    assert cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB)[0, 0].tolist() == [9, 0, 250]
    src.close()


# per product -----------------------------------------------------------------------------------------------
def test_a_products_camera_nodes_come_after_the_cameras_own_and_override_them():
    from inspector.core.day import product_config

    base = config_from_dict({"camera": {"type": "pylon", "features": {"ExposureTime": 1000.0, "Gamma": 1.0}},
                             "products": {"dark": {"camera": {"ExposureTime": 4000.0, "Gain": 6.0}},
                                          "plain": {}}}, "t")
    assert list(product_config(base, "dark").camera.features.items()) == [("Gamma", 1.0), ("ExposureTime", 4000.0),
                                                                          ("Gain", 6.0)]
    assert product_config(base, "plain").camera.features == {"ExposureTime": 1000.0, "Gamma": 1.0}
    with pytest.raises(ConfigError, match="not a GenICam node name"):
        config_from_dict({"products": {"x": {"camera": {"Exposure Time": 1}}}}, "t")


def test_set_features_sets_the_open_camera_and_is_kept_for_a_reconnect():
    dev = ScriptedDevice([0])
    src = GenICamSource(lambda: dev, cam(trigger="software"))
    src.set_features({"ExposureTime": 4000.0})
    assert dev.configured == [("ExposureTime", 4000.0)] and src.cfg.features == {"ExposureTime": 4000.0}
    src.close()


# through the runner: one trigger, one part --------------------------------------------------------------------
def _run_triggered(src, feed):
    from inspector.core.config import RecipeConfig, RunMode
    from inspector.core.types import Trigger
    from inspector.inspection.pipeline import Pipeline
    from inspector.inspection.rules import Recipe
    from inspector.inspection.runner import Runner
    from inspector.line.desk import TriggerDesk
    from tests.conftest import ScriptedDetector
    from tests.fakes import ListSink

    desk, committed = TriggerDesk(1.0), []
    r = Runner(src, lambda: Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig())), ListSink(), RunMode.PART,
               queue_size=4, on_committed=committed.extend, desk=desk)
    r.start()
    assert r.wait_ready(30)
    feed(lambda pid: desk.put(Trigger(pid, time.time(), {}, "test")))
    end = time.monotonic() + 20
    while len(committed) < 4 and time.monotonic() < end:
        time.sleep(0.02)
    r.stop()
    r.join(20)
    return {i.trigger.part_id: i for _, i in committed}


def _pipeline_image(fid: int) -> Grab:
    return Grab(np.random.default_rng(fid).integers(0, 256, (96, 96), dtype=np.uint8), "Mono8", fid, 5000 + fid)


def test_software_trigger_through_the_runner_a_missing_frame_is_that_part_alone():
    dev = ScriptedDevice([0, "timeout", 2, 3])
    dev.frame = _pipeline_image
    src = GenICamSource(lambda: dev, cam(trigger="software"))

    def feed(put):
        for i in range(4):
            put(f"P{i}")
            time.sleep(0.05)

    got = _run_triggered(src, feed)
    assert [got[f"P{i}"].verdict.value for i in range(4)] == ["PASS", "NOT_INSPECTED", "PASS", "PASS"]
    assert "no frame within 0.3 s of the software trigger" in got["P1"].reasons[0]
    assert got["P2"].frame_name == "camera frame 2, camera time 5002" and dev.fired == 4


class LineFiredDevice(ScriptedDevice):
    """A camera fired by its own input: ``emit(id)`` is the light barrier seeing a part (or, for a lost frame,
    the camera counting one that never arrives)."""

    def __init__(self) -> None:
        super().__init__([])
        self.out: list[int] = []

    def emit(self, fid: int) -> None:
        with self.lock:
            self.out.append(fid)

    def grab(self, timeout_s: float) -> Grab | None:
        with self.lock:
            fid = self.out.pop(0) if self.out else None
        if fid is None:
            time.sleep(min(timeout_s, 0.02))
            return None
        return _pipeline_image(fid)


def test_hardware_trigger_through_the_runner_pairs_frames_with_triggers_by_order():
    dev = LineFiredDevice()
    src = GenICamSource(lambda: dev, cam(trigger="hardware"))

    def feed(put):
        for i in range(4):
            put(f"H{i}")
            time.sleep(0.02)
            if i != 2:  # H2's frame is lost on the way: the next frame's id skips
                dev.emit(i)
            time.sleep(0.1)

    got = _run_triggered(src, feed)
    assert [got[f"H{i}"].verdict.value for i in range(4)] == ["PASS", "PASS", "NOT_INSPECTED", "PASS"]
    assert "camera frame 2 lost" in got["H2"].reasons[0] and got["H3"].frame_name.startswith("camera frame 3")


def test_hardware_trigger_a_frame_that_beats_the_plcs_message_waits_for_it():
    dev = LineFiredDevice()
    src = GenICamSource(lambda: dev, cam(trigger="hardware", pair_window_s=0.5))

    def feed(put):
        for i in range(4):
            dev.emit(i)  # the light barrier fires the camera; the PLC's message comes 50 ms later
            time.sleep(0.05)
            put(f"H{i}")
            time.sleep(0.1)

    got = _run_triggered(src, feed)
    assert [got[f"H{i}"].verdict.value for i in range(4)] == ["PASS"] * 4
    assert [got[f"H{i}"].frame_name.split(",")[0] for i in range(4)] == [f"camera frame {i}" for i in range(4)]
