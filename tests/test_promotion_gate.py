"""Promotion and rollback that a person can trust (issue 26): a rollback names its target, asks to confirm and never
goes forward; a promotion shows the last comparison against the active model and needs one unless an admin forces
it with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.core.auth import Role
from inspector.core.errors import ConfigError, PermissionDenied
from tests.conftest import QC, signed, staff

ROOT = Path(__file__).resolve().parents[1]
PARTS_ONNX = ROOT / "models" / "parts-v2" / "parts-v2.onnx"
def ADMIN():  # noqa: N802 - a badge, like QC()
    return signed("root-admin", Role.ADMIN)


def _models(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for n in names:
        f = tmp_path / n / f"{n}.onnx"
        f.parent.mkdir()
        f.write_bytes(f"weights of {n}".encode())
        out.append(f)
    return out


@pytest.fixture
def station(tmp_path):
    from db import TrustRepo
    from inspector.detection.registry import sha256_file
    from station import open_db

    b, c = _models(tmp_path, "b", "c")
    url = f"sqlite:///{tmp_path / 'st.db'}"
    engine, sessions = open_db(url)
    with sessions.begin() as s:
        staff(s)
        for f in (b, c):
            TrustRepo.add(s, ADMIN(), "model", sha256_file(f), f.name, {"file": str(f)})
    yield url, sessions, b, c
    engine.dispose()


def compared(sessions, champion: Path, challenger: Path, map50=(0.50, 0.62)) -> None:
    from db import PromotionRepo
    from db.writes import write
    from inspector.detection.registry import sha256_file

    figures = {"champion_sha256": sha256_file(champion), "challenger_sha256": sha256_file(challenger),
               "data": "held-out", "images": 80, "map50": list(map50), "escapes": [3, 1], "disagreements": 4}
    write(sessions, lambda s: PromotionRepo.record_compare(s, "qc-anna", figures), "Recording the comparison")


def test_a_second_rollback_goes_further_back_never_forward(station):
    from station.models import change_model, rollback_target

    _, sessions, b, c = station
    compared(sessions, PARTS_ONNX, b)
    change_model(sessions, QC(), "cell-1", b, "better on lot 12", PARTS_ONNX)
    compared(sessions, b, c)
    change_model(sessions, QC(), "cell-1", c, "better on lot 13", PARTS_ONNX)
    assert rollback_target(sessions, "cell-1", PARTS_ONNX) == b.resolve()
    change_model(sessions, QC(), "cell-1", b, "escapes on lot 14", PARTS_ONNX, "rollback")
    assert rollback_target(sessions, "cell-1", PARTS_ONNX) == PARTS_ONNX  # not forward to c
    change_model(sessions, QC(), "cell-1", PARTS_ONNX, "escapes on lot 15", PARTS_ONNX, "rollback")
    with pytest.raises(ConfigError, match="nothing earlier to roll back to"):
        rollback_target(sessions, "cell-1", PARTS_ONNX)


def test_a_promotion_needs_a_comparison_against_the_active_model_or_an_admin_forcing_it(station):
    from db import AuditRepo
    from station.models import change_model, compare_text, last_compare

    _, sessions, b, c = station
    compared(sessions, b, c)  # against another champion: does not count
    with pytest.raises(ConfigError, match="no comparison of c/c.onnx against the active model"):
        change_model(sessions, QC(), "cell-1", c, "looks good", PARTS_ONNX)
    with pytest.raises(PermissionDenied):
        change_model(sessions, QC(), "cell-1", c, "looks good", PARTS_ONNX, force=True)  # a QC may not force
    p = change_model(sessions, ADMIN(), "cell-1", c, "line down, model c is the vendor's fix", PARTS_ONNX, force=True)
    assert p.actor == "root-admin"
    compared(sessions, c, b, map50=(0.41, 0.66))
    shown = compare_text(last_compare(sessions, "cell-1", b, PARTS_ONNX))
    assert "map50 0.410 -> 0.660" in shown and "80 parts of held-out" in shown and "qc-anna" in shown
    change_model(sessions, QC(), "cell-1", b, "better mAP50 on the held-out set", PARTS_ONNX)
    with sessions() as s:
        promos = [e for e in AuditRepo.list(s) if e.action == "model.promote"]
    assert promos[0].detail["evidence"]["map50"] == [0.41, 0.66]
    assert promos[1].detail["evidence"] == {"forced_by": "root-admin", "compare": "none on record"}


def _cli(url: str, *args: str, user: str = "quinn", password: str = "quinn-password-1", stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               INSPECTOR_PASSWORD=password)
    return subprocess.run([sys.executable, "-m", "inspector", "model", *args, "--db", url, "--user", user,
                           "--station", "cell-1"], capture_output=True, text=True, timeout=120, env=env,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)


def test_the_command_line_shows_the_compare_and_the_rollback_target_and_asks_to_confirm(station):
    from db.accounts import add_user

    url, sessions, b, _ = station
    add_user(sessions, ADMIN(), "quinn", Role.QC, "quinn-password-1")
    compared(sessions, PARTS_ONNX, b)
    r = _cli(url, "promote", str(b), "--reason", "better on lot 12")
    assert r.returncode == 0, r.stderr
    assert "last compare" in r.stdout and "map50 0.500 -> 0.620" in r.stdout and "promoted b/b.onnx" in r.stdout
    r = _cli(url, "rollback", "--reason", "escapes on lot 13")  # a script without --yes
    assert r.returncode == 2 and "add --yes" in r.stderr and "Traceback" not in r.stderr
    assert "roll back from b/b.onnx to parts-v2/parts-v2.onnx" in r.stdout
    r = _cli(url, "rollback", "--reason", "escapes on lot 13", "--yes")
    assert r.returncode == 0, r.stderr
    assert "rolled back to parts-v2/parts-v2.onnx" in r.stdout
    r = _cli(url, "rollback", "--reason", "again", "--yes")
    assert r.returncode == 2 and "nothing earlier to roll back to" in r.stderr
