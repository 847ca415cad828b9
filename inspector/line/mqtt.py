"""The MQTT link to the line (paho-mqtt 2.x; the only module that imports it).

Topics, for station ``S``: ``inspector/S/state`` (retained, QoS 1; the broker's last will says
``ready: false, reason: "offline"``), ``inspector/S/trigger`` (subscribed, QoS 1),
``inspector/S/result`` (QoS 1) and ``inspector/S/alarm`` (QoS 1: each alarm an ``[alarms]`` rule raises).
paho's network thread tries again every second while the broker is away (so the link is back within about
a second of the broker's return, with a fresh state message); ``send`` only queues, so a broker that is away
never holds up inspection. A trigger message that is not a JSON object of at most 4096 bytes, or whose
``part_id`` is not a string of 1-200 characters, or whose ``ts`` is not a time, is refused on the result
topic (NOT_INSPECTED, ``reasons`` ["refused: ..."]) and never inspected.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from inspector.core.alarms import Alarm
from inspector.core.config import LineMqttConfig
from inspector.core.errors import ConfigError
from inspector.core.types import Trigger
from inspector.line.desk import (
    MAX_TRIGGER_BYTES,
    LineResult,
    LineState,
    LinkStatus,
    now_iso,
    part_id_problem,
    plc_time,
    refusal,
)

log = logging.getLogger(__name__)

MAX_QUEUED = 1000  # results kept for a broker that is away; beyond this paho refuses and they are counted lost


def topics(station: str) -> dict[str, str]:
    """The station's topics (``+``, ``#`` and ``/`` in a station name would change their meaning: refused)."""
    if not station or any(c in station for c in "+#/\0"):
        raise ConfigError(f"[station] name = {station!r} cannot be part of an MQTT topic: use a name without "
                          "'/', '+', '#'.")
    base = f"inspector/{station}"
    return {"state": f"{base}/state", "trigger": f"{base}/trigger", "result": f"{base}/result",
            "alarm": f"{base}/alarm"}


class Refused(ValueError):
    """A trigger message that is not one; its text is the reason the line is told."""


def parse_trigger(payload: bytes, at: float) -> Trigger:
    """A trigger message: a JSON object ``{"part_id": str, "ts": PLC time, ...}`` (both optional; other keys are
    kept with the record). ``Refused`` (with the reason) for anything else: garbage is never inspected."""
    if len(payload) > MAX_TRIGGER_BYTES:
        raise Refused(f"trigger message of {len(payload)} bytes (at most {MAX_TRIGGER_BYTES})")
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused("the trigger message is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(f"the trigger message must be a JSON object, got {type(data).__name__}")
    pid = data.pop("part_id", None)
    if pid is not None and part_id_problem(pid):
        raise Refused(part_id_problem(pid))
    sent_at = None
    if "ts" in data:
        try:
            sent_at = plc_time(data["ts"])
        except (ValueError, TypeError, OverflowError) as e:
            raise Refused(f"ts: {e}") from None
    return Trigger(pid, at, data, "mqtt", sent_at)


def _no_delay(client, userdata, sock) -> None:  # noqa: ARG001
    """Send small packets at once: with Nagle's algorithm a result waits for the TCP acknowledgement of the
    trigger's PUBACK (up to 40 ms of the broker's delayed ACK)."""
    import socket

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


class MqttLink:
    """``LineInput`` and ``LineOutput`` over one MQTT broker."""

    def __init__(self, cfg: LineMqttConfig, station: str, offline: LineState) -> None:
        u = urlsplit(cfg.url)
        self.tls = u.scheme == "mqtts"
        self.host, self.port = u.hostname or "", u.port or (8883 if self.tls else 1883)
        self.name = f"mqtt {self.host}:{self.port}"
        self.topics = topics(station)
        self._on_trigger: Callable[[Trigger], None] | None = None
        self._state: LineState | None = None
        self._lock = threading.Lock()
        self._connected = False
        self._detail = "connecting"
        self._unacked: set[int] = set()
        self._reconnects = 0
        self._refused = 0  # trigger messages refused (garbage, bad part ids)
        self._ever = False
        self._closing = False
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id or f"inspector-{station}",
                        protocol=mqtt.MQTTv311, clean_session=True)
        if cfg.user:
            c.username_pw_set(cfg.user, cfg.password or None)
        if self.tls:
            c.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                      certfile=str(cfg.cert_file) if cfg.cert_file else None,
                      keyfile=str(cfg.key_file) if cfg.key_file else None)
            c.tls_insecure_set(cfg.tls_insecure)
        c.will_set(self.topics["state"], json.dumps(offline.payload()), qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=1)  # back within a second of the broker's return
        c.max_queued_messages_set(MAX_QUEUED)
        c.on_connect, c.on_disconnect = self._connected_cb, self._disconnected_cb
        c.on_message, c.on_publish = self._message_cb, self._published_cb
        c.on_socket_open = _no_delay
        self._client = c
        self._keepalive = cfg.keepalive_s

    # LineInput ------------------------------------------------------------------------------
    def listen(self, on_trigger: Callable[[Trigger], None]) -> None:
        """Connect (in the background: a broker that is away is retried) and hand each trigger over."""
        self._on_trigger = on_trigger
        self._client.connect_async(self.host, self.port, keepalive=self._keepalive)
        self._client.loop_start()

    # LineOutput -----------------------------------------------------------------------------
    def send(self, item: LineState | LineResult) -> None:
        if isinstance(item, LineState):
            with self._lock:
                self._state = item
            self._publish(self.topics["state"], item.payload(), retain=True)
        else:
            self._publish(self.topics["result"], item.payload(), retain=False)

    def alarm(self, alarm_id: int, alarm: Alarm) -> None:
        """``inspector/<station>/alarm``, QoS 1, not retained: ``{"alarm_id", "rule", "message", "ts"}``."""
        self._publish(self.topics["alarm"], {"alarm_id": alarm_id, "rule": alarm.rule, "message": alarm.message,
                                             "ts": now_iso()}, retain=False)

    def link(self) -> LinkStatus:
        with self._lock:
            return LinkStatus(self.name, self._connected, self._detail, len(self._unacked), self._reconnects,
                              self._refused)

    def close(self, last: LineState) -> None:
        """Say ``last`` (retained; a clean disconnect sends no last will) and disconnect."""
        info = self._publish(self.topics["state"], last.payload(), retain=True)
        if info is not None and self._connected:
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):  # not sent: the broker is away, its last will says offline
                pass
        deadline = time.monotonic() + 2.0
        while self._unacked and self._connected and time.monotonic() < deadline:
            time.sleep(0.02)  # the last results' acknowledgements
        with self._lock:
            self._closing = True
        self._client.disconnect()
        self._client.loop_stop()

    # paho callbacks (its network thread) ----------------------------------------------------
    def _publish(self, topic: str, payload: dict, retain: bool):
        try:
            info = self._client.publish(topic, json.dumps(payload), qos=1, retain=retain)
        except (ValueError, OSError) as e:
            log.warning("MQTT publish to %s failed: %s", topic, e)
            return None
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            log.warning("MQTT: %d messages wait for the broker already; %s dropped", MAX_QUEUED, topic)
            return None
        with self._lock:
            self._unacked.add(info.mid)
        return info

    def _connected_cb(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ARG002
        if reason_code.is_failure:
            with self._lock:
                self._connected, self._detail = False, f"refused by the broker: {reason_code}"
            log.warning("MQTT %s refused the connection: %s", self.name, reason_code)
            return
        client.subscribe(self.topics["trigger"], qos=1)
        with self._lock:
            self._connected, self._detail = True, "connected"
            if self._ever:
                self._reconnects += 1
            self._ever = True
            state = self._state
        log.info("MQTT connected to %s", self.name)
        if state is not None:  # the broker may have restarted (with an old retained state, or none): a fresh one
            self._publish(self.topics["state"], dataclasses.replace(state, ts=now_iso()).payload(), retain=True)

    def _disconnected_cb(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ARG002
        with self._lock:
            was = self._connected
            self._connected = False
            self._detail = "closed" if self._closing else f"disconnected ({reason_code}); reconnecting every second"
        if was and not self._closing:
            log.warning("MQTT link to %s lost: %s", self.name, reason_code)

    def _message_cb(self, client, userdata, msg) -> None:  # noqa: ARG002
        try:
            trig = parse_trigger(msg.payload, time.time())
        except Refused as e:
            log.warning("MQTT trigger refused (%s): %r", e, bytes(msg.payload[:80]))
            with self._lock:
                self._refused += 1
                state = self._state
            self._publish(self.topics["result"], refusal(str(e), state).payload(), retain=False)
            return
        if self._on_trigger is not None:
            try:
                self._on_trigger(trig)
            except Exception:  # noqa: BLE001 - paho's thread must live on, or no trigger is heard again
                log.exception("handling an MQTT trigger failed")

    def _published_cb(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ARG002
        with self._lock:
            self._unacked.discard(mid)
