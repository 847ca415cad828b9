"""Basler's camera emulator in software-trigger mode, fired by MQTT triggers at a given rate through a real station
(``inspector run --config`` in its own process, the shipped model unless --model), and what came back.

    python bench/camera_sim.py --parts 300 --rate 10 --json

The emulator (pypylon, PYLON_CAMEMU=1) serves the sample parts (written as PNG to a scratch folder) one per
trigger. Prints the PLC's side as ``bench/line_sim.py`` does (``parts, results, lost, duplicates, not_inspected,
trigger_to_result_ms_p50/_p99/_max``: from publishing a trigger to receiving its committed result, on this
machine's clock) and the record's side: ``frames`` (inspections with a camera frame id), ``distinct_frame_ids``,
``frames_equal_triggers``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from line_sim import ROOT, simulate_mqtt, start_broker  # noqa: E402


def write_parts(folder: Path) -> Path:
    import cv2

    out = folder / "parts"
    out.mkdir()
    for i, f in enumerate(sorted((ROOT / "sample_images").glob("*.jpg"))):
        cv2.imwrite(str(out / f"p{i:03d}.png"), cv2.imread(str(f)))
    return out


def start_station(a: argparse.Namespace, folder: Path, port: int, parts: Path) -> subprocess.Popen:
    cfg = folder / "cam.toml"
    cfg.write_text(f'[station]\nname = "sim"\n\n[camera]\ntype = "pylon"\ntrigger = "software"\n'
                   f'exposure_us = {a.exposure_us}\nread_timeout_s = 1.0\n\n'
                   f'[camera.features]\nPixelFormat = "RGB8Packed"\nWidth = 320\nHeight = 320\n'
                   f'TestImageSelector = "Off"\nImageFileMode = "On"\nImageFilename = "{parts.as_posix()}"\n\n'
                   f'[line]\ntrigger = "mqtt"\ntrigger_timeout_s = {a.timeout}\n\n'
                   f'[line.mqtt]\nurl = "mqtt://127.0.0.1:{port}"\n')
    cmd = [sys.executable, "-m", "inspector", "run", "--quiet", "--json", "--config", str(cfg),
           "--db", f"sqlite:///{folder / 'cam.db'}"]
    if a.model:
        cmd += ["--model", a.model]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "INSPECTOR_HOME": str(folder / "home"), "PYLON_CAMEMU": "1"}
    return subprocess.Popen(cmd, env=env, stdout=open(folder / "station.out", "w"),
                            stderr=open(folder / "station.log", "w"))


def record(db: Path) -> dict:
    with sqlite3.connect(db) as con:
        rows = con.execute("select frame_name, part_id, verdict from inspections").fetchall()
        why = con.execute("select reasons, count(*) from inspections where verdict = 'NOT_INSPECTED' "
                          "group by reasons").fetchall()
    ids = [n.split(",")[0].removeprefix("camera frame ") for n, _, _ in rows if n.startswith("camera frame ")]
    return {"records": len(rows), "frames": len(ids), "distinct_frame_ids": len(set(ids)),
            "records_with_part_id": sum(1 for _, p, _ in rows if p),
            "not_inspected_reasons": {r[:120]: n for r, n in why}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", type=int, default=300)
    p.add_argument("--rate", type=float, default=10.0, help="triggers per second")
    p.add_argument("--model", default=None)
    p.add_argument("--timeout", type=float, default=2.0, help="the station's trigger_timeout_s")
    p.add_argument("--exposure-us", type=float, default=1000.0, help="the camera's exposure (a strobed part)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.parts < 1 or a.rate <= 0:
        print("error: --parts must be at least 1 and --rate above 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="camera-sim-") as tmp:
        folder = Path(tmp)
        parts = write_parts(folder)
        broker, port = start_broker(folder)
        station = start_station(a, folder, port, parts)
        try:
            out = simulate_mqtt("127.0.0.1", port, a.parts, a.rate, a.timeout + 10)
        finally:
            station.send_signal(signal.SIGTERM)
            station.wait(120)
            broker.terminate()
            broker.wait(10)
        rec = record(folder / "cam.db")
        out = {"camera": "pylon emulator, software trigger", "rate": a.rate, **out, **rec,
               "frames_equal_triggers": rec["frames"] == rec["distinct_frame_ids"] == a.parts}
        if station.returncode not in (0, None):
            out["station_exit"] = station.returncode
            out["station_log"] = (folder / "station.log").read_text()[-2000:]
    print(json.dumps(out) if a.json else "\n".join(f"{k:28} {v}" for k, v in out.items()))
    ok = not out["lost"] and not out["duplicates"] and out["results"] == a.parts and out["frames_equal_triggers"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
