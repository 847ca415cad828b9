"""Issue 24, settings: the data folder is its owner's alone, passwords live outside config.toml (environment or
an owner-only secrets file; one in config.toml still works, with a warning), and no password reaches the log
file or stderr (a camera's URL included). Real processes, real files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX; Windows keeps the profile's ACLs")


def run_cli(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "INSPECTOR_HOME": str(home), **(env or {})})


@posix_only
def test_the_data_folder_and_what_a_run_writes_are_the_owners_alone(tmp_path, synth_data):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # as an older version left it
    r = run_cli(home, "run", "--source", str(synth_data / "images"), "--max-frames", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    made = [p for p in home.rglob("*")]
    assert any(p.suffix == ".db" for p in made) and any(p.name == "inspector.log" for p in made)
    loose = [(p, oct(stat.S_IMODE(p.stat().st_mode))) for p in made if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert not loose, loose


@posix_only
def test_a_camera_urls_password_reaches_neither_stderr_nor_the_log(tmp_path):
    home = tmp_path / "home"
    url = "rtsp://admin:Cam3raSecret@127.0.0.1:9/stream"
    r = run_cli(home, "-v", "run", "--source", url, "--max-frames", "1", "--quiet")
    text = r.stdout + r.stderr + "".join(p.read_text(errors="replace") for p in (home / "logs").glob("*.log*"))
    assert r.returncode == 2 and "rtsp://admin:***@127.0.0.1" in r.stderr, text[-2000:]
    assert "Cam3raSecret" not in text


def test_passwords_come_from_the_environment_or_an_owner_only_secrets_file(tmp_path, monkeypatch, caplog):
    from inspector.core.config import load_config
    from inspector.core.errors import ConfigError
    from inspector.core.secrets import redact

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("INSPECTOR_HOME", str(home))
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text('[storage]\ndb_url = "postgresql://inspector@db.local/insp"\n\n'
                        '[line.opcua]\nendpoint = "opc.tcp://127.0.0.1:4840"\nuser = "plc"\n')
    monkeypatch.setenv("INSPECTOR_OPCUA_PASSWORD", "ua-from-env")
    secrets = home / "secrets.toml"
    secrets.write_text('db_password = "pg p@ss/word"\n')
    secrets.chmod(0o644)
    if os.name == "posix":
        with pytest.raises(ConfigError, match="chmod 600"):
            load_config(cfg_file)
    secrets.chmod(0o600)
    cfg = load_config(cfg_file)
    assert cfg.line.opcua.password == "ua-from-env"
    assert cfg.storage.db_url == "postgresql://inspector:pg%20p%40ss%2Fword@db.local/insp"
    assert "ua-from-env" not in redact(f"login as plc/ua-from-env to {cfg.storage.db_url}")
    assert "p%40ss" not in redact(cfg.storage.db_url)
    # a password still in config.toml is used, with a warning to move it
    monkeypatch.delenv("INSPECTOR_OPCUA_PASSWORD")
    cfg_file.write_text('[line.opcua]\nendpoint = "opc.tcp://127.0.0.1:4840"\nuser = "plc"\npassword = "in-file"\n')
    assert load_config(cfg_file).line.opcua.password == "in-file"
    assert "holds a password (opcua_password)" in caplog.text and "in-file" not in redact("x in-file y")


def test_a_database_url_without_a_password_takes_it_from_the_environment(monkeypatch):
    from inspector.core.secrets import url_with_secret

    monkeypatch.setenv("INSPECTOR_DB_PASSWORD", "s3cr3t!")
    assert url_with_secret("postgresql://inspector@127.0.0.1:5432/x") == "postgresql://inspector:s3cr3t%21@127.0.0.1:5432/x"
    assert url_with_secret("postgresql://inspector:given@h/x") == "postgresql://inspector:given@h/x"
    assert url_with_secret("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
