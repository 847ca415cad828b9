"""Triggered acquisition without a protocol: the desk, the runner taking a picture per trigger, the answers."""

from __future__ import annotations

import threading
import time

import pytest

from inspector.core.config import RecipeConfig, RunMode, config_from_dict
from inspector.core.errors import ConfigError
from inspector.core.types import Frame, Gap, Trigger, Verdict
from inspector.inspection.pipeline import Pipeline
from inspector.inspection.rules import Recipe
from inspector.inspection.runner import Runner
from inspector.line.desk import TriggerDesk, result_of
from tests.conftest import ScriptedDetector
from tests.fakes import ListSink
from tests.test_runner import CountingSource, SlowDetector


def trig(pid, at=None):
    return Trigger(pid, time.time() if at is None else at, {"lot": "L1"}, "test")


class LiveClock:
    """A live source: a new picture every ``every_s`` (or only gaps when ``down``), stamped when taken."""

    live = True
    name = "live"

    def __init__(self, image, every_s=0.02, down=False):
        self.image, self.every_s, self.down, self.seq = image, every_s, down, 0
        self.closed = threading.Event()
        self.stamps: dict[str, float] = {}

    def read(self):
        time.sleep(self.every_s)
        if self.closed.is_set():
            return None
        if self.down:
            return Gap("camera dropped", time.monotonic())
        self.seq += 1
        f = Frame(self.image, self.seq, self.name, time.time(), f"frame {self.seq}")
        self.stamps[f.name] = f.timestamp
        return f

    def close(self):
        self.closed.set()


def runner(source, detector, desk, committed):
    return Runner(source, lambda: Pipeline(detector, Recipe(RecipeConfig())), ListSink(), RunMode.STREAM,
                  queue_size=4, on_committed=committed.extend, desk=desk)


def wait(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_desk_hands_triggers_out_oldest_first_and_times_them_out():
    d = TriggerDesk(0.2)
    a, b = trig("A", time.time() - 0.05), trig("B")
    d.put(a)
    d.put(b)
    assert d.claim(a.at - 1) is None  # a picture from before the trigger is never its picture
    assert d.claim(time.time() + 0.001) is a
    assert d.take(0.01) is b and d.take(0.01) is None
    d.put(trig("C", time.time() - 1))
    d.refuse(trig("D"), "station not ready: paused")
    due = d.due()
    assert [(t.part_id, "timeout" in why or why) for t, why in due] == [("D", "station not ready: paused"),
                                                                         ("C", True)]
    d.put(trig("E"))
    assert [t.part_id for t, _ in d.close("stopped")] == ["E"]
    assert d.put(trig("F")) is False and d.refuse(trig("G"), "x") is False


def test_a_folder_gives_one_picture_per_trigger_and_none_without(part_image):
    src, committed, desk = CountingSource(100, part_image), [], TriggerDesk(5.0)
    r = runner(src, ScriptedDetector([[]]), desk, committed)
    r.start()
    assert r.wait_ready(30)
    time.sleep(0.3)
    assert src.i == 0, "the folder was read without a trigger"
    for i in range(5):
        desk.put(trig(f"P{i}"))
    wait(lambda: len(committed) == 5)
    time.sleep(0.2)
    r.stop()
    assert r.join(10)
    assert src.i == 5 and len(committed) == 5
    assert [insp.trigger.part_id for _, insp in committed] == [f"P{i}" for i in range(5)]
    assert all(insp.verdict == Verdict.PASS and insp.trigger.extra == {"lot": "L1"} for _, insp in committed)


def test_a_live_trigger_takes_the_first_picture_after_it(part_image):
    src, committed, desk = LiveClock(part_image, every_s=0.03), [], TriggerDesk(5.0)
    r = runner(src, ScriptedDetector([[]]), desk, committed)
    r.start()
    assert r.wait_ready(30)
    wait(lambda: src.seq >= 3)  # the camera runs before any trigger
    sent, put_at = [], []
    for i in range(5):
        t = trig(f"L{i}")
        sent.append(t)
        desk.put(t)
        put_at.append(time.time())
        time.sleep(0.1)  # the line's pace between parts (not what decides the test)
    wait(lambda: len(committed) == 5)
    r.stop()
    assert r.join(10)
    assert src.seq > 5  # it kept capturing between the parts
    for t, (_, insp) in zip(sent, committed, strict=True):
        assert insp.trigger is t and insp.verdict == Verdict.PASS
    # each trigger took a picture taken after it, and no later than the first picture taken once the desk held it
    # (and the previous part had its picture): decided by the pictures' own stamps, not by how fast they came
    taken = [src.stamps[insp.frame_name] for _, insp in committed]
    stamps, prev = sorted(src.stamps.values()), 0.0
    for t, put, ft in zip(sent, put_at, taken, strict=True):
        first = min((s for s in stamps if s > max(put, prev)), default=float("inf"))
        assert t.at < ft <= first, "not the first picture after the trigger"
        prev = ft


def test_a_trigger_without_a_picture_is_answered_not_inspected_with_the_reason(part_image):
    src, committed, desk = LiveClock(part_image, down=True), [], TriggerDesk(0.3)
    r = runner(src, ScriptedDetector([[]]), desk, committed)
    r.start()
    assert r.wait_ready(30)
    t0 = time.monotonic()
    desk.put(trig("X1"))
    wait(lambda: len(committed) == 1)
    assert time.monotonic() - t0 >= 0.25  # not answered before its timeout (0.3 s)
    insp = committed[0][1]
    assert insp.verdict == Verdict.NOT_INSPECTED and insp.trigger.part_id == "X1"
    assert insp.reasons == ("no picture within the trigger timeout (0.3 s)",)
    desk.refuse(trig("X2"), "station not ready: camera reconnecting")
    wait(lambda: len(committed) == 2)
    assert committed[1][1].reasons == ("station not ready: camera reconnecting",)
    r.stop()
    assert r.join(10)


def test_a_trigger_storm_gets_one_answer_per_trigger(part_image):
    """More triggers than the station can take: each is answered once, inspected or timed out, in order."""
    src, committed, desk = CountingSource(10_000, part_image), [], TriggerDesk(0.4)
    r = runner(src, SlowDetector(0.05), desk, committed)
    r.start()
    assert r.wait_ready(30)
    for i in range(60):
        desk.put(trig(f"S{i:02d}"))
    wait(lambda: len(committed) == 60)
    time.sleep(0.3)
    r.stop()
    assert r.join(10)
    ids = [insp.trigger.part_id for _, insp in committed]
    assert sorted(ids) == [f"S{i:02d}" for i in range(60)] and len(set(ids)) == 60
    verdicts = {insp.verdict for _, insp in committed}
    assert verdicts == {Verdict.PASS, Verdict.NOT_INSPECTED}
    late = [insp for _, insp in committed if insp.verdict == Verdict.NOT_INSPECTED]
    assert all("trigger timeout" in insp.reasons[0] for insp in late)


def test_triggers_still_waiting_when_the_run_ends_are_answered(part_image):
    src, committed, desk = LiveClock(part_image, down=True), [], TriggerDesk(30.0)
    r = runner(src, ScriptedDetector([[]]), desk, committed)
    r.start()
    assert r.wait_ready(30)
    desk.put(trig("E1"))
    time.sleep(0.1)
    r.stop()
    assert r.join(10)
    assert [(i.trigger.part_id, i.reasons) for _, i in committed] == [
        ("E1", ("the run ended before a picture was taken",))]


def test_result_of_an_outbox_record_has_no_id_yet(part_image):
    from inspector.inspection.pipeline import Pipeline as P

    insp = P(ScriptedDetector([[("scratch", 0.9, (1, 2, 30, 40))]]), Recipe(RecipeConfig())).inspect(
        Frame(part_image, 3, "s", time.time(), "f", trigger=trig("Q1")))
    res = result_of(0, insp, "default")
    assert res.inspection_id is None and res.stored == "outbox" and res.part_id == "Q1"
    assert res.payload()["defects"] == [{"class": "scratch", "confidence": 0.9, "box": [1.0, 2.0, 30.0, 40.0]}]
    assert result_of(12, insp, "default").payload()["inspection_id"] == 12


@pytest.mark.parametrize("data, error", [
    ({"line": {"trigger": "mqtt"}}, "needs a [line.mqtt] section"),
    ({"line": {"mqtt": {"url": "http://broker"}}}, "line.mqtt.url"),
    ({"line": {"trigger": "plc"}}, "line.trigger"),
    ({"line": {"trigger_timeout_s": 0}}, "line.trigger_timeout_s"),
    ({"line": {"mqtt": {"url": "mqtt://b:1883", "colour": 1}}}, "unknown key"),
    ({"station": {"name": "a"}, "run": {"station": "b"}}, "disagree"),
])
def test_bad_line_settings_are_one_sentence(data, error):
    with pytest.raises(ConfigError, match=None) as e:
        config_from_dict(data)
    assert error in str(e.value)


def test_the_station_name_is_one_setting():
    assert config_from_dict({"run": {"station": "line-4"}}).station_name == "line-4"  # the older key still works
    assert config_from_dict({"station": {"name": "cell-2"}}).station_name == "cell-2"
    import socket

    assert config_from_dict({}).station_name == socket.gethostname()


@pytest.mark.parametrize("opcua, error", [
    ({}, "nobody could connect"),  # anonymous is off by default: a server nobody may use is refused
    ({"user": "plc"}, "has no password"),
    ({"allow_anonymous": True, "security": ["plain"]}, "line.opcua.security"),
    ({"allow_anonymous": True, "cert_file": "c.der"}, "go together"),
    ({"allow_anonymous": True, "endpoint": "http://h:1"}, "line.opcua.endpoint"),
])
def test_an_opcua_server_nobody_could_use_safely_is_refused(opcua, error):
    with pytest.raises(ConfigError, match=error):
        config_from_dict({"line": {"trigger": "opcua", "opcua": opcua}})


def test_the_readmes_opcua_section_is_a_valid_configuration():
    opcua = config_from_dict({"line": {"trigger": "opcua", "opcua": {
        "endpoint": "opc.tcp://0.0.0.0:4840", "user": "plc", "password": "change-me", "allow_anonymous": False,
        "security": ["basic256sha256_sign", "basic256sha256_signandencrypt"], "cert_file": ""}}}).line.opcua
    assert opcua.cert_file is None and opcua.key_file is None and "none" not in {p.value for p in opcua.security}
