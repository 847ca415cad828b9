"""The line, protocol-free: what a PLC is told (``LineState``, ``LineResult``) and the desk where its
triggers wait for a picture (``TriggerDesk``). The adapters (``inspector.line.mqtt``, ...) alone speak
a protocol; ``station.line`` wires them to a run.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from inspector.core.types import Inspection, Trigger, Verdict


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


MAX_PART_ID = 200
MAX_TRIGGER_BYTES = 4096  # a trigger message, extra keys included; beyond: refused, never stored


def part_id_problem(value: Any) -> str:
    """Why ``value`` is no part id ("" when it is one): a string of 1-200 characters, taken as it is (never cut,
    never stripped, never made from a number or a flag: ``777`` and ``"777"`` would be one part)."""
    if not isinstance(value, str):
        return f"part_id must be a string of 1-{MAX_PART_ID} characters, got {type(value).__name__}"
    if not 0 < len(value) <= MAX_PART_ID:
        return f"part_id must be a string of 1-{MAX_PART_ID} characters, got {len(value)}"
    if any(ord(c) < 32 for c in value):
        return "part_id must not hold control characters"
    return ""


def plc_time(value: Any) -> float:
    """The PLC's time of a trigger (``ts``): milliseconds since 1970 (a number) or ISO 8601 with a time zone;
    ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("ts must be milliseconds since 1970 or ISO 8601 with a time zone")
    if isinstance(value, (int, float)):
        return float(value) / 1000.0
    if isinstance(value, str):
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if t.tzinfo is None:
            raise ValueError("ts needs a time zone (e.g. 2026-01-01T08:00:00.000Z)")
        return t.timestamp()
    raise ValueError("ts must be milliseconds since 1970 or ISO 8601 with a time zone")


def stale_reason(trigger: Trigger, max_age_ms: float, now: float | None = None) -> str:
    """"" for a trigger without the PLC's time or within ``max_age_ms`` of it; else why it is refused."""
    if trigger.sent_at is None:
        return ""
    age_ms = ((time.time() if now is None else now) - trigger.sent_at) * 1000
    if age_ms > max_age_ms:
        return f"stale: the trigger is {age_ms:.0f} ms old (max_trigger_age_ms {max_age_ms:g})"
    if age_ms < -max_age_ms:
        return f"stale: the trigger is dated {-age_ms:.0f} ms ahead of the station's clock (clocks differ?)"
    return ""


@dataclass(frozen=True)
class LineState:
    """Whether the station can inspect now, and if not, why (``reason`` is "" when ready)."""

    ready: bool
    reason: str
    model_sha256: str = ""
    recipe: str = ""
    ts: str = field(default_factory=now_iso)

    def payload(self) -> dict[str, Any]:
        return {"ready": self.ready, "reason": self.reason, "model_sha256": self.model_sha256,
                "recipe": self.recipe, "ts": self.ts}


# where a result's record is: committed to the database, waiting in the outbox (no id yet), nowhere, or being
# written (an answer sent at once, before its record: not ready, stale)
STORED_DATABASE, STORED_OUTBOX, STORED_NONE, STORED_PENDING = "database", "outbox", "none", "pending"


@dataclass(frozen=True)
class LineResult:
    """The answer to one part, sent only once its record is committed (or safe in the outbox)."""

    part_id: str | None
    inspection_id: int | None
    seq: int
    verdict: str
    reasons: tuple[str, ...]
    defects: tuple[dict, ...]
    model_sha256: str
    recipe: str
    latency_ms: float
    ts: str
    stored: str = STORED_DATABASE

    def payload(self) -> dict[str, Any]:
        return {"part_id": self.part_id, "inspection_id": self.inspection_id, "seq": self.seq,
                "verdict": self.verdict, "reasons": list(self.reasons), "defects": [dict(d) for d in self.defects],
                "model_sha256": self.model_sha256, "recipe": self.recipe, "latency_ms": self.latency_ms,
                "ts": self.ts, "stored": self.stored}


def defect(label: str, confidence: float, x1: float, y1: float, x2: float, y2: float) -> dict[str, Any]:
    """One box as the line is told it."""
    return {"class": label, "confidence": round(float(confidence), 4),
            "box": [round(float(v), 1) for v in (x1, y1, x2, y2)]}


def result_of(record_id: int, insp: Inspection, recipe: str) -> LineResult:
    """The line's answer for a committed inspection (``record_id`` 0: it went to the outbox).

    ``latency_ms`` runs from the trigger (the PLC's time when it gave one, else its arrival) to now, else it is
    the inspection's own."""
    trig = insp.trigger
    latency = (time.time() - _since(trig)) * 1000 if trig is not None else insp.latency_ms
    defects = tuple(defect(d.label, d.confidence, d.x1, d.y1, d.x2, d.y2) for d in (insp.detections or ()))
    return LineResult(trig.part_id if trig is not None else None, record_id or None, insp.seq,
                      insp.verdict.value, insp.reasons, defects,
                      insp.model_sha256 or (insp.detections.model_sha256 if insp.detections else ""), recipe,
                      round(max(latency, 0.0), 1), insp.started_at.isoformat(timespec="milliseconds"),
                      STORED_DATABASE if record_id else STORED_OUTBOX)


def _since(trigger: Trigger) -> float:
    return trigger.sent_at if trigger.sent_at is not None else trigger.at


def unrecorded(trigger: Trigger, reason: str, model_sha256: str, recipe: str) -> LineResult:
    """NOT_INSPECTED for a trigger that no run can take any more (it ended or failed): no record exists."""
    return LineResult(trigger.part_id, None, 0, Verdict.NOT_INSPECTED.value, (reason,), (), model_sha256, recipe,
                      round(max((time.time() - _since(trigger)) * 1000, 0.0), 1), now_iso(), STORED_NONE)


def refusal(reason: str, state: LineState | None, part_id: str | None = None) -> LineResult:
    """The answer to a trigger message that is refused before it becomes a trigger (garbage, a bad part id):
    NOT_INSPECTED, ``reasons`` ["refused: ..."], nothing recorded."""
    return LineResult(part_id, None, 0, Verdict.NOT_INSPECTED.value, (f"refused: {reason}",), (),
                      state.model_sha256 if state else "", state.recipe if state else "", 0.0, now_iso(), STORED_NONE)


@dataclass(frozen=True)
class LinkStatus:
    """One connection to the line, as the I/O panel and the run summary show it."""

    name: str  # e.g. "mqtt 127.0.0.1:1883"
    connected: bool
    detail: str  # "connected", or why not and what the adapter does about it
    unacknowledged: int = 0  # results sent and not yet acknowledged (QoS 1 PUBACK, Modbus ResultAck)
    reconnects: int = 0
    missed: int = 0  # triggers this link could not take (Modbus: a Trigger while Busy)

    def payload(self) -> dict[str, Any]:
        return {"name": self.name, "connected": self.connected, "detail": self.detail,
                "unacknowledged": self.unacknowledged, "reconnects": self.reconnects, "missed": self.missed}


class TriggerDesk:
    """Triggers waiting for their picture, oldest first. The capture thread takes them (``take`` for a folder
    or video: the next picture; ``claim`` for a live source: the first picture newer than the trigger);
    ``due`` hands back those whose picture did not come within ``timeout_s`` and those refused at once
    (station not ready), each with its reason, to be recorded NOT_INSPECTED. Thread-safe."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._waiting: deque[Trigger] = deque()
        self._refused: list[tuple[Trigger, str]] = []
        self._cond = threading.Condition()
        self._closed = False

    def put(self, trigger: Trigger) -> bool:
        """A new trigger; False once the desk is closed (the run has ended: answer it elsewhere)."""
        with self._cond:
            if self._closed:
                return False
            self._waiting.append(trigger)
            self._cond.notify_all()
            return True

    def refuse(self, trigger: Trigger, reason: str) -> bool:
        """A trigger that is answered NOT_INSPECTED at once (``reason``); False once closed."""
        with self._cond:
            if self._closed:
                return False
            self._refused.append((trigger, reason))
            self._cond.notify_all()
            return True

    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def take(self, timeout_s: float) -> Trigger | None:
        """The oldest waiting trigger, waiting up to ``timeout_s`` for one."""
        with self._cond:
            if not self._waiting:
                self._cond.wait(timeout_s)
            return self._waiting.popleft() if self._waiting else None

    def claim(self, frame_time: float) -> Trigger | None:
        """The oldest trigger that came before a picture taken at ``frame_time``, or None."""
        with self._cond:
            if self._waiting and self._waiting[0].at < frame_time:
                return self._waiting.popleft()
            return None

    def due(self, wait_s: float = 0.0) -> list[tuple[Trigger, str]]:
        """Refused triggers and those past ``timeout_s`` without a picture, with why; waits up to ``wait_s``
        for a refusal when there is none."""
        with self._cond:
            if not self._refused and wait_s > 0:
                self._cond.wait(wait_s)
            out, self._refused = self._refused, []
            limit = time.time() - self.timeout_s
            while self._waiting and self._waiting[0].at <= limit:
                out.append((self._waiting.popleft(),
                            f"no picture within the trigger timeout ({self.timeout_s:g} s)"))
            return out

    def close(self, reason: str) -> list[tuple[Trigger, str]]:
        """No more triggers; those still waiting come back to be answered with ``reason``."""
        with self._cond:
            self._closed = True
            out = self._refused + [(t, reason) for t in self._waiting]
            self._refused, self._waiting = [], deque()
            self._cond.notify_all()
            return out

    @property
    def closed(self) -> bool:
        return self._closed
