"""The line's two ports: triggers in (``LineInput``), states, results and alarms out (``LineOutput``,
``AlarmOutput``). Each protocol adapter in this room implements them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from inspector.core.alarms import Alarm
from inspector.core.types import Trigger
from inspector.line.desk import LineResult, LineState, LinkStatus


@runtime_checkable
class LineInput(Protocol):
    """Triggers from the line (a PLC over MQTT, OPC UA, Modbus): ``listen`` hands each one to ``on_trigger``
    (on the adapter's own thread; the callback never blocks)."""

    name: str

    def listen(self, on_trigger: Callable[[Trigger], None]) -> None: ...


@runtime_checkable
class LineOutput(Protocol):
    """Tells the line the station's ready state and each committed result; ``send`` never blocks inspection
    (a link that is down queues or drops, and says so in ``link()``)."""

    name: str

    def send(self, item: LineState | LineResult) -> None: ...

    def link(self) -> LinkStatus: ...

    def close(self, last: LineState) -> None: ...


@runtime_checkable
class AlarmOutput(Protocol):
    """Optional beside ``LineOutput``: an output that takes the station's alarms (``[alarms]``) has this verb;
    one without it is simply not told (MQTT and OPC UA have it; Modbus has not)."""

    def alarm(self, alarm_id: int, alarm: Alarm) -> None: ...
