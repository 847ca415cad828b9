"""Issue 12 at the command line: no untrusted pickle runs, trust lives in the station's database,
recipes are registered like models, QC commands sign in. Real files, real databases, real processes."""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.detection.checkpoint import check_pickle, vet
from inspector.detection.registry import PACKAGE_MODELS, sha256_file

ADMIN_PW = "admin-password"


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(folder: Path, torch_zip: bool = False) -> tuple[Path, Path]:
    """A real malicious .pt: unpickling it runs a shell command that creates ``marker``."""
    marker, path = folder / "PWNED", folder / "evil.pt"
    if torch_zip:
        import torch

        torch.save({"model": _Evil(marker)}, path)
    else:
        with open(path, "wb") as f:
            pickle.dump({"model": _Evil(marker)}, f)
    return path, marker


def rehashed_onnx(path: Path) -> None:
    """The same network with another hash (a changed doc string)."""
    import onnx

    m = onnx.load(path)
    m.doc_string = (m.doc_string or "") + " (another copy)"
    onnx.save(m, path)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def one_error(r: subprocess.CompletedProcess, fragment: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], r.stderr


def count(db: Path, table: str = "inspections") -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def station(tmp_path, monkeypatch) -> str:
    """A station database with an admin 'boss', a QC 'anna' and an operator 'op1'."""
    url = f"sqlite:///{tmp_path / 'station.db'}"
    monkeypatch.setenv("INSPECTOR_PASSWORD", ADMIN_PW)
    monkeypatch.setenv("INSPECTOR_NEW_PASSWORD", ADMIN_PW)
    assert main(["user", "add", "boss", "--role", "admin", "--db", url]) == 0
    assert main(["user", "add", "anna", "--role", "qc", "--db", url, "--user", "boss"]) == 0
    assert main(["user", "add", "op1", "--role", "operator", "--db", url, "--user", "boss"]) == 0
    return url


@pytest.mark.parametrize("torch_zip", [False, True])
def test_the_safe_loader_refuses_code_and_reads_a_clean_checkpoint(tmp_path, torch_zip):
    import torch

    evil, marker = evil_pickle(tmp_path, torch_zip)
    with pytest.raises(Exception, match="not a plain PyTorch checkpoint"):
        check_pickle(evil)
    assert not marker.exists()
    clean = tmp_path / "resaved.pt"  # a YOLO checkpoint no one registered: another hash, no code
    torch.save(torch.load(PACKAGE_MODELS / "parts-v2" / "parts-v2.pt", weights_only=False), clean)
    assert sha256_file(clean) != sha256_file(PACKAGE_MODELS / "parts-v2" / "parts-v2.pt")
    check_pickle(clean)
    from inspector.core.errors import ModelError
    from inspector.detection.registry import ModelRegistry

    registry = ModelRegistry()
    assert vet(registry, clean) == sha256_file(clean)  # a user's base such as yolo11n.pt: accepted
    with pytest.raises(ModelError, match="not in the model registry"):
        registry.check(clean)  # but it does not judge parts until someone trusts it
    with pytest.raises(ModelError, match="not a plain PyTorch checkpoint"):
        vet(registry, evil)
    assert not marker.exists()


def test_a_loader_function_allowed_by_module_is_still_refused(tmp_path):
    """Ultralytics' own modules hold loaders (torch_safe_load): only layer classes pass the allow-list."""
    import torch
    from ultralytics.nn import tasks

    evil, marker = evil_pickle(tmp_path)

    class Nested:
        def __reduce__(self):
            return (tasks.torch_safe_load, (str(evil),))

    torch.save({"model": Nested()}, tmp_path / "nested.pt")
    with pytest.raises(Exception, match="not a plain PyTorch checkpoint"):
        check_pickle(tmp_path / "nested.pt")
    assert not marker.exists()


@pytest.mark.model
def test_no_command_unpickles_an_untrusted_file(tmp_path, synth_data):
    """Issue 12.1: train --base, train --resume, evaluate and export, with a real malicious pickle."""
    evil, marker = evil_pickle(tmp_path)
    db = ["--db", f"sqlite:///{tmp_path / 's.db'}"]
    one_error(cli("train", "--data", str(synth_data), "--base", str(evil), "--epochs", "1", "--out",
                  str(tmp_path / "m1"), *db), "refusing to load")
    weights = tmp_path / "m2" / "run" / "weights"
    weights.mkdir(parents=True)
    (tmp_path / "r").mkdir()
    resumed, marker2 = evil_pickle(tmp_path / "r")
    resumed.rename(weights / "last.pt")
    one_error(cli("train", "--data", str(synth_data), "--resume", "--out", str(tmp_path / "m2"), *db),
              "refusing to load")
    one_error(cli("evaluate", "--model", str(evil), "--data", str(synth_data), *db), "refusing to load")
    one_error(cli("export", "--model", str(evil), "--format", "onnx", *db), "refusing to load")
    assert not marker.exists() and not marker2.exists(), "code in an untrusted pickle ran"


def test_a_model_trusted_in_another_database_does_not_run_here(tmp_path, station, synth_data, monkeypatch, capsys):
    """Issue 12.2: 'model add' on a throwaway database (no users there) trusts nothing on the station."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(PACKAGE_MODELS / "parts-v2", other)
    onnx = other / "parts-v2.onnx"
    rehashed_onnx(onnx)
    monkeypatch.delenv("INSPECTOR_PASSWORD")
    assert main(["model", "add", str(onnx), "--db", f"sqlite:///{tmp_path / 'empty.db'}"]) == 0
    capsys.readouterr()
    rc = main(["run", "--source", str(synth_data / "images"), "--max-frames", "3", "--model", str(onnx),
               "--db", station])
    assert rc == 2 and "not in the model registry" in capsys.readouterr().err
    assert count(tmp_path / "station.db") == 0
    # trusted on the station by its admin (signed in), it runs, and the audit trail says who trusted it
    monkeypatch.setenv("INSPECTOR_PASSWORD", ADMIN_PW)
    assert main(["model", "add", str(onnx), "--db", station, "--user", "boss"]) == 0
    assert main(["run", "--source", str(synth_data / "images"), "--max-frames", "3", "--model", str(onnx),
                 "--db", station, "--quiet"]) == 0
    assert count(tmp_path / "station.db") == 3
    con = sqlite3.connect(tmp_path / "station.db")
    # the model and the card beside it (issue 24: a card's image size counts only when the card is trusted)
    assert con.execute("select actor from audit_log where action = 'model.trust'").fetchall() == [("boss",)] * 2


def test_a_forged_card_named_by_the_environment_is_not_trusted(tmp_path, station, synth_data, monkeypatch, capsys):
    """Issue 12.3: INSPECTOR_MODELS_DIR moves where models are looked for; it never adds a trusted hash."""
    import json
    import shutil

    fake = tmp_path / "ship" / "fake"
    shutil.copytree(PACKAGE_MODELS / "parts-v2", fake)
    onnx = fake / "parts-v2.onnx"
    rehashed_onnx(onnx)
    card = json.loads((fake / "card.json").read_text())
    card["files"]["parts-v2.onnx"]["sha256"] = sha256_file(onnx)
    (fake / "card.json").write_text(json.dumps(card))
    monkeypatch.setenv("INSPECTOR_MODELS_DIR", str(tmp_path / "ship"))
    rc = main(["run", "--source", str(synth_data / "images"), "--max-frames", "3", "--model", str(onnx),
               "--db", station])
    assert rc == 2 and "not in the model registry" in capsys.readouterr().err
    assert count(tmp_path / "station.db") == 0


def test_recipes_are_registered_like_models(tmp_path, station, synth_data, monkeypatch, capsys):
    """Issue 12.5: once the station has users, only the default or a registered recipe judges parts."""
    lax = tmp_path / "lax.toml"
    lax.write_text('name = "lax"\nfail_conf = 0.99\nreview_conf = 0.98\n')
    run = ["run", "--source", str(synth_data / "images"), "--max-frames", "3", "--db", station, "--quiet",
           "--recipe", str(lax)]
    assert main(run) == 2
    assert "not registered" in capsys.readouterr().err and count(tmp_path / "station.db") == 0
    assert main(["recipe", "add", str(lax), "--db", station, "--user", "op1"]) == 2  # an operator may not
    assert "qc role" in capsys.readouterr().err
    assert main(["recipe", "add", str(lax), "--db", station, "--user", "anna"]) == 0
    assert main(run) == 0
    from inspector.core.config import load_recipe
    from inspector.detection.registry import recipe_sha256

    sha = recipe_sha256(load_recipe(lax).model_dump(mode="json"))
    con = sqlite3.connect(tmp_path / "station.db")
    assert con.execute("select distinct recipe_sha256 from inspections").fetchall() == [(sha,)]
    assert con.execute("select actor, target from audit_log where action = 'recipe.trust'").fetchall() == [
        ("anna", f"recipe:{sha}")]


def test_a_fresh_install_runs_any_recipe(tmp_path, synth_data):
    lax = tmp_path / "lax.toml"
    lax.write_text('name = "lax"\nfail_conf = 0.99\nreview_conf = 0.98\n')
    assert main(["run", "--source", str(synth_data / "images"), "--max-frames", "2", "--quiet", "--recipe", str(lax),
                 "--db", f"sqlite:///{tmp_path / 'fresh.db'}"]) == 0


@pytest.mark.parametrize("command", [["report", "--out", "{tmp}/r.csv"], ["export-dataset", "--out", "{tmp}/ds"]])
def test_qc_commands_sign_in_once_the_station_has_users(tmp_path, station, monkeypatch, capsys, command):
    """Issue 12.7: report and export-dataset are QC actions (inspector/auth.py)."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--db", station]
    assert main(args) == 2 and "--user" in capsys.readouterr().err
    assert main([*args, "--user", "op1"]) == 2 and "qc role" in capsys.readouterr().err
    assert main([*args, "--user", "anna"]) == 0


@pytest.mark.model
def test_train_trusts_its_output_only_for_a_signed_in_qc(tmp_path, station, synth_data, monkeypatch, capsys):
    """Issue 12.4: without sign-in the model is written but not trusted; a wrong password stops before training."""
    out = tmp_path / "m"
    train = ["train", "--data", str(synth_data), "--epochs", "1", "--imgsz", "64", "--batch", "8", "--out", str(out),
             "--db", station]
    monkeypatch.setenv("INSPECTOR_PASSWORD", "wrong-password")
    assert main([*train, "--user", "anna"]) == 2 and not out.exists()
    capsys.readouterr()
    assert main(train) == 0
    assert "Not trusted" in capsys.readouterr().out
    assert (out / "m.pt").is_file() and count(tmp_path / "station.db", "trusted_files") == 0
    monkeypatch.setenv("INSPECTOR_PASSWORD", ADMIN_PW)
    assert main(["model", "add", str(out / "m.onnx"), "--db", station, "--user", "anna"]) == 2  # models: admin
    assert main(["model", "add", str(out / "m.onnx"), "--db", station, "--user", "boss"]) == 0
    assert count(tmp_path / "station.db", "trusted_files") == 2  # the model and its card


def test_audit_verify_exits_1_after_a_verdict_is_edited(tmp_path, station, synth_data, capsys):
    """Issue 12.9 end to end: a run, then the FAIL rows turned PASS in SQL; the chain head is printed."""
    assert main(["run", "--source", str(synth_data / "images"), "--max-frames", "12", "--db", station, "--quiet"]) == 0
    assert main(["audit", "verify", "--db", station]) == 0
    assert "audit chain head: entry" in capsys.readouterr().out
    con = sqlite3.connect(tmp_path / "station.db")
    con.execute("update inspections set verdict = 'PASS'")
    con.commit()
    con.close()
    assert main(["audit", "verify", "--db", station]) == 1
    assert "changed outside Inspector" in capsys.readouterr().out
