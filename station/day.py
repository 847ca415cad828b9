"""The plant's day at the station: products (``[products.NAME]``) and their changeover, lot and work order,
shifts, and the alarm rules (``[alarms]``) with their records.

A product switch passes the same checks as a run's start (its recipe registered once the station has users,
its model trusted, its expected classes known to the model) and is one audit entry; the parts judged after it
carry the product and the recipe's hash. Alarms are raised on the writer thread from committed verdicts,
recorded (sealed, audited), offered to the line's outputs and to the window.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from inspector.core.alarms import Alarm, AlarmWatch
from inspector.core.auth import STATION_OPERATOR, Actor
from inspector.core.config import Config
from inspector.core.types import Inspection
from inspector.detection.registry import recipe_sha256

log = logging.getLogger(__name__)


def recipe_hash(cfg: Config) -> str:
    return recipe_sha256(cfg.recipe.model_dump(mode="json"))


def acting(actor: Actor | None) -> Actor | None:
    """The window's unsigned operator acts as nobody: the users table decides (a fresh install: anyone)."""
    return None if actor == STATION_OPERATOR else actor


class AlarmDesk:
    """Feeds committed verdicts to the rules; records each alarm raised and hands it on (writer thread)."""

    def __init__(self, cfg: Config, sessions: Any, run_id: int,
                 listeners: list[Callable[[int, Alarm], None]]) -> None:
        self.watch = AlarmWatch(cfg.alarms)
        self.station, self.sessions, self.run_id = cfg.station_name, sessions, run_id
        self.listeners = listeners
        self.rules: dict[int, str] = {}  # alarm id -> rule, to re-arm the rule when acknowledged
        self._lock = threading.Lock()  # fed on the writer thread, acknowledged from another

    def on_committed(self, items: list[tuple[int, Inspection]]) -> None:
        if not self.watch.enabled:
            return
        with self._lock:
            raised = [a for _, insp in items for a in self.watch.feed(insp.verdict)]
        for alarm in raised:
            self._raise(alarm)

    def raise_alarm(self, alarm: Alarm) -> None:
        """An alarm the station raises itself (not from verdicts): recorded and handed on like the rules' alarms."""
        self._raise(alarm)

    def _raise(self, alarm: Alarm) -> None:
        from db.repositories.alarms import AlarmRepo
        from db.writes import write

        log.warning("alarm on %s: %s", self.station, alarm.message)
        try:
            rec = write(self.sessions, lambda s: AlarmRepo.raise_(s, self.station, self.run_id, alarm.rule,
                                                                  alarm.message), "Recording an alarm")
            alarm_id = rec.id
        except Exception:  # noqa: BLE001 - an alarm that cannot be stored is still shown and sent
            log.exception("the alarm could not be recorded")
            alarm_id = 0
        with self._lock:
            self.rules[alarm_id] = alarm.rule
        for listener in self.listeners:
            try:
                listener(alarm_id, alarm)
            except Exception:  # noqa: BLE001 - one listener's failure must not stop the others or the writer
                log.exception("an alarm listener failed")

    def acknowledge(self, alarm_id: int, actor: Actor | None) -> str:
        """Record who acknowledged the alarm (PermissionDenied without a user allowed to run the station);
        the rule counts afresh. Returns who acknowledged it."""
        who = record_ack(self.sessions, alarm_id, actor) if alarm_id else (actor or STATION_OPERATOR).name
        with self._lock:
            rule = self.rules.pop(alarm_id, None)
            if rule is not None:
                self.watch.acknowledge(rule)
        return who


def record_ack(sessions: Any, alarm_id: int, actor: Actor | None) -> str:
    """Who acknowledged the alarm, recorded (sealed, audited); PermissionDenied without an allowed user."""
    from db.repositories.alarms import AlarmRepo
    from db.writes import write

    rec = write(sessions, lambda s: AlarmRepo.acknowledge(s, acting(actor), alarm_id),
                f"Acknowledging alarm {alarm_id}")
    return rec.acked_by or ""


def acknowledge_alarm(db_url: str, alarm_id: int, actor: Actor | None) -> str:
    """Acknowledge an alarm of a run that has ended (no station holds the database any more); returns who."""
    from db import open_database, session_factory

    engine = open_database(db_url)
    try:
        return record_ack(session_factory(engine), alarm_id, actor)
    finally:
        engine.dispose()
