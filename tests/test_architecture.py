"""The import direction of CONVENTIONS.md: the engine knows neither Qt nor the database; db knows no Qt."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is a test dependency")
def test_import_contracts_hold():
    r = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]


def test_fast_path_imports_neither_torch_nor_ultralytics():
    code = ("import sys, inspector.pipeline, inspector.rules, inspector.sources, inspector.runner;"
            "print(sorted(m for m in ('torch', 'ultralytics', 'PySide6', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
