"""The Modbus TCP link to the line: a pymodbus server (the only module that imports pymodbus) that the
PLC polls and writes. Addresses are 0-based (coil 0 is the first coil).

Coils: 0 Trigger (PLC writes 1), 1 Ready, 2 Busy, 3 ResultValid, 4 Pass, 5 Fail, 6 Review,
7 NotInspected, 8 ResultAck (PLC writes 1). Holding registers: 0 ResultCounter, 1-2 PartId (written by
the PLC before Trigger; 32 bits, high word first), 3 LatencyMs, 4 MissedTriggers, 5-6 ResultPartId,
7 RefusedWrites, 8-11 TriggerTime (optional, written by the PLC before Trigger: its clock in milliseconds since
1970 UTC, 64 bits, high word first; 0 = not given). A trigger dated more than ``max_trigger_age_ms`` from the
station's clock is answered NOT_INSPECTED "stale", and latency is measured from the PLC's time.

A client writes only what is its own: the Trigger and ResultAck coils, the PartId and TriggerTime registers. A write to
anything else (Ready, Busy, a verdict, ResultCounter, ...) is refused with Modbus exception 2 (illegal data
address), logged and counted in RefusedWrites; the station's outputs are the station's alone. Only the
addresses in ``[line.modbus] clients`` may connect (when the list is given); others are closed at once.

Handshake: the PLC sets Trigger -> the station clears Trigger, sets Busy and clears ResultValid and the
verdict coils -> once the record is committed: one verdict coil, LatencyMs, ResultPartId, ResultCounter+1,
ResultValid set, Busy cleared -> the PLC sets ResultAck -> the station clears ResultValid and ResultAck.
A Trigger while Busy is not taken: it is counted in MissedTriggers (and the I/O panel).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from inspector.core.config import LineModbusConfig
from inspector.core.types import Trigger
from inspector.line.desk import LineResult, LineState, LinkStatus

log = logging.getLogger(__name__)

TRIGGER, READY, BUSY, VALID, PASS, FAIL, REVIEW, NOT_INSPECTED, ACK = range(9)
VERDICT_COIL = {"PASS": PASS, "FAIL": FAIL, "REVIEW": REVIEW, "NOT_INSPECTED": NOT_INSPECTED}
COUNTER, PART_HI, PART_LO, LATENCY, MISSED, RESULT_PART_HI, RESULT_PART_LO, REFUSED = range(8)
TIME_WORDS = (8, 9, 10, 11)  # TriggerTime: the PLC's clock in ms since 1970 UTC, high word first; 0 = not given
_PLC_OWN = {PART_HI, PART_LO, *TIME_WORDS}
#: what a client may write: Modbus function code -> the addresses it may write with it
WRITABLE = {5: {TRIGGER, ACK}, 15: {TRIGGER, ACK}, 6: _PLC_OWN, 16: _PLC_OWN}
_WRITE_CODES = frozenset({5, 6, 15, 16, 22, 23})
_FREE = object()  # no Modbus trigger waits for its result


class _Block(ModbusSequentialDataBlock):
    """A data block that tells the link what the PLC wrote (pymodbus calls ``setValues`` for writes only)."""

    def __init__(self, size: int, value, on_write: Callable[[int, list], None]) -> None:
        super().__init__(1, [value] * size)  # pymodbus adds 1 to every PLC address
        self._on_write = on_write

    def setValues(self, address, values):  # noqa: N802 - pymodbus' name
        values = values if isinstance(values, list) else [values]
        super().setValues(address, values)
        self._on_write(address - 1, values)

    def put(self, index: int, value) -> None:
        ModbusSequentialDataBlock.setValues(self, index + 1, [value])

    def get(self, index: int):
        return self.values[index]


class _Context(ModbusSlaveContext):
    """The server's data, with every write outside ``WRITABLE`` refused (pymodbus validates before it writes)."""

    def __init__(self, on_refused: Callable[[int, int, int], None], **blocks) -> None:
        super().__init__(**blocks)
        self._on_refused = on_refused

    def validate(self, fc_as_hex, address, count=1):
        if fc_as_hex in _WRITE_CODES:
            allowed = WRITABLE.get(fc_as_hex, set())
            if not all(a in allowed for a in range(address, address + count)):
                self._on_refused(fc_as_hex, address, count)
                return False
        return super().validate(fc_as_hex, address, count)


class _Handler(ServerRequestHandler):
    """One client connection: closed at once when its address is not among the allowed clients."""

    def callback_connected(self) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        host = str(peer[0]) if peer else "?"
        allowed = self.server.allowed_clients
        if allowed and host not in allowed:
            log.warning("Modbus connection from %s refused: not in [line.modbus] clients", host)
            self.transport.close()
            return
        super().callback_connected()


class _Server(ModbusTcpServer):
    allowed_clients: frozenset[str] = frozenset()

    def callback_new_connection(self):
        if self.trace_connect:
            self.trace_connect(True)
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class ModbusLink:
    """``LineInput`` and ``LineOutput`` as a Modbus TCP server."""

    def __init__(self, cfg: LineModbusConfig) -> None:
        self.host, self.port = cfg.host, cfg.port
        self.name = f"modbus {self.host}:{self.port}"
        self._lock = threading.RLock()
        self.coils = _Block(16, False, self._coils_written)
        self.regs = _Block(16, 0, lambda a, v: None)
        self._refused = 0
        self._context = ModbusServerContext(slaves=_Context(self._write_refused, co=self.coils, hr=self.regs),
                                            single=True)
        self.clients = frozenset(cfg.clients)
        if not self.clients:
            log.warning("Modbus server on %s:%d takes any client: set [line.modbus] clients to the PLC's address",
                        self.host, self.port)
        self._on_trigger: Callable[[Trigger], None] | None = None
        self._pending: object = _FREE
        self._clients = 0
        self._missed = 0
        self._listening = False
        self._detail = "starting"
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None

    # LineInput ------------------------------------------------------------------------------
    def listen(self, on_trigger: Callable[[Trigger], None]) -> None:
        self._on_trigger = on_trigger
        self._thread = threading.Thread(target=self._serve, name="inspector-modbus", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """The server's own event loop; a port that cannot be had is retried every few seconds."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        while not self._stop.is_set():
            try:
                loop.run_until_complete(self._run())
            except Exception as e:  # noqa: BLE001 - a server that cannot listen says why and tries again
                with self._lock:
                    self._listening, self._detail = False, f"cannot listen on port {self.port}: {e}"
                log.warning("Modbus server on %s:%d: %s", self.host, self.port, e)
            self._stop.wait(3.0)
        loop.close()

    async def _run(self) -> None:
        self._server = _Server(self._context, address=(self.host, self.port), trace_connect=self._connection)
        self._server.allowed_clients = self.clients
        await self._server.serve_forever(background=True)
        if not self._server.transport:
            raise OSError("the address is in use or not available")
        with self._lock:
            self._listening, self._detail = True, "listening, no PLC connected"
        await self._server.serving

    def _connection(self, connected: bool) -> None:
        with self._lock:
            self._clients = max(0, self._clients + (1 if connected else -1))
            self._detail = f"{self._clients} PLC connection(s)" if self._clients else "listening, no PLC connected"

    def _write_refused(self, code: int, address: int, count: int) -> None:
        with self._lock:
            self._refused += 1
            self.regs.put(REFUSED, self._refused & 0xFFFF)
        log.warning("Modbus write refused (function %d, address %d, %d value(s)): only Trigger, ResultAck and PartId "
                    "are written by the PLC (%d refused so far)", code, address, count, self._refused)

    def _coils_written(self, first: int, values: list) -> None:
        """The PLC wrote coils (the server's thread): a rising Trigger or ResultAck is acted on."""
        trig = None
        with self._lock:
            for i, v in enumerate(values):
                if first + i == TRIGGER and v:
                    trig = self._take_trigger()
                elif first + i == ACK and v:
                    self.coils.put(VALID, False)
                    self.coils.put(ACK, False)
        if trig is not None and self._on_trigger is not None:
            try:
                self._on_trigger(trig)
            except Exception:  # noqa: BLE001 - the server must go on answering the PLC
                log.exception("handling a Modbus trigger failed")

    def _take_trigger(self) -> Trigger | None:
        self.coils.put(TRIGGER, False)
        if self.coils.get(BUSY):
            self._missed += 1
            self.regs.put(MISSED, self._missed & 0xFFFF)
            log.warning("Modbus trigger while busy: missed (%d so far)", self._missed)
            return None
        self.coils.put(BUSY, True)
        for c in (VALID, PASS, FAIL, REVIEW, NOT_INSPECTED):
            self.coils.put(c, False)
        number = (self.regs.get(PART_HI) << 16) | self.regs.get(PART_LO)
        pid = str(number) if number else None
        self._pending = pid
        ms = 0
        for w in TIME_WORDS:
            ms = (ms << 16) | (int(self.regs.get(w)) & 0xFFFF)
            self.regs.put(w, 0)  # taken with this trigger: an old time never dates the next one
        data = {"part_number": number, **({"ts": ms} if ms else {})}
        return Trigger(pid, time.time(), data, "modbus", ms / 1000.0 if ms else None)

    # LineOutput -----------------------------------------------------------------------------
    def send(self, item: LineState | LineResult) -> None:
        with self._lock:
            if isinstance(item, LineState):
                self.coils.put(READY, bool(item.ready))
                return
            if self._pending is not _FREE and item.part_id != self._pending:
                return  # not the answer to this PLC's trigger (a repeat of another part, another protocol)
            number = int(item.part_id) if item.part_id and item.part_id.isdigit() else 0
            for verdict, coil in VERDICT_COIL.items():
                self.coils.put(coil, item.verdict == verdict)
            self.regs.put(LATENCY, min(int(item.latency_ms), 0xFFFF))
            self.regs.put(RESULT_PART_HI, (number >> 16) & 0xFFFF)
            self.regs.put(RESULT_PART_LO, number & 0xFFFF)
            self.regs.put(COUNTER, (self.regs.get(COUNTER) + 1) & 0xFFFF)
            self.coils.put(VALID, True)
            self.coils.put(BUSY, False)
            self._pending = _FREE

    def link(self) -> LinkStatus:
        with self._lock:
            return LinkStatus(self.name, self._listening and self._clients > 0, self._detail,
                              int(bool(self.coils.get(VALID))), 0, self._missed)

    def close(self, last: LineState) -> None:
        with self._lock:
            self.coils.put(READY, bool(last.ready))
            self.coils.put(BUSY, False)
            self._detail = "closed"
        self._stop.set()
        loop, server = self._loop, self._server
        if loop is not None and server is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(5)
            except Exception:  # noqa: BLE001 - closing: the thread ends with the process anyway
                log.warning("the Modbus server did not shut down cleanly", exc_info=True)
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            self._listening = False
