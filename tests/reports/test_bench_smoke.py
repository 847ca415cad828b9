"""bench/review_scale.py runs end to end on a small database and reports its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "review_scale.py"


def test_review_scale_runs_small():
    done = subprocess.run([sys.executable, str(BENCH), "--rows", "3000", "--report-rows", "1000", "--repeat", "3",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    fig = json.loads(done.stdout.strip().splitlines()[-1])
    assert fig["rows"] == 3000 and fig["report_inspections"] == 1000
    for key in ("page_ms_p95", "filtered_page_ms_p95", "report_100k_s"):
        assert fig[key] > 0
    assert fig["filtered_rows"] > 0  # the filters find rows: the pages measured are not empty
