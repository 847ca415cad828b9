"""Alarm rules (``[alarms]``): small pure predicates over the stream of committed verdicts.

A rule that fires raises one ``Alarm`` and stays quiet until the alarm is acknowledged; acknowledging
starts the rule's count afresh, so the same condition raises again only on parts judged after it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from inspector.core.config import AlarmsConfig
from inspector.core.types import Verdict

RULES = ("fail_streak", "low_yield", "not_inspected", "model_refused")  # the last: a promoted model a station
# could not load (issue 30), raised by the station, not by a verdict


@dataclass(frozen=True)
class Alarm:
    rule: str  # one of RULES
    message: str  # one sentence for the operator

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"expected an alarm rule among {list(RULES)}, got {self.rule!r}")


class AlarmWatch:
    """Feed committed verdicts in order; ``feed`` returns the alarms that this verdict raised."""

    def __init__(self, cfg: AlarmsConfig) -> None:
        self.cfg = cfg
        self.active: set[str] = set()
        self._streak = 0
        self._yield: deque[Verdict] = deque(maxlen=cfg.yield_window)
        self._ni: deque[bool] = deque(maxlen=cfg.not_inspected_window)

    @property
    def enabled(self) -> bool:
        c = self.cfg
        return bool(c.fail_streak or c.min_yield_pct or c.max_not_inspected_pct)

    def feed(self, verdict: Verdict) -> list[Alarm]:
        self._streak = self._streak + 1 if verdict == Verdict.FAIL else 0
        self._ni.append(verdict == Verdict.NOT_INSPECTED)
        if verdict != Verdict.NOT_INSPECTED:
            self._yield.append(verdict)
        raised = [a for a in (self._fail_streak(), self._low_yield(), self._not_inspected())
                  if a is not None and a.rule not in self.active]
        self.active.update(a.rule for a in raised)
        return raised

    def acknowledge(self, rule: str) -> None:
        """The operator saw it: the rule counts afresh from the next part."""
        self.active.discard(rule)
        if rule == "fail_streak":
            self._streak = 0
        elif rule == "low_yield":
            self._yield.clear()
        elif rule == "not_inspected":
            self._ni.clear()

    def _fail_streak(self) -> Alarm | None:
        n = self.cfg.fail_streak
        if n and self._streak >= n:
            return Alarm("fail_streak", f"{self._streak} FAIL parts in a row (alarm at {n})")
        return None

    def _low_yield(self) -> Alarm | None:
        c = self.cfg
        if not c.min_yield_pct or len(self._yield) < c.yield_window:
            return None
        pct = sum(v == Verdict.PASS for v in self._yield) / len(self._yield) * 100
        if pct < c.min_yield_pct:
            return Alarm("low_yield", f"yield {pct:.1f} % over the last {len(self._yield)} judged parts "
                                      f"(alarm under {c.min_yield_pct:g} %)")
        return None

    def _not_inspected(self) -> Alarm | None:
        c = self.cfg
        if not c.max_not_inspected_pct or len(self._ni) < c.not_inspected_window:
            return None
        pct = sum(self._ni) / len(self._ni) * 100
        if pct > c.max_not_inspected_pct:
            return Alarm("not_inspected", f"{pct:.1f} % of the last {len(self._ni)} parts NOT INSPECTED "
                                          f"(alarm over {c.max_not_inspected_pct:g} %)")
        return None
