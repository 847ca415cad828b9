"""The plant's day in the engine: shifts on the station's clock, alarm rules, products in the configuration,
and the runner stamping product, lot and shift on each part (switched between parts, never within one)."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest

from inspector.core.alarms import AlarmWatch
from inspector.core.config import AlarmsConfig, config_from_dict
from inspector.core.day import DayContext, Shifts
from inspector.core.errors import ConfigError
from inspector.core.types import Verdict

SHIFTS = Shifts({"A": "06:00-14:00", "B": "14:00-22:00", "C": "22:00-06:00"})


@pytest.fixture
def cet(monkeypatch):
    """The station runs in Central European time (UTC+1 in winter)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(("utc", "label"), [
    ("2026-11-30T05:00", "2026-11-30/A"),  # 06:00 local: A starts
    ("2026-11-30T12:59", "2026-11-30/A"),  # 13:59 local
    ("2026-11-30T13:00", "2026-11-30/B"),  # 14:00 local
    ("2026-11-30T21:30", "2026-11-30/C"),  # 22:30 local: C starts on the 30th
    ("2026-11-30T23:30", "2026-11-30/C"),  # 00:30 local on Dec 1: still the shift that started on the 30th
    ("2026-12-01T04:59", "2026-11-30/C"),  # 05:59 local on Dec 1
])
def test_shift_label_is_the_date_the_shift_started_in_the_station_zone(cet, utc, label):
    t = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.timezone.utc)
    assert SHIFTS.label_at(t) == label


def test_no_shift_covers_a_gap_and_none_defined_gives_empty():
    t = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
    assert Shifts({"N": "22:00-23:00"}).label_at(t) == ""
    assert Shifts().label_at(t) == ""


@pytest.mark.parametrize(("label", "error"), [
    ("2026-11-30", "expected DATE/NAME"), ("2026-13-30/A", "is not a date"), ("2026-11-30/X", "no shift 'X'"),
])
def test_a_bad_shift_label_is_one_sentence(label, error):
    with pytest.raises(ConfigError, match=error):
        SHIFTS.check_label(label)
    assert SHIFTS.check_label(" 2026-11-30/C ") == "2026-11-30/C"


@pytest.mark.parametrize(("data", "error"), [
    ({"shifts": {"A": "6-14"}}, "must be a span"),
    ({"shifts": {"A": "06:00-06:00"}}, "must be a span"),
    ({"shifts": {"A B": "06:00-14:00"}}, "shift name"),
    ({"products": {"bad name": {}}}, "product name"),
    ({"products": {"P": {"recipe": {"roi": [0.5, 0, 0.2, 1]}}}}, "roi must be fractions"),
    ({"alarms": {"min_yield_pct": 120}}, "alarms.min_yield_pct"),
])
def test_bad_day_configuration_is_refused_with_the_key(data, error):
    with pytest.raises(ConfigError, match=error):
        config_from_dict(data)


def test_products_and_shifts_round_trip_through_the_settings_file(tmp_path):
    from inspector.core.config import load_config, save_config

    cfg = config_from_dict({"shifts": {"A": "06:00-14:00", "C": "22:00-06:00"},
                            "products": {"P1": {"classes": ["scratch"], "recipe": {
                                "name": "p1", "roi": [0.1, 0.1, 0.9, 0.9],
                                "classes": {"scratch": {"fail_conf": 0.7}}}}},
                            "alarms": {"fail_streak": 3}})
    save_config(cfg, tmp_path / "c.toml")
    assert load_config(tmp_path / "c.toml") == cfg


def feed(watch: AlarmWatch, verdicts: str) -> list[str]:
    """P, F, N (NOT_INSPECTED), R: the rules raised, in order."""
    v = {"P": Verdict.PASS, "F": Verdict.FAIL, "N": Verdict.NOT_INSPECTED, "R": Verdict.REVIEW}
    return [a.rule for c in verdicts for a in watch.feed(v[c])]


def test_fail_streak_raises_once_until_acknowledged_then_counts_afresh():
    w = AlarmWatch(AlarmsConfig(fail_streak=3))
    assert feed(w, "FFPFF") == []
    assert feed(w, "F") == ["fail_streak"]
    assert feed(w, "FFFF") == []  # still active: not raised again
    w.acknowledge("fail_streak")
    assert feed(w, "FF") == []  # counts afresh after the acknowledgement
    assert feed(w, "F") == ["fail_streak"]


def test_yield_rule_looks_at_the_last_m_judged_parts_only():
    w = AlarmWatch(AlarmsConfig(min_yield_pct=80, yield_window=5))
    assert feed(w, "PPPP") == []  # fewer than M parts: no judgement yet
    assert feed(w, "NNN") == []  # not inspected parts are not judged
    assert feed(w, "F") == []  # 4/5 = 80 %: not under
    assert feed(w, "F") == ["low_yield"]  # 3/5 = 60 %


def test_not_inspected_rule_over_the_last_m_parts():
    w = AlarmWatch(AlarmsConfig(max_not_inspected_pct=40, not_inspected_window=5))
    assert feed(w, "NNPPP") == []  # 40 %: not over
    assert feed(w, "NN") == []  # the windows N P P P N and P P P N N: still 40 %
    assert feed(w, "N") == ["not_inspected"]  # P P N N N: 60 %
    w2 = AlarmWatch(AlarmsConfig())
    assert not w2.enabled and feed(w2, "FFFFFFFFNNNN") == []


def test_runner_stamps_the_day_and_switches_between_parts(part_image):
    from inspector.core.config import RecipeConfig, RunMode
    from inspector.core.types import Frame
    from inspector.inspection.pipeline import Pipeline
    from inspector.inspection.rules import Recipe
    from inspector.inspection.runner import Runner
    from tests.conftest import ScriptedDetector
    from tests.fakes import ListSink

    class Frames:
        name, live = "frames", False

        def __init__(self) -> None:
            self.n = 0

        def read(self):
            self.n += 1
            return Frame(part_image.copy(), self.n - 1, "frames", time.time()) if self.n <= 40 else None

        def close(self) -> None:
            pass

    built = []

    def factory(fail: float):
        def make() -> Pipeline:
            built.append(fail)
            return Pipeline(ScriptedDetector([[("scratch", 0.6, (10, 10, 40, 40))]]), Recipe(RecipeConfig(
                fail_conf=fail, review_conf=0.1)))
        return make

    sink = ListSink()
    runner = Runner(Frames(), factory(0.5), sink, RunMode.PART)
    runner.switch(DayContext("P1", "L1", "WO1", "a" * 64, SHIFTS))
    runner.start()
    while len(sink.items) < 10:
        time.sleep(0.01)
    runner.switch(DayContext("P2", "L1", "", "b" * 64, SHIFTS), factory(0.9))
    runner.switch(DayContext("P2", "L2", "", "b" * 64, SHIFTS))  # the lot, set before the switch is taken
    assert runner.join(10)
    days = [(i.day.product, i.day.lot, i.verdict) for i in sink.items]
    assert len(days) == 40 and days[0] == ("P1", "L1", Verdict.FAIL) and days[-1] == ("P2", "L2", Verdict.REVIEW)
    # one switch point: every P1 part judged by the first recipe (FAIL at 0.6), every P2 part by the second
    first_p2 = next(k for k, d in enumerate(days) if d[0] == "P2")
    assert all(d == ("P1", "L1", Verdict.FAIL) for d in days[:first_p2])
    assert all(d == ("P2", "L2", Verdict.REVIEW) for d in days[first_p2:])
    assert built == [0.5, 0.9]
    assert sink.items[0].day.shift == SHIFTS.label_at(sink.items[0].started_at)
    with pytest.raises(ValueError, match="lot of at most"):
        DayContext(lot="x" * 101)
    assert np is not None


def test_alarms_are_offered_to_line_outputs_that_take_them():
    from inspector.core.alarms import Alarm
    from inspector.core.config import Config
    from station.line import LineLink

    class Output:
        name = "plc"

        def __init__(self) -> None:
            self.sent: list = []

        def send(self, item) -> None:
            self.sent.append(item)

        def link(self):
            return None

        def close(self, last) -> None:
            pass

    class AlarmOutput(Output):
        def alarm(self, alarm_id, alarm) -> None:
            self.sent.append((alarm_id, alarm.rule))

    class Broken(Output):
        def alarm(self, alarm_id, alarm) -> None:
            raise OSError("link down")

    plain, taking, broken = Output(), AlarmOutput(), Broken()
    link = LineLink(Config(), "0" * 64, links=[plain, broken, taking])
    link.alarm(7, Alarm("fail_streak", "3 FAIL parts in a row"))
    assert taking.sent == [(7, "fail_streak")] and plain.sent == [], "only an output with the hook is told"
