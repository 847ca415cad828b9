"""The house's import rules (README "Architecture", the import-linter contracts in pyproject.toml): one layers
contract from the fronts down to the engine's ground floor, with no ignore patterns."""

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


def test_layers_contract_has_no_ignore_patterns():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert len(layers) == 1, [c["name"] for c in layers]
    ignoring = [c["name"] for c in contracts if c.get("ignore_imports")]
    assert not ignoring, ignoring
    assert layers[0]["layers"][0] == "inspector.cli" and layers[0]["layers"][-1] == "inspector.core"


def test_fast_path_imports_neither_torch_nor_ultralytics():
    code = ("import sys, inspector.inspection.pipeline, inspector.inspection.rules, inspector.sources.opening, "
            "inspector.sources.live, inspector.inspection.runner, inspector.detection.fast, inspector.line.desk;"
            "print(sorted(m for m in ('torch', 'ultralytics', 'PySide6', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
