"""The OPC UA link to the line: an asyncua server (the only module that imports asyncua) in its own thread
with its own event loop, in the spirit of OPC 40100 (Machine Vision): the station's state and its last
result as variables, a ``Trigger(part_id)`` method that answers with the verdict.

Address space, namespace ``urn:inspector:line``, object ``Objects/Inspector/<station>`` (string NodeIds
``Inspector/<station>/<name>``): ``Ready``, ``ReasonNotReady``, ``Busy``, ``PartId``, ``ResultCounter``,
``Verdict``, ``Reasons``, ``DefectCount``, ``InspectionId``, ``LatencyMs``, ``AlarmId``, ``AlarmRule``,
``AlarmMessage`` (read-only), and the method
``Trigger(PartId) -> (Verdict, InspectionId, Reasons)``, and ``TriggerAt(PartId, PlcTime)`` with the PLC's
clock (UtcTime): a trigger dated more than ``max_trigger_age_ms`` away is answered NOT_INSPECTED "stale", and
latency is measured from it. A result's variables change together, ``ResultCounter``
last. Access: user/password (anonymous only when allowed), Basic256Sha256 Sign / SignAndEncrypt with the
configured certificate or a self-signed one made once in the data folder; security None only when listed.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from inspector.core.alarms import Alarm
from inspector.core.config import LineOpcuaConfig, OpcuaSecurity
from inspector.core.errors import ConfigError, StorageError
from inspector.core.files import write_atomic
from inspector.core.types import Trigger, Verdict
from inspector.line.desk import LineResult, LineState, LinkStatus, part_id_problem

log = logging.getLogger(__name__)

NAMESPACE = "urn:inspector:line"
CERT_FILE, KEY_FILE = "server-cert.der", "server-key.pem"
ANSWER_GRACE_S = 1.0  # beyond trigger_timeout_s: inspecting and committing the part's record
RETRY_S = 3.0  # a server that cannot listen tries again after this
_S, _B, _U32, _I32, _I64, _D = (ua.VariantType.String, ua.VariantType.Boolean, ua.VariantType.UInt32,
                                ua.VariantType.Int32, ua.VariantType.Int64, ua.VariantType.Double)
#: the station object's variables: name -> (type, initial value)
VARIABLES: dict[str, tuple[ua.VariantType, Any]] = {
    "Ready": (_B, False), "ReasonNotReady": (_S, "starting"), "Busy": (_B, False), "PartId": (_S, ""),
    "ResultCounter": (_U32, 0), "Verdict": (_S, ""), "Reasons": (_S, []), "DefectCount": (_I32, 0),
    "InspectionId": (_I64, 0), "LatencyMs": (_D, 0.0),
    "AlarmId": (_I64, 0), "AlarmRule": (_S, ""), "AlarmMessage": (_S, "")}
_POLICY = {OpcuaSecurity.NONE: ua.SecurityPolicyType.NoSecurity,
           OpcuaSecurity.SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
           OpcuaSecurity.SIGN_AND_ENCRYPT: ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt}


def endpoint_address(endpoint: str) -> tuple[str, int]:
    u = urlsplit(endpoint)
    return u.hostname or "0.0.0.0", u.port or 4840


def check_port_free(endpoint: str) -> None:
    """ConfigError (one sentence) when the endpoint's port is taken by another program, before anything starts."""
    host, port = endpoint_address(endpoint)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as e:
        raise ConfigError(f"[line.opcua] endpoint = {endpoint!r}: the host {host!r} is unknown here ({e}).") from e
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # as the server will: a port in TIME_WAIT is free, one with a listener is not
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            why = "is already in use by another program" if e.errno in (errno.EADDRINUSE, 10048) else \
                f"cannot be had ({e.strerror or e})"
            raise ConfigError(f"[line.opcua] endpoint = {endpoint!r}: port {port} {why}; stop that program or "
                              "choose another port.") from None


def server_certificate(cfg: LineOpcuaConfig, folder: Path, app_uri: str) -> tuple[Path, Path]:
    """(certificate, private key): the configured ones, else a self-signed pair made once in ``folder``."""
    if cfg.cert_file is not None and cfg.key_file is not None:
        for f in (cfg.cert_file, cfg.key_file):
            if not Path(f).is_file():
                raise ConfigError(f"[line.opcua] {f} does not exist: give the server's certificate and key, or "
                                  "leave cert_file and key_file empty for a self-signed pair.")
        return Path(cfg.cert_file), Path(cfg.key_file)
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if cert.is_file() and key.is_file():
        return cert, key
    try:
        folder.mkdir(parents=True, exist_ok=True)
        k = cert_gen.generate_private_key()
        names = [x509.UniformResourceIdentifier(app_uri), x509.DNSName(socket.gethostname() or "localhost")]
        c = cert_gen.generate_self_signed_app_certificate(
            k, app_uri, {"commonName": app_uri[:64], "organizationName": "Inspector"}, names,
            extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], days=3650)
        write_atomic(key, cert_gen.dump_private_key_as_pem(k), 0o600)
        write_atomic(cert, c.public_bytes(Encoding.DER), 0o644)
    except OSError as e:
        raise StorageError(f"The OPC UA server's certificate could not be written to {folder} ({e}); make that "
                           "folder writable or set [line.opcua] cert_file and key_file.") from e
    log.warning("made a self-signed OPC UA certificate %s (key %s): clients that check the server's certificate "
                "must trust it", cert, key)
    return cert, key


class _Users:
    """asyncua's user manager: the configured user (password compared in constant time), anonymous if allowed."""

    def __init__(self, cfg: LineOpcuaConfig) -> None:
        self.user, self.password, self.anonymous = cfg.user, cfg.password, cfg.allow_anonymous

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:  # noqa: ARG002
        if username is None:
            return User(role=UserRole.User, name="anonymous") if self.anonymous else None
        ok = bool(self.user) and hmac.compare_digest(str(username).encode(), self.user.encode()) \
            and hmac.compare_digest(str(password or "").encode(), self.password.encode())
        if not ok:
            log.warning("OPC UA: refused user %r (wrong name or password)", str(username)[:60])
        return User(role=UserRole.User, name=self.user) if ok else None


def _outputs(verdict: str, inspection_id: int | None, reasons: tuple[str, ...] | list[str]) -> list[ua.Variant]:
    return [ua.Variant(verdict, _S), ua.Variant(int(inspection_id or 0), _I64), ua.Variant(list(reasons), _S)]


class OpcuaLink:
    """``LineInput`` and ``LineOutput`` as an OPC UA server."""

    def __init__(self, cfg: LineOpcuaConfig, station: str, cert_dir: Path, trigger_timeout_s: float) -> None:
        self.cfg, self.station = cfg, station
        self.host, self.port = endpoint_address(cfg.endpoint)
        self.name = f"opcua {self.host}:{self.port}"
        self.app_uri = f"urn:inspector:{station}"
        self.answer_s = trigger_timeout_s + ANSWER_GRACE_S
        logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger("asyncua").level))
        check_port_free(cfg.endpoint)
        self.cert, self.key = server_certificate(cfg, cert_dir, self.app_uri)
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {k: v for k, (_, v) in VARIABLES.items()}
        self._nodes: dict[str, ua.NodeId] = {}
        self._calls: dict[str, list[asyncio.Future]] = {}
        self._on_trigger: Callable[[Trigger], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._stop = threading.Event()
        self._listening = False
        self._detail = "starting"
        self._thread: threading.Thread | None = None

    # LineInput ------------------------------------------------------------------------------
    def listen(self, on_trigger: Callable[[Trigger], None]) -> None:
        self._on_trigger = on_trigger
        self._thread = threading.Thread(target=self._serve, name="inspector-opcua", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """The server's own event loop; a server that cannot listen says why and tries again."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        while not self._stop.is_set():
            try:
                loop.run_until_complete(self._run())
            except Exception as e:  # noqa: BLE001 - the station goes on inspecting; the link says why
                with self._lock:
                    self._listening, self._detail = False, f"cannot listen on {self.host}:{self.port}: {e}"
                log.warning("OPC UA server on %s:%d: %s", self.host, self.port, e)
            self._stop.wait(RETRY_S)
        loop.close()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        server = Server(user_manager=_Users(self.cfg))
        await server.init()
        server.set_endpoint(self.cfg.endpoint)
        server.set_server_name(f"Inspector {self.station}")
        await server.set_application_uri(self.app_uri)
        server.set_security_policy([_POLICY[p] for p in self.cfg.security])
        server.set_identity_tokens(([ua.AnonymousIdentityToken] if self.cfg.allow_anonymous else [])
                                   + ([ua.UserNameIdentityToken] if self.cfg.user else []))
        await server.load_certificate(str(self.cert))
        await server.load_private_key(str(self.key))
        await self._address_space(server)
        self._server = server
        await server.start()
        try:
            with self._lock:
                self._listening, self._detail = True, "listening, no client connected"
            log.info("OPC UA server listening on %s", self.cfg.endpoint)
            await self._apply(list(VARIABLES))
            while not self._stop.is_set():
                await asyncio.sleep(0.2)
        finally:
            with self._lock:
                self._listening = False
            self._server = None
            await server.stop()

    async def _address_space(self, server: Server) -> None:
        idx = await server.register_namespace(NAMESPACE)
        base = f"Inspector/{self.station}"
        folder = await server.nodes.objects.add_folder(ua.NodeId("Inspector", idx), ua.QualifiedName("Inspector", idx))
        obj = await folder.add_object(ua.NodeId(base, idx), ua.QualifiedName(self.station, idx))
        for name, (vtype, value) in VARIABLES.items():
            node = await obj.add_variable(ua.NodeId(f"{base}/{name}", idx), ua.QualifiedName(name, idx),
                                          ua.Variant(value, vtype))
            self._nodes[name] = node.nodeid
        arg = ua.Argument(Name="PartId", DataType=ua.NodeId(ua.ObjectIds.String), ValueRank=-1,
                          Description=ua.LocalizedText("The part in front of the camera (1 to 200 characters)"))
        outs = [ua.Argument(Name="Verdict", DataType=ua.NodeId(ua.ObjectIds.String), ValueRank=-1,
                            Description=ua.LocalizedText("PASS, FAIL, REVIEW or NOT_INSPECTED")),
                ua.Argument(Name="InspectionId", DataType=ua.NodeId(ua.ObjectIds.Int64), ValueRank=-1,
                            Description=ua.LocalizedText("The record's id in the database; 0: none")),
                ua.Argument(Name="Reasons", DataType=ua.NodeId(ua.ObjectIds.String), ValueRank=1,
                            ArrayDimensions=[0], Description=ua.LocalizedText("Why, in words"))]
        await obj.add_method(ua.NodeId(f"{base}/Trigger", idx), ua.QualifiedName("Trigger", idx), self._trigger_call,
                             [arg], outs)
        at = ua.Argument(Name="PlcTime", DataType=ua.NodeId(ua.ObjectIds.UtcTime), ValueRank=-1,
                         Description=ua.LocalizedText("When the PLC fired the trigger, by its clock (UTC)"))
        await obj.add_method(ua.NodeId(f"{base}/TriggerAt", idx), ua.QualifiedName("TriggerAt", idx),
                             self._trigger_at_call, [arg, at], outs)

    async def _apply(self, names: list[str], answer: LineResult | None = None) -> None:
        """Write these variables from ``_values`` (no await yields between them: a reader sees all or none),
        then hand ``answer`` to the Trigger calls waiting for its part (so a call returns after its variables)."""
        server = self._server
        if server is not None:
            with self._lock:
                values = [(n, self._values[n]) for n in names]
            for name, value in values:
                await server.write_attribute_value(self._nodes[name],
                                                   ua.DataValue(ua.Variant(value, VARIABLES[name][0])))
        if answer is not None:
            self._answer_calls(answer)

    def _schedule(self, names: list[str], answer: LineResult | None = None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self._apply(names, answer), loop)
            except RuntimeError:  # the loop is closing: the values wait for the next start
                pass

    async def _trigger_at_call(self, parent, part_id, plc_time) -> list[ua.Variant]:
        """The method ``TriggerAt(PartId, PlcTime)``: ``Trigger`` dated by the PLC's clock."""
        import datetime as dt

        when = plc_time.Value if isinstance(plc_time, ua.Variant) else plc_time
        if not isinstance(when, dt.datetime):
            return _outputs(Verdict.NOT_INSPECTED.value, None, ["refused: PlcTime must be a UtcTime"])
        if when.tzinfo is None:  # OPC UA DateTime is UTC
            when = when.replace(tzinfo=dt.timezone.utc)
        return await self._trigger_call(parent, part_id, when.timestamp())

    async def _trigger_call(self, parent, part_id, sent_at: float | None = None) -> list[ua.Variant]:  # noqa: ARG002
        """The method ``Trigger(PartId)``: waits for the part's result (never longer than the trigger timeout plus
        the time to record it) and returns it; NOT_INSPECTED with the reason when there is none."""
        raw = part_id.Value if isinstance(part_id, ua.Variant) else part_id
        if raw is None or raw == "":
            return _outputs(Verdict.NOT_INSPECTED.value, None, ["Trigger needs a PartId: nothing was inspected"])
        problem = part_id_problem(raw)  # taken as given: never cut, stripped or made from a number
        if problem:
            log.warning("OPC UA Trigger refused: %s", problem)
            return _outputs(Verdict.NOT_INSPECTED.value, None, [f"refused: {problem}"])
        pid = raw
        if self._on_trigger is None:
            return _outputs(Verdict.NOT_INSPECTED.value, None, ["station not ready: starting"])
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._calls.setdefault(pid, []).append(fut)
        self._set_busy()
        try:
            self._on_trigger(Trigger(pid, time.time(), {}, "opcua", sent_at))
            res: LineResult = await asyncio.wait_for(fut, self.answer_s)
            return _outputs(res.verdict, res.inspection_id, res.reasons)
        except (asyncio.TimeoutError, TimeoutError):
            log.warning("OPC UA Trigger(%r): no result within %.1f s", pid, self.answer_s)
            return _outputs(Verdict.NOT_INSPECTED.value, None, [f"no result within {self.answer_s:g} s"])
        except Exception as e:  # noqa: BLE001 - the caller gets an answer, the log the traceback
            log.exception("OPC UA Trigger(%r) failed", pid)
            return _outputs(Verdict.NOT_INSPECTED.value, None, [f"the trigger failed: {type(e).__name__}: {e}"])
        finally:
            waiting = self._calls.get(pid, [])
            if fut in waiting:
                waiting.remove(fut)
            if not waiting:
                self._calls.pop(pid, None)
            self._set_busy()

    def _set_busy(self) -> None:
        busy = any(self._calls.values())
        with self._lock:
            changed = self._values["Busy"] != busy
            self._values["Busy"] = busy
        if changed:
            self._schedule(["Busy"])

    def _answer_calls(self, res: LineResult) -> None:
        """On the server's loop: every Trigger call waiting for this part gets its result."""
        for fut in self._calls.get(res.part_id or "", []):
            if not fut.done():
                fut.set_result(res)

    # LineOutput -----------------------------------------------------------------------------
    def send(self, item: LineState | LineResult) -> None:
        """Never blocks: the values are kept and the server's loop writes them."""
        if isinstance(item, LineState):
            with self._lock:
                self._values.update(Ready=bool(item.ready), ReasonNotReady=item.reason)
            self._schedule(["Ready", "ReasonNotReady"])
            return
        with self._lock:
            v = self._values
            v.update(PartId=item.part_id or "", Verdict=item.verdict, Reasons=list(item.reasons),
                     DefectCount=len(item.defects), InspectionId=int(item.inspection_id or 0),
                     LatencyMs=float(item.latency_ms), ResultCounter=(int(v["ResultCounter"]) + 1) & 0xFFFFFFFF)
        self._schedule(["PartId", "Verdict", "Reasons", "DefectCount", "InspectionId", "LatencyMs", "ResultCounter"],
                       item if item.part_id else None)

    def alarm(self, alarm_id: int, alarm: Alarm) -> None:
        """The last alarm an ``[alarms]`` rule raised: ``AlarmRule``, ``AlarmMessage``, then ``AlarmId`` (a PLC
        watches ``AlarmId`` change)."""
        with self._lock:
            self._values.update(AlarmRule=alarm.rule, AlarmMessage=alarm.message, AlarmId=int(alarm_id))
        self._schedule(["AlarmRule", "AlarmMessage", "AlarmId"])

    def link(self) -> LinkStatus:
        server = self._server
        clients = len(server.bserver.clients) if server is not None and server.bserver is not None else 0
        with self._lock:
            detail = f"{clients} client connection(s)" if self._listening and clients else self._detail
            return LinkStatus(self.name, self._listening and clients > 0, detail, 0, 0, 0)

    def close(self, last: LineState) -> None:
        self.send(last)
        time.sleep(0.05)  # the last state's write and the last answers go out before the server stops
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            self._listening, self._detail = False, "closed"
