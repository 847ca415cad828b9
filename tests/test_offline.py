"""Nothing leaves the machine: the real commands, in real processes, look up and connect to no other host.

Every Python process started here loads ``tests/netspy/sitecustomize.py``, an audit hook that records
each name lookup (``socket.getaddrinfo``) and connect (``socket.connect``) to a host other than
loopback. The environment is a user's shell: no ``YOLO_OFFLINE``, a fresh home folder (where
OpenVINO's telemetry would find no consent file, and Ultralytics no font), nothing cached.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NETSPY = Path(__file__).resolve().parent / "netspy"
SHIPPED_PT = ROOT / "models" / "parts-v2" / "parts-v2.pt"


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's shell, with the network spy on every Python process."""
    home = tmp_path / "home"
    home.mkdir()
    # A user's shell: none of Inspector's test settings, and no CI marker (OpenVINO's telemetry stays
    # quiet when it sees CI=true, TF_BUILD or JENKINS_URL; a plant PC has none of them).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YOLO_", "NNCF_")) and k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), INSPECTOR_HOME=str(tmp_path / "inspector-home"),
               QT_QPA_PLATFORM="offscreen", NETSPY_LOG=str(tmp_path / "net.log"),
               PYTHONPATH=os.pathsep.join([str(NETSPY), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return env


def _attempts(env: dict[str, str]) -> str:
    log = Path(env["NETSPY_LOG"])
    return log.read_text() if log.exists() else ""


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_the_spy_sees_an_unguarded_call_out(user_env: dict[str, str]) -> None:
    """Without Inspector's guard, importing OpenVINO looks up Google Analytics: the spy works."""
    r = _run(user_env, "-c", "import openvino")
    assert r.returncode == 0, r.stderr
    assert "socket.getaddrinfo www.google-analytics.com" in _attempts(user_env)


def _inspected(db: Path) -> int:
    """Parts on record in the SQLite file ``db`` (0 while it or its tables do not exist yet)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return con.execute("select count(*) from inspections").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_every_command_stays_on_this_machine(user_env: dict[str, str], tmp_path: Path) -> None:
    ds, db = tmp_path / "ds", f"sqlite:///{tmp_path / 'o.db'}"
    commands = {
        "synth": ["synth", "--out", str(ds), "--count", "16", "--seed", "17017"],
        "run": ["run", "--source", str(ds / "images"), "--db", db, "--max-frames", "4", "--quiet"],
        "evaluate": ["evaluate", "--model", str(SHIPPED_PT), "--data", str(ds)],
        "train": ["train", "--data", str(ds), "--base", str(SHIPPED_PT), "--epochs", "1", "--imgsz", "64",
                  "--batch", "8", "--out", str(tmp_path / "m")],
        "export onnx": ["export", "--model", str(SHIPPED_PT), "--imgsz", "64", "--out", str(tmp_path / "x32")],
        "export int8": ["export", "--model", str(SHIPPED_PT), "--imgsz", "64", "--int8", "--data", str(ds),
                        "--out", str(tmp_path / "x8")],
        "report": ["report", "--db", db, "--format", "pdf", "--out", str(tmp_path / "r.pdf")],
        "audit verify": ["audit", "verify", "--db", db],
    }
    failed = {}
    for name, args in commands.items():
        r = _run(user_env, "-m", "inspector", *args)
        if r.returncode != 0:
            failed[name] = (r.stdout + r.stderr)[-800:]
        seen = _attempts(user_env)
        assert not seen, f"'inspector {name}' reached for the network:\n{seen}"
    assert not failed, failed
    assert (tmp_path / "x8" / "parts-v2_int8.xml").is_file() and (tmp_path / "r.pdf").is_file()

    window = subprocess.Popen([sys.executable, "-m", "inspector", "--db", f"sqlite:///{tmp_path / 'g.db'}"],
                              env=user_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # opens, loads the model and inspects the sample images: done when the first part is on record
        end = time.monotonic() + 240
        while _inspected(tmp_path / "g.db") == 0:
            assert window.poll() is None, f"the window exited early: {window.communicate()[0][-800:]}"
            assert time.monotonic() < end, "the window inspected no part within 240 s"
            time.sleep(0.2)
        assert window.poll() is None, f"the window exited early: {window.communicate()[0][-800:]}"
    finally:
        window.send_signal(signal.SIGINT)
        try:
            window.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            window.kill()
            window.communicate()
    seen = _attempts(user_env)
    assert not seen, f"the window reached for the network:\n{seen}"


def test_a_spawned_child_is_guarded_too(user_env: dict[str, str], tmp_path: Path) -> None:
    """A multiprocessing child started with 'spawn' (the default on Windows and macOS) runs the guard."""
    script = tmp_path / "spawner.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp
        import sys

        import inspector.core.privacy  # as every Inspector entry point and bench script does first


        def child():
            import openvino  # noqa: F401 - without the guard this sends a telemetry event
            import nncf  # noqa: F401

            from inspector.detection.offline import keep_data_local

            keep_data_local()
            import ultralytics.data.utils as data_utils
            assert data_utils.check_font("Arial.ttf") is not None  # a local font, not a download
            print("child", sys.modules["openvino_telemetry"])


        if __name__ == "__main__":
            p = mp.get_context("spawn").Process(target=child)
            p.start()
            p.join(60)
            sys.exit(p.exitcode)
    """))
    r = _run(user_env, str(script), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "child None" in r.stdout
    seen = _attempts(user_env)
    assert not seen, seen
