"""Issue 24, the line's outputs, for real (pymodbus client and server, mosquitto, asyncua): a Modbus client
cannot write the station's outputs and only allowed addresses connect; part ids are taken as given or refused;
garbage is refused, not inspected; stale triggers are not inspected; "not ready" is answered at once; the MQTT
link is back within about a second of the broker's return with a fresh state."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time

import pytest

import tests.test_line_mqtt as mq
import tests.test_line_opcua as uat
from inspector.core.config import LineModbusConfig
from inspector.line.desk import LineState
from tests.test_line_modbus import ACK, BUSY, COUNTER, FAIL, PART_HI, PASS, READY, TRIGGER, VALID, wait
from tests.test_line_mqtt import Plc, db_rows, free_port, line_config
from tests.timing import loose

broker, make_station, client_cert = mq.broker, mq.make_station, uat.client_cert  # their fixtures, shared

pytest.importorskip("pymodbus")
from pymodbus.client import ModbusTcpClient  # noqa: E402

REFUSED = 7


@pytest.fixture
def modbus_link():
    """The station's real Modbus server on its own (no station): what a client on the machine network meets."""
    from inspector.line.modbus import ModbusLink

    made = []

    def make(**cfg):
        port = free_port()
        link = ModbusLink(LineModbusConfig(host="127.0.0.1", port=port, **cfg))
        got: list = []
        link.listen(got.append)
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        plc = ModbusTcpClient("127.0.0.1", port=port)
        made.append((link, plc))
        wait(lambda: link.link().detail.startswith(("listening", "1 PLC")), 20, "the server")
        return link, plc, got

    yield make
    for link, plc in made:
        plc.close()
        link.close(LineState(False, "stopped"))


def test_a_modbus_client_cannot_write_the_stations_outputs(modbus_link):
    link, plc, got = modbus_link()
    assert plc.connect()
    link.send(LineState(True, ""))
    for address, value in ((PASS, True), (FAIL, True), (BUSY, True), (READY, False), (VALID, True)):
        r = plc.write_coil(address, value)
        assert r.isError(), f"coil {address} was writable"
    assert plc.write_register(COUNTER, 999).isError() and plc.write_registers(COUNTER, [1, 2]).isError()
    assert plc.write_coils(TRIGGER, [True, True]).isError()  # Trigger and Ready in one write: refused whole
    bits = plc.read_coils(0, count=9).bits
    assert bits[READY] and not bits[BUSY] and not bits[PASS] and not bits[FAIL] and not bits[VALID]
    assert plc.read_holding_registers(0, count=8).registers[REFUSED] == 8
    # the PLC's own writes still work: a stray Busy did not jam the link
    assert not plc.write_registers(PART_HI, [0, 4242]).isError()
    assert not plc.write_coil(TRIGGER, True).isError()
    wait(lambda: len(got) == 1, 5, "the trigger")
    assert got[0].part_id == "4242"
    assert not plc.write_coil(ACK, True).isError()


def test_only_the_listed_plc_addresses_may_connect(modbus_link, caplog):
    link, plc, _ = modbus_link(clients=["127.0.0.2"])
    plc.connect()
    r = None
    try:
        r = plc.read_coils(0, count=1)
    except Exception:  # noqa: BLE001 - a closed connection raises in some pymodbus versions
        pass
    assert r is None or r.isError()
    wait(lambda: "not in [line.modbus] clients" in caplog.text, 5, "the refusal in the log")
    link2, plc2, _ = modbus_link(clients=["127.0.0.1"])
    assert plc2.connect() and not plc2.read_coils(0, count=1).isError()


@pytest.mark.parametrize("payload, reason", [
    (b"", "not JSON"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"P1"', "JSON object"),
    (json.dumps({"part_id": 777}).encode(), "got int"),
    (json.dumps({"part_id": True}).encode(), "got bool"),
    (json.dumps({"part_id": "x" * 201}).encode(), "got 201"),
    (json.dumps({"part_id": "P1", "ts": "yesterday"}).encode(), "ts"),
    (json.dumps({"part_id": "P1", "ts": "2026-01-01T08:00:00"}).encode(), "time zone"),
    (json.dumps({"part_id": "P1", "blob": "x" * 5000}).encode(), "bytes"),
])
def test_a_trigger_message_that_is_not_one_is_refused_with_its_reason(payload, reason):
    from inspector.line.mqtt import Refused, parse_trigger

    with pytest.raises(Refused, match=reason):
        parse_trigger(payload, time.time())


def test_a_part_id_is_taken_exactly_as_given():
    from inspector.line.mqtt import parse_trigger

    t = parse_trigger(json.dumps({"part_id": " P 1 ", "ts": 1_700_000_000_250, "lot": 7}).encode(), 1.0)
    assert t.part_id == " P 1 " and t.sent_at == pytest.approx(1_700_000_000.25) and t.extra["lot"] == 7
    assert parse_trigger(json.dumps({"part_id": "x" * 200}).encode(), 1.0).part_id == "x" * 200


def test_garbage_bad_ids_and_stale_triggers_are_answered_and_never_inspected(broker, make_station, tmp_path):
    plc = Plc(broker.port)
    st = make_station(line_config(broker.port))
    plc.wait(lambda: plc.state.get("ready") is True, what="ready")
    long_a, long_b = "L" * 200 + "A", "L" * 200 + "B"
    for raw in (b"", b"garbage", b"[]", json.dumps({"part_id": 777}).encode(),
                json.dumps({"part_id": long_a}).encode(), json.dumps({"part_id": long_b}).encode()):
        plc.c.publish("inspector/t/trigger", raw, qos=1)
    plc.wait(lambda: len(plc.all) >= 6, what="six refusals")
    assert all(r["verdict"] == "NOT_INSPECTED" and r["reasons"][0].startswith("refused: ")
               and r["part_id"] is None and r["inspection_id"] is None for r in plc.all)
    # a trigger that waited 25 s somewhere (a frozen station, a stalled link): not inspected, answered "stale"
    plc.trigger("OLD", ts=int((time.time() - 25) * 1000))
    plc.trigger("NEW", ts=int((time.time() - 0.3) * 1000))
    plc.wait(lambda: "OLD" in plc.results and "NEW" in plc.results, what="OLD and NEW")
    [old], [new] = plc.results["OLD"], plc.results["NEW"]
    assert old["verdict"] == "NOT_INSPECTED" and old["reasons"][0].startswith("stale: ")
    assert new["verdict"] != "NOT_INSPECTED" and new["latency_ms"] >= 300  # counted from the PLC's time
    st.stop()
    st.runner.join(30)
    rows = db_rows(tmp_path)
    assert not any(r[1] in (None, "777") or (r[1] or "").startswith("L" * 200) for r in rows.values())
    assert [r[0] for r in rows.values() if r[1] == "OLD"] == ["NOT_INSPECTED"]  # recorded, not inspected
    plc.close()


def test_not_ready_is_answered_at_once(broker, make_station, tmp_path):
    plc = Plc(broker.port)
    st = make_station(line_config(broker.port))
    plc.wait(lambda: plc.state.get("ready") is True, what="ready")
    st.runner.pause(True)
    plc.wait(lambda: plc.state.get("reason") == "paused", what="paused")
    took = []
    for i in range(5):
        t0 = time.perf_counter()
        plc.trigger(f"NR{i}")
        plc.wait(lambda i=i: f"NR{i}" in plc.results, timeout=30, what="the answer")
        took.append((time.perf_counter() - t0) * 1000)
    print(f"not ready: answered in {sorted(took)} ms (trigger published -> answer received, via the broker)")
    assert all(plc.results[f"NR{i}"][0]["reasons"] == ["station not ready: paused"] for i in range(5))
    # end to end through the broker on a loaded 2-core machine: a loose bound (a paused folder source answered
    # about as fast before issue 24; the at-once path itself is timed by the next test, without the broker)
    assert sorted(took)[2] < loose(200), took
    plc.wait(lambda: sum(1 for r in db_rows(tmp_path).values() if (r[1] or "").startswith("NR")) == 5,
             what="the five records")
    assert all(len(plc.results[f"NR{i}"]) == 1 for i in range(5))  # the record is not sent a second time
    plc.close()


def test_the_station_side_of_not_ready_takes_under_50_ms():
    """LineLink alone, with an output that notes when it is told: a trigger while not ready is answered in
    the adapter's own call (no queue, no writer)."""
    from inspector.core.config import config_from_dict
    from inspector.core.types import Trigger
    from station.line import LineLink

    told: list[tuple[float, object]] = []

    class Out:
        name = "fake"

        def send(self, item):
            told.append((time.perf_counter(), item))

        def link(self):
            raise NotImplementedError

        def close(self, last):
            pass

    class Paused:
        error, ready, running, paused = None, True, True, True

    cfg = config_from_dict({"line": {"trigger": "mqtt", "mqtt": {"url": "mqtt://127.0.0.1:1"}}})
    ll = LineLink(cfg, "sha", links=[Out()])
    ll._runner = Paused()
    t0 = time.perf_counter()
    ll.on_trigger(Trigger("P1", time.time(), {}, "mqtt"))
    answers = [(t, x) for t, x in told if getattr(x, "part_id", None) == "P1"]
    assert answers and (answers[0][0] - t0) * 1000 < 50
    assert answers[0][1].reasons == ("station not ready: paused",)


def test_the_mqtt_link_is_back_within_a_second_of_the_brokers_return_with_a_fresh_state(broker, make_station):
    plc = Plc(broker.port)
    st = make_station(line_config(broker.port))
    plc.wait(lambda: plc.state.get("ready") is True, what="ready")
    plc.close()
    broker.stop()
    wait(lambda: not st.line_status()["links"][0]["connected"], 10, "the link to notice")
    time.sleep(2.5)  # the station's retries go on every second while the broker is away
    back = time.time()
    broker.start()
    plc = Plc(broker.port)
    plc.wait(lambda: plc.state.get("ready") is True, timeout=10, what="a fresh state")
    took = time.time() - back
    from inspector.line.desk import plc_time

    print(f"the station's state was back {took:.2f} s after the broker")
    assert plc_time(plc.state["ts"]) >= back - 0.05  # fresh: said after the broker came back
    assert took < loose(2.0), took  # within a second of its return, plus this loaded machine's delays
    plc.close()


def test_opcua_part_ids_are_taken_as_given_or_refused(tmp_path, client_cert):
    pytest.importorskip("asyncua")
    from asyncua import ua

    from tests.test_line_opcua import UaStation, connect

    s = UaStation(tmp_path)

    async def calls():
        plc = await connect(s.port, client_cert)
        try:
            refused = await plc.trigger("x" * 201)
            number = await plc.obj.call_method(ua.QualifiedName("Trigger", plc.idx),
                                               ua.Variant(777, ua.VariantType.Int32))
            spaced = await plc.trigger(" P1 ")
        finally:
            await plc.c.disconnect()
        return refused, number, spaced

    try:
        refused, number, spaced = asyncio.run(calls())
        assert refused[0] == "NOT_INSPECTED" and refused[2][0].startswith("refused: ")
        assert number[0] == "NOT_INSPECTED" and number[2][0].startswith("refused: ")
        assert spaced[0] in ("PASS", "FAIL", "REVIEW") and spaced[1] > 0, spaced
        with sqlite3.connect(s.db) as con:
            assert con.execute("select part_id from inspections where id = ?", (spaced[1],)).fetchone() == (" P1 ",)
            assert con.execute("select count(*) from inspections where part_id like 'xxxx%' or part_id = '777'"
                               ).fetchone() == (0,)
    finally:
        s.stop()
