"""Does the test suite hold under load? Runs ``pytest -n 2`` while CPU-bound processes spin beside it.

Starts ``--burners`` processes (default 4) that each keep one core busy with pure-Python arithmetic,
then runs the suite (or the test paths given after ``--``) with two xdist workers, ``--runs`` times in
a row (default 3), and prints for each run its wall time, pytest's summary line and its exit status,
with the CPU flags and the load average beside them. The burners stop when the runs end (or on
Ctrl-C). Each run's whole output is kept in ``--log`` (a new temporary folder by default) and a failing
run prints the tests that failed. Exit status: 0 when every run passed, else the first failing run's status.

    python bench/suite_load.py                       # the whole suite, three times, 4 burners
    python bench/suite_load.py --runs 1 -- tests/test_config.py tests/test_rules.py
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def burn(stop) -> None:
    """Keep one core busy until ``stop`` is set (checked every few million operations)."""
    x = 0
    while not stop.is_set():
        for i in range(2_000_000):
            x = (x * 31 + i) % 1_000_003


def cpu_flags() -> str:
    try:
        words = set(Path("/proc/cpuinfo").read_text(errors="replace").split())
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    return " ".join(f for f in _FLAGS if f in words) or "none of " + ", ".join(_FLAGS)


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def summary_line(output: str) -> str:
    """pytest's final 'N passed, M failed in T s' line (the last line that names a count)."""
    lines = [ln.strip("= ") for ln in output.splitlines() if re.search(r"\d+ (passed|failed|error)", ln)]
    return lines[-1] if lines else "(no pytest summary: see the output above)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--burners", type=int, default=4, help="CPU-bound processes beside the suite (default 4)")
    ap.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    ap.add_argument("--log", default=None, help="folder for each run's whole pytest output (default: a new "
                    "temporary folder, printed at the start)")
    ap.add_argument("paths", nargs="*", help="test paths and pytest options, after '--' (default: the suite)")
    a = ap.parse_args(argv)

    ctx = mp.get_context("spawn")  # the same on every platform
    stop = ctx.Event()
    burners = [ctx.Process(target=burn, args=(stop,), daemon=True) for _ in range(max(0, a.burners))]
    for p in burners:
        p.start()
    print(f"{len(burners)} CPU-bound processes beside pytest -n {a.workers}; {os.cpu_count()} CPUs; "
          f"CPU flags: {cpu_flags()}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep), "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    logs = Path(a.log) if a.log else Path(tempfile.mkdtemp(prefix="suite-load-"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"each run's whole output: {logs}", flush=True)
    if not (ROOT.parent / "shared").is_dir():  # a worktree elsewhere: link ../shared beside it for a whole run
        print(f"note: no {ROOT.parent / 'shared'}: the tests on the real data sets skip in these runs", flush=True)
    results: list[tuple[float, int, str]] = []
    try:
        for run in range(1, a.runs + 1):
            cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-n", str(a.workers), "-p", "no:cacheprovider",
                   *a.paths]
            t0 = time.monotonic()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
            took = time.monotonic() - t0
            line = summary_line(proc.stdout)
            results.append((took, proc.returncode, line))
            (logs / f"run{run}.log").write_text(proc.stdout, encoding="utf-8")
            if proc.returncode != 0:
                failed_ids = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
                crashed = [ln for ln in proc.stdout.splitlines() if "crashitem" in ln or "worker 'gw" in ln]
                print("\n".join(failed_ids + crashed[-5:]) or proc.stdout[-6000:], flush=True)
            print(f"run {run}/{a.runs}: {took / 60:.1f} min, exit {proc.returncode}: {line} "
                  f"(load average {load_average()})", flush=True)
    finally:
        stop.set()
        for p in burners:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    failed = [rc for _, rc, _ in results if rc != 0]
    print(f"{len(results) - len(failed)} of {len(results)} runs passed under {len(burners)} burners; "
          f"times {', '.join(f'{t / 60:.1f} min' for t, _, _ in results)}", flush=True)
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main())
