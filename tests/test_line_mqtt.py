"""The MQTT contract, for real: Debian's mosquitto started here on a free port, a paho client as the PLC,
a real station (shipped model, SQLite file). The broker stopped and restarted mid-run, a trigger while
the camera is down, a trigger storm, the last will when the station dies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

paho = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="Debian's mosquitto is not installed (.ci/run installs it)")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process on a fixed port that can be stopped and started again (no persistence)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Plc:
    """The PLC's side: its own paho client; keeps the last state and every result by part."""

    def __init__(self, port: int, station: str = "t") -> None:
        self.base = f"inspector/{station}"
        self.state: dict = {}
        self.results: dict = {}
        self.all: list[dict] = []
        self.alarms: list[dict] = []
        self.lock = threading.Lock()
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"plc-{free_port()}")
        c.on_message = self._message
        c.on_connect = lambda c, u, f, rc, p: c.subscribe([(f"{self.base}/state", 1), (f"{self.base}/result", 1),
                                                           (f"{self.base}/alarm", 1)])
        c.reconnect_delay_set(0.2, 1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.c = c

    def _message(self, c, u, m) -> None:
        p = json.loads(m.payload)
        with self.lock:
            if m.topic.endswith("/state"):
                self.state = p
            elif m.topic.endswith("/alarm"):
                self.alarms.append(p)
            else:
                self.all.append(p)
                self.results.setdefault(p["part_id"], []).append(p)

    def trigger(self, pid, **extra) -> None:
        self.c.publish(f"{self.base}/trigger", json.dumps({"part_id": pid, **extra}), qos=1)

    def wait(self, pred, timeout=30.0, what="") -> None:
        end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < end, f"timed out waiting for {what}; state {self.state}"
            time.sleep(0.02)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def line_config(port: int, trigger: str = "mqtt", timeout_s: float = 2.0, keepalive: int = 10, **more):
    from inspector.core.config import config_from_dict

    return config_from_dict({"station": {"name": "t"},
                             "line": {"trigger": trigger, "trigger_timeout_s": timeout_s,
                                      "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "keepalive_s": keepalive}},
                             **more})


@pytest.fixture
def make_station(tmp_path):
    made = []

    def make(cfg, source=str(SAMPLES), loop=True):
        from station import Station, StationSpec

        st = Station(StationSpec(source, f"sqlite:///{tmp_path / 'line.db'}", cfg, loop=loop))
        made.append(st)
        st.start()
        return st

    yield make
    for st in made:
        st.stop()
        st.runner.join(30)
        st.finish("stopped")


def db_rows(tmp_path) -> dict[int, tuple]:
    con = sqlite3.connect(tmp_path / "line.db")
    try:
        return {r[0]: r[1:] for r in con.execute("select id, verdict, part_id, trigger from inspections")}
    finally:
        con.close()


def test_each_trigger_is_answered_once_after_the_commit_with_the_databases_verdict(broker, make_station, tmp_path):
    plc = Plc(broker.port)
    st = make_station(line_config(broker.port))
    plc.wait(lambda: plc.state.get("ready") is True, what="ready")
    assert plc.state["model_sha256"] == st.model_sha and plc.state["recipe"] == "default"
    for i in range(10):
        plc.trigger(f"P{i}", lot="L7", station_slot=i)
        time.sleep(0.05)
    plc.wait(lambda: len(plc.results) == 10, what="10 results")
    rows = db_rows(tmp_path)
    for i in range(10):
        [r] = plc.results[f"P{i}"]
        assert set(r) >= {"part_id", "inspection_id", "seq", "verdict", "reasons", "defects", "model_sha256",
                          "recipe", "latency_ms", "ts"}
        verdict, part_id, trig = rows[r["inspection_id"]]  # committed before it was sent
        assert (verdict, part_id) == (r["verdict"], f"P{i}") and r["stored"] == "database"
        assert json.loads(trig)["lot"] == "L7" and json.loads(trig)["station_slot"] == i
    first = plc.results["P3"][0]["inspection_id"]
    plc.trigger("P3")  # the PLC retries: the same inspection, no second record
    plc.wait(lambda: len(plc.results["P3"]) == 2, what="the repeat")
    assert plc.results["P3"][1] == plc.results["P3"][0] and len(db_rows(tmp_path)) == 10
    assert first == plc.results["P3"][1]["inspection_id"]
    status = st.line_status()
    assert status["triggers"] == 11 and status["answered"] == 10 and status["repeats"] == 1
    assert status["links"][0]["connected"] and status["last_result"]["part_id"] == "P3"
    plc.close()


def test_free_running_publishes_every_inspection_with_no_part_id(broker, make_station, tmp_path):
    plc = Plc(broker.port)
    # two FAIL parts in a row raise an alarm, which goes to the line too
    st = make_station(line_config(broker.port, trigger="none", alarms={"fail_streak": 2}), loop=False)
    assert st.runner.join(60)
    st.finish("finished")
    plc.wait(lambda: len(plc.all) == len(db_rows(tmp_path)), timeout=30, what="every inspection")
    assert {r["part_id"] for r in plc.all} == {None} and len(plc.all) == 40  # the sample folder, once
    assert sorted(r["inspection_id"] for r in plc.all) == sorted(db_rows(tmp_path))
    con = sqlite3.connect(tmp_path / "line.db")
    alarms = {r[0]: r[1:] for r in con.execute("select id, rule, message from alarms")}
    con.close()
    assert alarms, "the sample folder has FAIL parts in a row: a fail_streak alarm was expected"
    plc.wait(lambda: len(plc.alarms) == len(alarms), timeout=30, what="every alarm on the line")
    assert {a["alarm_id"]: (a["rule"], a["message"]) for a in plc.alarms} == alarms
    plc.wait(lambda: plc.state.get("ready") is False and plc.state.get("reason") == "stopped", what="stopped")
    plc.close()


def test_the_broker_goes_away_and_comes_back(broker, make_station, tmp_path):
    plc = Plc(broker.port)
    st = make_station(line_config(broker.port))
    plc.wait(lambda: plc.state.get("ready") is True, what="ready")
    plc.trigger("A1")
    plc.wait(lambda: "A1" in plc.results, what="A1")
    broker.stop()
    end = time.monotonic() + 10
    while st.line_status()["links"][0]["connected"]:
        assert time.monotonic() < end, "the link never noticed the broker had gone"
        time.sleep(0.05)
    assert st.line_status()["link_down"] and st.runner.running  # inspection goes on, nothing crashed
    time.sleep(1.5)
    broker.start()  # a fresh broker: no retained state, no sessions
    plc.wait(lambda: st.line_status()["links"][0]["connected"], timeout=40, what="the station's reconnect")
    plc.close()
    plc = Plc(broker.port)  # a new subscriber finds the state retained on the new broker
    plc.wait(lambda: plc.state.get("ready") is True, timeout=20, what="the state again after the restart")
    for i in range(5):
        plc.trigger(f"B{i}")
    plc.wait(lambda: all(f"B{i}" in plc.results for i in range(5)), what="triggers after the restart")
    assert all(len(plc.results[f"B{i}"]) == 1 for i in range(5))
    assert st.line_status()["links"][0]["reconnects"] >= 1
    plc.close()


def test_a_trigger_while_the_camera_is_down_is_answered_not_inspected(broker, make_station, tmp_path, monkeypatch):
    import station.core as station_mod
    from inspector.core.config import CameraConfig
    from inspector.sources.live import LiveSource
    from tests.fakes import FakeCameraDevice

    def camera(spec, cfg, loop, on_state):  # 40 frames, then the camera drops and stays away
        device = FakeCameraDevice([["frame"] * 40 + ["drop"]] + [None] * 50)
        fast = CameraConfig(open_timeout_s=0.5, read_timeout_s=0.5, reconnect_initial_s=0.5, reconnect_max_s=1)
        return LiveSource("fake camera", device, fast, on_state)

    monkeypatch.setattr(station_mod, "open_source", camera)
    plc = Plc(broker.port)
    make_station(line_config(broker.port, timeout_s=0.5))
    plc.wait(lambda: plc.state.get("reason", "").startswith("camera reconnecting"), what="the camera down")
    assert plc.state["ready"] is False
    plc.trigger("C1")
    plc.wait(lambda: "C1" in plc.results, what="an answer")
    [r] = plc.results["C1"]
    assert r["verdict"] == "NOT_INSPECTED" and "camera reconnecting" in r["reasons"][0]
    # answered at once (issue 24), before its record: "pending", and the record follows
    assert r["inspection_id"] is None and r["stored"] == "pending"
    plc.wait(lambda: ("NOT_INSPECTED", "C1") in [row[:2] for row in db_rows(tmp_path).values()], what="the record")
    plc.close()


def test_a_trigger_storm_gets_an_answer_each(broker, make_station, tmp_path):
    plc = Plc(broker.port)
    st = make_station(line_config(broker.port, timeout_s=0.5))
    plc.wait(lambda: plc.state.get("ready") is True, what="ready")
    n = 150
    for i in range(n):  # as fast as the client can: far more than the station inspects
        plc.trigger(f"S{i:03d}")
    plc.wait(lambda: len(plc.results) == n, timeout=60, what="every part answered")
    time.sleep(0.5)
    assert all(len(v) == 1 for v in plc.results.values())
    verdicts = [v[0]["verdict"] for v in plc.results.values()]
    assert "NOT_INSPECTED" in verdicts and len(verdicts) - verdicts.count("NOT_INSPECTED") > 0
    late = [v[0] for v in plc.results.values() if v[0]["verdict"] == "NOT_INSPECTED"]
    assert all("trigger timeout" in r["reasons"][0] for r in late)
    rows = db_rows(tmp_path)
    assert sorted(p for _, p, _ in rows.values()) == [f"S{i:03d}" for i in range(n)]
    assert st.line_status()["missed"] == len(late)
    plc.close()


def test_a_station_that_dies_is_offline_by_its_last_will(broker, tmp_path):
    cfg = tmp_path / "line.toml"
    cfg.write_text(f'[station]\nname = "t"\n[line]\ntrigger = "mqtt"\n[line.mqtt]\n'
                   f'url = "mqtt://127.0.0.1:{broker.port}"\nkeepalive_s = 2\n')
    plc = Plc(broker.port)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "inspector", "run", "--source", str(SAMPLES), "--loop", "--quiet",
                          "--config", str(cfg), "--db", f"sqlite:///{tmp_path / 'l.db'}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        plc.wait(lambda: plc.state.get("ready") is True, timeout=60, what="ready")
        p.send_signal(signal.SIGKILL)  # no goodbye: the broker's last will speaks for the station
        p.wait(10)
        plc.wait(lambda: plc.state.get("ready") is False, timeout=15, what="the last will")
        assert plc.state["reason"] == "offline"
    finally:
        if p.poll() is None:
            p.kill()
        plc.close()


def test_inspector_run_reports_the_line_in_its_summary(broker, tmp_path):
    cfg = tmp_path / "line.toml"
    cfg.write_text(f'[station]\nname = "t"\n[line.mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\n')
    plc = Plc(broker.port)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "inspector", "run", "--source", str(SAMPLES), "--max-frames", "6",
                          "--quiet", "--json", "--config", str(cfg), "--db", f"sqlite:///{tmp_path / 'l.db'}"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    line = summary["line"]
    assert line["trigger"] == "none" and line["answered"] == 6 and line["links"][0]["name"].startswith("mqtt ")
    assert "line: trigger none, 0 trigger(s), 6 answered" in out.stdout
    plc.wait(lambda: len(plc.all) == 6, timeout=30, what="six free-running results")
    plc.close()
