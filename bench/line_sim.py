"""A PLC simulator: triggers N parts at a given rate through the real protocol against a real station
(``inspector run`` in its own process, the shipped model unless --model) and reports what came back.

    python bench/line_sim.py --protocol mqtt --parts 300 --rate 10 --json

MQTT: starts Debian's mosquitto on a free port unless --broker mqtt://host:port is given. Modbus TCP:
the station's server on a free port, the PLC's handshake with a pymodbus client. OPC UA: the station's
server on a free port (user/password, Basic256Sha256 SignAndEncrypt, its self-signed certificate), an
asyncua client calling ``Trigger(part_id)`` at the rate (each call its own request on one connection).
Prints ``parts, results, lost, duplicates, not_inspected, trigger_to_result_ms_p50/_p99/_max`` (the time
from publishing a trigger, setting the Trigger coil or sending the call, to receiving the result, on this
machine's clock).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(folder: Path, nagle: bool = False) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        sys.exit("error: mosquitto is not installed (apt-get install mosquitto), or give --broker mqtt://host:port")
    port = free_port()
    conf = folder / "mosquitto.conf"
    # mosquitto's default keeps Nagle's algorithm on: a result then waits for the TCP acknowledgement of the
    # trigger's PUBACK (the PLC's delayed ACK, ~40 ms); a line's broker should set set_tcp_nodelay
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    + ("" if nagle else "set_tcp_nodelay true\n"))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("error: mosquitto did not start")


OPCUA_USER, OPCUA_PASSWORD = "line-sim", "line-sim-password"


def start_station(a: argparse.Namespace, folder: Path, url: str = "", port: int = 0) -> subprocess.Popen:
    cfg = folder / "line.toml"
    link = {"mqtt": f'[line.mqtt]\nurl = "{url}"\n',
            "modbus": f'[line.modbus]\nhost = "127.0.0.1"\nport = {port}\n',
            "opcua": f'[line.opcua]\nendpoint = "opc.tcp://127.0.0.1:{port}"\nuser = "{OPCUA_USER}"\n'
                     f'password = "{OPCUA_PASSWORD}"\n'}[a.protocol]
    cfg.write_text(f'[station]\nname = "sim"\n\n[line]\ntrigger = "{a.protocol}"\ntrigger_timeout_s = {a.timeout}\n\n'
                   + link)
    cmd = [sys.executable, "-m", "inspector", "run", "--source", a.source, "--loop", "--quiet", "--config", str(cfg),
           "--db", f"sqlite:///{folder / 'line.db'}"]
    if a.model:
        cmd += ["--model", a.model]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "INSPECTOR_HOME": str(folder / "home")}  # its own sealing key and OPC UA certificate
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "station.log", "w"))


def simulate_mqtt(host: str, port: int, parts: int, rate: float, wait_s: float) -> dict:
    import paho.mqtt.client as mqtt

    state: dict = {}
    got: dict[str, list[float]] = {}
    verdicts: dict[str, str] = {}
    lock = threading.Lock()

    def on_message(c, u, m) -> None:
        now = time.perf_counter()
        p = json.loads(m.payload)
        with lock:
            if m.topic.endswith("/state"):
                state.update(p)
            elif p.get("part_id") is not None:
                got.setdefault(p["part_id"], []).append(now)
                verdicts[p["part_id"]] = p["verdict"]

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"line-sim-{os.getpid()}")
    c.on_message = on_message
    c.connect(host, port)
    c.subscribe([("inspector/sim/state", 1), ("inspector/sim/result", 1)])
    c.loop_start()
    end = time.monotonic() + 180
    while not state.get("ready"):
        if time.monotonic() > end:
            sys.exit(f"error: the station never said ready: {state}")
        time.sleep(0.1)
    sent: dict[str, float] = {}
    t0 = time.perf_counter()
    for i in range(parts):
        due = t0 + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        pid = f"SIM{i:06d}"
        sent[pid] = time.perf_counter()
        c.publish("inspector/sim/trigger", json.dumps({"part_id": pid}), qos=1)
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        with lock:
            if len(got) >= parts:
                break
        time.sleep(0.05)
    time.sleep(0.5)  # a late duplicate would show now
    c.loop_stop()
    c.disconnect()
    with lock:
        lat = [(got[p][0] - t) * 1000 for p, t in sent.items() if p in got]
        return {"parts": parts, "results": sum(len(v) for v in got.values()),
                "lost": sum(1 for p in sent if p not in got), "duplicates": sum(len(v) - 1 for v in got.values()),
                "not_inspected": sum(1 for v in verdicts.values() if v == "NOT_INSPECTED"), **figures(lat)}


def simulate_modbus(port: int, parts: int, rate: float, wait_s: float) -> dict:
    """The handshake as a PLC runs it: PartId, Trigger; poll ResultValid; read the verdict; ResultAck.
    A Modbus PLC triggers the next part only once the last is answered: a slower station is lost parts."""
    import logging

    from pymodbus.client import ModbusTcpClient

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # "connection refused" until the station listens
    plc = ModbusTcpClient("127.0.0.1", port=port)
    end = time.monotonic() + 180
    while not (plc.connect() and plc.read_coils(0, count=9).bits[1]):  # Ready
        if time.monotonic() > end:
            sys.exit("error: the station never set Ready")
        time.sleep(0.2)
    lat: list[float] = []
    results = lost = not_inspected = duplicates = 0
    last_counter = plc.read_holding_registers(0, count=1).registers[0]
    t0 = time.perf_counter()
    for i in range(parts):
        time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        number = 100000 + i
        sent = time.perf_counter()
        plc.write_registers(1, [number >> 16, number & 0xFFFF])
        plc.write_coil(0, True)
        deadline = sent + wait_s
        while time.perf_counter() < deadline:
            bits = plc.read_coils(0, count=9).bits
            if bits[3]:  # ResultValid
                break
            time.sleep(0.001)
        else:
            lost += 1
            continue
        lat.append((time.perf_counter() - sent) * 1000)
        r = plc.read_holding_registers(0, count=7).registers
        results += 1
        duplicates += int((r[0] - last_counter) & 0xFFFF != 1 or (r[5] << 16 | r[6]) != number)
        last_counter = r[0]
        not_inspected += int(bits[7])
        plc.write_coil(8, True)  # ResultAck
    plc.close()
    return {"parts": parts, "results": results, "lost": lost, "duplicates": duplicates,
            "not_inspected": not_inspected, **figures(lat)}


def figures(lat: list[float]) -> dict:
    lat = sorted(lat)
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None  # noqa: E731
    return {"trigger_to_result_ms_p50": pct(0.5), "trigger_to_result_ms_p99": pct(0.99),
            "trigger_to_result_ms_max": round(lat[-1], 1) if lat else None}


def simulate_opcua(port: int, folder: Path, parts: int, rate: float, wait_s: float) -> dict:
    """Calls ``Trigger(part_id)`` at the rate, each as its own request (not waiting for the previous answer)."""
    import asyncio
    import logging

    from asyncua import Client, ua
    from asyncua.crypto import cert_gen
    from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
    from cryptography.x509.oid import ExtendedKeyUsageOID

    logging.getLogger("asyncua").setLevel(logging.ERROR)

    async def run() -> dict:
        key, cert = folder / "plc-key.pem", folder / "plc-cert.der"
        await cert_gen.setup_self_signed_certificate(key, cert, "urn:line-sim:plc", "localhost",
                                                     [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "line-sim"})
        end = time.monotonic() + 180
        while True:
            c = Client(f"opc.tcp://127.0.0.1:{port}", timeout=wait_s + 5)
            c.application_uri = "urn:line-sim:plc"
            c.set_user(OPCUA_USER)
            c.set_password(OPCUA_PASSWORD)
            try:
                await c.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                     mode=ua.MessageSecurityMode.SignAndEncrypt)
                await c.connect()
                break
            except OSError:
                if time.monotonic() > end:
                    sys.exit("error: the station's OPC UA server never listened")
                await asyncio.sleep(0.3)
        idx = await c.get_namespace_index("urn:inspector:line")
        obj, ready = c.get_node(ua.NodeId("Inspector/sim", idx)), c.get_node(ua.NodeId("Inspector/sim/Ready", idx))
        while not await ready.read_value():
            if time.monotonic() > end:
                sys.exit("error: the station never said Ready")
            await asyncio.sleep(0.1)
        lat: list[float] = []
        answers: dict[str, tuple] = {}
        lost = 0

        async def one(pid: str) -> None:
            nonlocal lost
            sent = time.perf_counter()
            try:
                out = await obj.call_method(ua.QualifiedName("Trigger", idx), pid)
            except Exception:  # noqa: BLE001 - a call without an answer is a lost part
                lost += 1
                return
            lat.append((time.perf_counter() - sent) * 1000)
            answers[pid] = tuple(out[:2])

        t0, tasks = time.perf_counter(), []
        for i in range(parts):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(f"SIM{i:06d}")))
        await asyncio.gather(*tasks)
        await c.disconnect()
        ids = [iid for _, iid in answers.values() if iid]
        return {"parts": parts, "results": len(answers), "lost": lost, "duplicates": len(ids) - len(set(ids)),
                "not_inspected": sum(1 for v, _ in answers.values() if v == "NOT_INSPECTED"), **figures(lat)}

    return asyncio.run(run())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--protocol", choices=["mqtt", "opcua", "modbus"], default="mqtt")
    p.add_argument("--parts", type=int, default=100)
    p.add_argument("--rate", type=float, default=10.0, help="triggers per second")
    p.add_argument("--source", default=str(ROOT / "sample_images"))
    p.add_argument("--model", default=None)
    p.add_argument("--broker", default=None, help="an MQTT broker to use instead of starting mosquitto")
    p.add_argument("--timeout", type=float, default=2.0, help="the station's trigger_timeout_s")
    p.add_argument("--nagle", action="store_true",
                   help="start mosquitto with its default set_tcp_nodelay false (adds ~40 ms per answer)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.parts < 1 or a.rate <= 0:
        print("error: --parts must be at least 1 and --rate above 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="line-sim-") as tmp:
        folder = Path(tmp)
        broker = None
        if a.protocol in ("modbus", "opcua"):
            port = free_port()
            station = start_station(a, folder, port=port)
            try:
                out = simulate_modbus(port, a.parts, a.rate, a.timeout + 2) if a.protocol == "modbus" else \
                    simulate_opcua(port, folder, a.parts, a.rate, a.timeout + 2)
            finally:
                station.send_signal(signal.SIGTERM)
                station.wait(60)
            out = {"protocol": a.protocol, "rate": a.rate, **out}
            print(json.dumps(out) if a.json else "\n".join(f"{k:28} {v}" for k, v in out.items()))
            return 0 if not out["lost"] and not out["duplicates"] else 1
        if a.broker:
            from urllib.parse import urlsplit

            u = urlsplit(a.broker)
            host, port = u.hostname or "127.0.0.1", u.port or 1883
        else:
            broker, port = start_broker(folder, a.nagle)
            host = "127.0.0.1"
        station = start_station(a, folder, f"mqtt://{host}:{port}")
        try:
            out = simulate_mqtt(host, port, a.parts, a.rate, a.timeout + 10)
        finally:
            station.send_signal(signal.SIGTERM)
            try:
                station.wait(60)
            except subprocess.TimeoutExpired:
                station.kill()
            if broker is not None:
                broker.terminate()
                broker.wait(10)
    out = {"protocol": a.protocol, "rate": a.rate, "broker_nodelay": not a.nagle and not a.broker, **out}
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28} {v}")
    return 0 if not out["lost"] and not out["duplicates"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
