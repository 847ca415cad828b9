"""The Modbus TCP contract, for real: a station's pymodbus server and a pymodbus client as the PLC, the
handshake coil by coil, checked against the database."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

pytest.importorskip("pymodbus")
from pymodbus.client import ModbusTcpClient  # noqa: E402

from tests.test_line_mqtt import SAMPLES, free_port  # noqa: E402

TRIGGER, READY, BUSY, VALID, PASS, FAIL, REVIEW, NOT_INSPECTED, ACK = range(9)
COUNTER, PART_HI, PART_LO, LATENCY, MISSED, RESULT_PART_HI, RESULT_PART_LO = range(7)


def wait(pred, timeout=30.0, what=""):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def modbus_station(tmp_path):
    from inspector.core.config import config_from_dict
    from station import Station, StationSpec

    port = free_port()
    cfg = config_from_dict({"station": {"name": "mb"}, "line": {"trigger": "modbus", "trigger_timeout_s": 2.0,
                                                                 "modbus": {"host": "127.0.0.1", "port": port}}})
    st = Station(StationSpec(str(SAMPLES), f"sqlite:///{tmp_path / 'mb.db'}", cfg, loop=True))
    st.start()
    plc = ModbusTcpClient("127.0.0.1", port=port)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # "connection refused" until the station listens
    wait(lambda: plc.connect(), 20, "the server")
    yield st, plc, tmp_path / "mb.db"
    plc.close()
    st.stop()
    st.runner.join(30)
    st.finish("stopped")


def coils(plc) -> list[bool]:
    return plc.read_coils(0, count=9).bits[:9]


def regs(plc) -> list[int]:
    return plc.read_holding_registers(0, count=7).registers


def trigger(plc, number: int) -> None:
    plc.write_registers(PART_HI, [number >> 16, number & 0xFFFF])
    plc.write_coil(TRIGGER, True)


def test_the_handshake_coil_by_coil_matches_the_database(modbus_station):
    st, plc, db = modbus_station
    wait(lambda: coils(plc)[READY], 60, "Ready")
    for n, number in enumerate((70001, 70002, 123456789), start=1):
        trigger(plc, number)
        wait(lambda: coils(plc)[VALID], 20, "ResultValid")
        c, r = coils(plc), regs(plc)
        assert not c[BUSY] and not c[TRIGGER] and sum(c[PASS:NOT_INSPECTED + 1]) == 1
        assert r[COUNTER] == n and (r[RESULT_PART_HI] << 16 | r[RESULT_PART_LO]) == number and r[LATENCY] > 0
        verdict = ("PASS", "FAIL", "REVIEW", "NOT_INSPECTED")[c[PASS:NOT_INSPECTED + 1].index(True)]
        with sqlite3.connect(db) as con:
            assert con.execute("select verdict from inspections where part_id = ?", (str(number),)).fetchall() \
                == [(verdict,)]
        plc.write_coil(ACK, True)
        wait(lambda: not coils(plc)[VALID] and not coils(plc)[ACK], 5, "ResultAck cleared")
    status = st.line_status()
    assert status["links"][0]["connected"] and status["answered"] == 3


def test_a_trigger_while_busy_is_counted_missed(modbus_station):
    st, plc, db = modbus_station
    wait(lambda: coils(plc)[READY], 60, "Ready")
    trigger(plc, 5)
    plc.write_coil(TRIGGER, True)  # at once again: the first part is still being inspected
    wait(lambda: coils(plc)[VALID], 20, "ResultValid")
    assert regs(plc)[MISSED] == 1 and st.line_status()["missed"] == 1
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from inspections").fetchone() == (1,)


def test_ready_drops_when_the_station_stops(modbus_station):
    st, plc, _ = modbus_station
    wait(lambda: coils(plc)[READY], 60, "Ready")
    st.stop()
    st.runner.join(30)
    wait(lambda: not coils(plc)[READY], 10, "Ready cleared")
    assert Path(st.spec.db_url[len("sqlite:///"):]).exists()


def test_a_trigger_dated_by_the_plc_is_refused_when_stale_and_timed_from_the_plc_when_fresh(modbus_station):
    """TriggerTime (registers 8-11, ms since 1970 UTC, high word first) written before Trigger: a trigger 25 s old
    is answered NOT_INSPECTED "stale" and recorded so; a fresh one is inspected, its latency counted from the PLC's
    time; the registers are cleared once taken."""
    st, plc, db = modbus_station
    wait(lambda: coils(plc)[READY], 60, "Ready")

    def dated(number: int, age_s: float) -> None:
        ms = int((time.time() - age_s) * 1000)
        plc.write_registers(8, [(ms >> 48) & 0xFFFF, (ms >> 32) & 0xFFFF, (ms >> 16) & 0xFFFF, ms & 0xFFFF])
        trigger(plc, number)
        wait(lambda: coils(plc)[VALID], 20, "ResultValid")

    dated(81001, 25.0)
    assert coils(plc)[NOT_INSPECTED]
    assert plc.read_holding_registers(8, count=4).registers == [0, 0, 0, 0]
    plc.write_coil(ACK, True)
    wait(lambda: not coils(plc)[VALID], 5, "ResultAck cleared")
    dated(81002, 0.4)
    assert not coils(plc)[NOT_INSPECTED] and regs(plc)[LATENCY] >= 400
    plc.write_coil(ACK, True)
    wait(lambda: not coils(plc)[VALID], 5, "ResultAck cleared")
    trigger(plc, 81003)  # no time given (registers cleared): inspected as before
    wait(lambda: coils(plc)[VALID], 20, "ResultValid")
    assert not coils(plc)[NOT_INSPECTED]
    with sqlite3.connect(db) as con:
        rows = dict(con.execute("select part_id, verdict from inspections where part_id like '8100%'").fetchall())
        reasons = con.execute("select reasons from inspections where part_id = '81001'").fetchone()[0]
    assert rows["81001"] == "NOT_INSPECTED" and "stale" in reasons and rows["81002"] != "NOT_INSPECTED"
