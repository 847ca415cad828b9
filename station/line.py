"""The station's side of the line: adapters built from ``[line]``, triggers handed to the run, results
sent once committed, the ready state kept true to what the station can do, figures for the I/O panel.

Each part is answered exactly once per trigger: a ``part_id`` triggered again is answered with the
same result (the record made the first time), also while the first is still being inspected.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections import OrderedDict
from typing import Any

from inspector.core.config import Config, LineTrigger
from inspector.core.types import Inspection, Trigger, Verdict
from inspector.line.desk import (
    STORED_PENDING,
    LineResult,
    LineState,
    TriggerDesk,
    defect,
    result_of,
    stale_reason,
    unrecorded,
)
from inspector.line.ports import AlarmOutput, LineInput, LineOutput
from inspector.sources.live import CameraState

log = logging.getLogger(__name__)

KEEP_PARTS = 10_000  # answered part ids remembered for repeats (also those recorded before a restart)
STATE_EVERY_S = 0.1  # how often readiness is looked at


def remembered(sessions, station: str, window_h: float) -> list[LineResult]:
    """The answers this station recorded for triggered parts in the last ``window_h`` hours (newest first), so
    that a part triggered again after a restart gets the same inspection."""
    from db.repositories.parts import answered_parts
    from db.writes import write

    if window_h <= 0:
        return []
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=window_h)
    found = write(sessions, lambda s: answered_parts(s, station, since, KEEP_PARTS), "Reading the parts answered")
    return [LineResult(a.part_id, a.inspection_id, a.seq, a.verdict, a.reasons, tuple(defect(*d) for d in a.defects),
                       a.model_sha256, a.recipe, round(a.latency_ms, 1),
                       a.created_at.isoformat(timespec="milliseconds"))
            for a in found]


def build_links(cfg: Config, offline: LineState) -> list[Any]:
    """The adapters ``[line]`` asks for (each protocol's library imported only when configured)."""
    links: list[Any] = []
    if cfg.line.mqtt is not None:
        from inspector.line.mqtt import MqttLink

        links.append(MqttLink(cfg.line.mqtt, cfg.station_name, offline))
    if cfg.line.modbus is not None:
        from inspector.line.modbus import ModbusLink

        links.append(ModbusLink(cfg.line.modbus))
    if cfg.line.opcua is not None:
        from inspector.core.home import data_home
        from inspector.line.opcua import OpcuaLink
        from station.records import station_folder

        certs = data_home() / "opcua" / station_folder(cfg.station_name)  # its self-signed certificate, if made
        links.append(OpcuaLink(cfg.line.opcua, cfg.station_name, certs, cfg.line.trigger_timeout_s))
    return links


class LineLink:
    """Triggers in, results and ready state out, for one run."""

    def __init__(self, cfg: Config, model_sha256: str, links: list[Any] | None = None,
                 answered: list[LineResult] = ()) -> None:
        self.recipe, self.model_sha256 = cfg.recipe.name, model_sha256
        self.trigger = cfg.line.trigger
        self.max_age_ms = cfg.line.max_trigger_age_ms
        self._early: dict[Trigger, LineResult] = {}  # answered at once (not ready, stale), recorded later
        offline = self._state(False, "offline")
        self.links = build_links(cfg, offline) if links is None else links
        self.outputs: list[LineOutput] = [x for x in self.links if isinstance(x, LineOutput)]
        self.inputs: list[LineInput] = [x for x in self.links if isinstance(x, LineInput)]
        self.desk = TriggerDesk(cfg.line.trigger_timeout_s) if self.trigger != LineTrigger.NONE else None
        self._lock = threading.Lock()
        self._parts: OrderedDict[str, LineResult | int] = OrderedDict()  # answer, or answers owed while in flight
        for res in reversed(answered[:KEEP_PARTS]):  # recorded before this run (newest first): oldest in first
            self._parts[res.part_id] = res  # type: ignore[index]
        self._runner: Any = None
        self._camera: CameraState | None = None
        self._closed = threading.Event()
        self._sent_state: tuple[bool, str] | None = None
        self.triggers = self.answered = self.repeats = self.missed = 0
        self.last_trigger: dict[str, Any] | None = None
        self.last_result: dict[str, Any] | None = None
        self._watch: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return bool(self.links)

    def _state(self, ready: bool, reason: str) -> LineState:
        return LineState(ready, reason, self.model_sha256, self.recipe)

    # lifecycle ------------------------------------------------------------------------------
    def start(self, runner: Any) -> None:
        """Listen for triggers and keep the ready state current while ``runner`` runs."""
        self._runner = runner
        self._send_state(self._state(False, "starting: loading the model"))
        for i in self.inputs:  # connects the link too (in the background)
            i.listen(self.on_trigger)
        self._watch = threading.Thread(target=self._watch_ready, name="inspector-line", daemon=True)
        self._watch.start()

    def close(self, reason: str = "stopped") -> None:
        """The run is over: triggers still waiting are answered, the state says not ready, links close."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self.desk is not None:  # the run answered what it took; what came after is answered here
            for trig, why in self.desk.close(reason):
                self._answer_unrecorded(trig, why)
        last = self._state(False, reason)
        for o in self.outputs:
            try:
                o.close(last)
            except Exception:  # noqa: BLE001 - closing one link must not keep the others open
                log.exception("closing the line link %s failed", o.name)

    # readiness ------------------------------------------------------------------------------
    def camera(self, state: CameraState) -> None:
        self._camera = state

    def not_ready(self) -> str:
        """Why the station cannot inspect now ("" when it can)."""
        r = self._runner
        if self._closed.is_set() or (self.desk is not None and self.desk.closed):
            return "stopped"
        if r is None:
            return "starting"
        if r.error is not None:
            return f"stopped: {r.error}"
        if not r.ready:
            return "starting: loading the model"
        if not r.running:
            return "stopped"
        if r.paused:
            return "paused"
        blocked = getattr(r.sink, "blocked_s", None)
        if blocked is not None and blocked():
            return f"the record is blocked ({blocked():.0f} s past its write deadline)"
        cam = self._camera
        if cam is not None and cam.state in ("reconnecting", "stopped", "connecting"):
            return f"camera {cam.state}" + (f": {cam.reason}" if cam.reason else "")
        return ""

    def _watch_ready(self) -> None:
        while not self._closed.wait(STATE_EVERY_S):
            why = self.not_ready()
            self._send_state(self._state(not why, why))

    def _send_state(self, state: LineState) -> None:
        key = (state.ready, state.reason)
        if key == self._sent_state:
            return
        self._sent_state = key
        log.info("line state: %s", "ready" if state.ready else f"not ready ({state.reason})")
        for o in self.outputs:
            o.send(state)

    # triggers in, results out ---------------------------------------------------------------
    def on_trigger(self, trig: Trigger) -> None:
        """From an adapter's thread: a repeat is answered from memory, a new part goes to the run."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        with self._lock:
            self.triggers += 1
            self.last_trigger = {"part_id": trig.part_id, "ts": now, "via": trig.via}
            known = self._parts.get(trig.part_id) if trig.part_id is not None else None
            if isinstance(known, int):  # the first is still being inspected: answer both when it is done
                self._parts[trig.part_id] = known + 1  # type: ignore[index]
                self.repeats += 1
                return
            if known is None and trig.part_id is not None:
                self._parts[trig.part_id] = 1
        if isinstance(known, LineResult):
            with self._lock:
                self.repeats += 1
            self._send(known)
            return
        if trig.via != self.trigger.value:
            self._answer_unrecorded(trig, f"this station takes no triggers by {trig.via} ([line] trigger = "
                                          f"{self.trigger.value!r})")
            return
        stale = stale_reason(trig, self.max_age_ms)
        why = self.not_ready()
        desk = self.desk
        if stale or why:
            self._refuse_now(trig, stale or f"station not ready: {why}")
            return
        if desk is None or not desk.put(trig):
            self._answer_unrecorded(trig, "station not ready: stopped")

    def _refuse_now(self, trig: Trigger, reason: str) -> None:
        """Answer NOT_INSPECTED at once (the PLC must not wait for the run's queue and writer), and have the run
        record it: its record is not sent again, only remembered for repeats."""
        res = dataclasses.replace(unrecorded(trig, reason, self.model_sha256, self.recipe), stored=STORED_PENDING)
        desk = self.desk
        with self._lock:
            self._early[trig] = res
        self._settle(res, True)
        if desk is None or not desk.refuse(trig, reason):
            with self._lock:
                self._early.pop(trig, None)

    def on_committed(self, items: list[tuple[int, Inspection]]) -> None:
        """From the writer thread, after the commit: each part's answer (as many times as it was triggered)."""
        for rid, insp in items:
            res = result_of(rid, insp, self.recipe)
            with self._lock:
                early = self._early.pop(insp.trigger, None) if insp.trigger is not None else None
                if early is not None and res.part_id is not None:  # answered already: remembered, not sent
                    self._parts[res.part_id] = res
            if early is None:
                self._settle(res, insp.trigger is not None)

    def _answer_unrecorded(self, trig: Trigger, why: str) -> None:
        self._settle(unrecorded(trig, why, self.model_sha256, self.recipe), True)

    def _settle(self, res: LineResult, triggered: bool) -> None:
        times = 1
        with self._lock:
            if res.part_id is not None:
                owed = self._parts.get(res.part_id)
                times = owed if isinstance(owed, int) else 1
                self._parts[res.part_id] = res
                self._parts.move_to_end(res.part_id)
                while len(self._parts) > KEEP_PARTS:
                    self._parts.popitem(last=False)
            if triggered and res.verdict == Verdict.NOT_INSPECTED.value:
                self.missed += 1
            self.answered += 1
        for _ in range(times):
            self._send(res)

    def _send(self, res: LineResult) -> None:
        with self._lock:
            self.last_result = {"part_id": res.part_id, "verdict": res.verdict, "inspection_id": res.inspection_id,
                                "ts": res.ts}
        for o in self.outputs:
            try:
                o.send(res)
            except Exception:  # noqa: BLE001 - a link's fault never stops inspection
                log.exception("sending a result on %s failed", o.name)

    # figures ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Each connection's state, last trigger and result, missed triggers, unacknowledged results."""
        links = [o.link().payload() for o in self.outputs]
        why = self.not_ready()
        with self._lock:
            return {"trigger": self.trigger.value, "ready": not why, "reason": why, "links": links,
                    "triggers": self.triggers, "answered": self.answered, "repeats": self.repeats,
                    "missed": self.missed + sum(x["missed"] for x in links),
                    "unacknowledged": sum(x["unacknowledged"] for x in links),
                    "link_down": any(not x["connected"] for x in links),
                    "last_trigger": self.last_trigger, "last_result": self.last_result}

    def alarm(self, alarm_id: int, alarm: Any) -> None:
        """Offer an alarm to each output that has an ``alarm(alarm_id, alarm)`` hook (MQTT and OPC UA have
        one; Modbus has not, so it is not told); a failing hook is logged, never raised."""
        for out in self.outputs:
            if not isinstance(out, AlarmOutput):
                continue
            try:
                out.alarm(alarm_id, alarm)
            except Exception:  # noqa: BLE001 - the line's link must not stop the station's writer
                log.exception("%s could not take the alarm", getattr(out, "name", out))
