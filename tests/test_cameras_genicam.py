"""GenICam through harvesters and a real GenTL producer: the genicam wheel's simulated one (viky.cti: three
free-running cameras, RGBa8 or Mono8, no trigger nodes). Frames inspected by ``inspector run``, the pixel format
converted, the camera closed on the end of the run and on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("harvesters", reason="harvesters is not installed: pip install -e \".[cameras]\" (the test extra "
                                         "pulls it in)")

from inspector.core.config import CameraConfig  # noqa: E402
from inspector.core.errors import CameraError  # noqa: E402
from inspector.core.types import Frame  # noqa: E402
from inspector.sources import genicam  # noqa: E402
from inspector.sources.camera import GenICamSource  # noqa: E402

VIKY = genicam.simulated_producer()
pytestmark = pytest.mark.skipif(VIKY is None, reason="the genicam wheel ships no simulated GenTL producer here")


def viky(**kw) -> CameraConfig:
    return CameraConfig(type="genicam", cti=(VIKY,), read_timeout_s=3.0, **kw)


def frames(src, n: int) -> list[Frame]:
    out: list[Frame] = []
    end = time.monotonic() + 30
    while len(out) < n and time.monotonic() < end:
        item = src.read()
        if isinstance(item, Frame):
            out.append(item)
    return out


def test_the_simulated_producer_lists_its_cameras():
    found = genicam.list_cameras((VIKY,))
    assert len(found) == 3 and {c.model for c in found} == {"Viky"} and all(c.reachable for c in found)
    assert sorted(c.serial for c in found) == ["0", "1", "2"]


def test_free_running_frames_come_converted_to_bgr_in_frame_order():
    cfg = viky()
    src = GenICamSource(genicam.opener(cfg), cfg)
    try:
        got = frames(src, 5)
        assert len(got) == 5 and all(f.ok and f.image.shape == (400, 400, 3) for f in got)
        ids = [int(f.name.split()[2].rstrip(",")) for f in got]
        assert ids == list(range(ids[0], ids[0] + 5)) and src.live
        assert src.state.dropped == src.state.incomplete == 0 and src.state.state == "running"
    finally:
        src.close()
    assert src.state.state == "stopped"


def test_mono8_is_widened_to_three_equal_channels_and_the_camera_is_picked_by_serial():
    cfg = viky(id="2", pixel_format="Mono8")
    src = GenICamSource(genicam.opener(cfg), cfg)
    try:
        assert src.name == "Viky (2)"
        [f] = frames(src, 1)
        assert np.array_equal(f.image[..., 0], f.image[..., 1]) and np.array_equal(f.image[..., 1], f.image[..., 2])
    finally:
        src.close()


def test_a_trigger_mode_the_camera_lacks_is_refused_in_one_sentence():
    with pytest.raises(CameraError, match=r"the camera has no node TriggerMode \(set by \[camera\] trigger\)"):
        genicam.HarvestersDevice(viky(trigger="software"))
    with pytest.raises(CameraError, match="GenTL producer not found: /nowhere/x.cti"):
        genicam.HarvestersDevice(CameraConfig(type="genicam", cti=(Path("/nowhere/x.cti"),)))


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "cam.toml"
    cfg.write_text(f'[station]\nname = "gentl"\n\n[camera]\ntype = "genicam"\ncti = ["{VIKY.as_posix()}"]\n'
                   f'id = "1"\n')
    return cfg


def test_inspector_run_inspects_free_running_frames_and_closes_the_camera(tmp_path):
    out = subprocess.run([sys.executable, "-m", "inspector.cli", "-v", "run", "--config", str(_config(tmp_path)),
                          "--db", f"sqlite:///{tmp_path / 'g.db'}", "--max-frames", "6", "--json", "--quiet"],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 6 and summary["pass"] + summary["fail"] + summary["review"] == 6
    # free-running, frames the driver let go while the model loaded are counted, never made parts
    assert summary["camera"] == "Viky (1)" and summary["camera_incomplete"] == 0 and summary["not_inspected"] == 0
    assert summary["camera_dropped"] >= 0
    assert "camera Viky (1) closed" in out.stderr
    with sqlite3.connect(tmp_path / "g.db") as con:
        names = [n for (n,) in con.execute("select frame_name from inspections order by seq")]
        (source,), = con.execute("select source from runs").fetchall()
    assert len(names) == 6 and all(n.startswith("camera frame ") for n in names) and source == "Viky (1)"


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="SIGTERM is POSIX")
def test_sigterm_ends_the_run_and_closes_the_camera(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "inspector.cli", "-v", "run", "--config", str(_config(tmp_path)),
                          "--db", f"sqlite:///{tmp_path / 's.db'}", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        first = p.stdout.readline()  # a line per part: the camera runs
        assert first.startswith("#"), first + p.stderr.read()[-2000:] if not first else first
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-2000:]
    assert "camera Viky (1) closed" in err and "Traceback" not in err
    assert json.loads(out.strip().splitlines()[-1])["frames"] >= 1
