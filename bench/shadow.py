"""Shadow mode's cost to the line: parts/s of the real station with and without a challenger beside it.

    python bench/shadow.py [--parts 600] [--rounds 3] [--share 0.2] [--challenger PATH] [--json]

Each round runs the station twice on the looped sample images (folder source, the shipped model, SQLite rows,
failed parts' JPEGs), once without and once with ``[shadow] model = CHALLENGER, share = SHARE``, alternating
which goes first; the figure is the median parts/s of each over the rounds and their ratio (target: the shadow
run at least 0.95 of the plain one). The challenger is loaded before the shadow run's first part, so the figure is
its cost while it judges, not its one-time start. The challenger defaults to the shipped model itself (the same
cost as a challenger of the same size). Prints the CPU, its flags that matter for inference, and the load average, since
other work on the machine moves the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inspector.core.privacy import guard_process  # noqa: E402 - the project root is on sys.path first

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_text() -> str:
    """The CPU model, its inference-relevant flags and the core count (Linux: /proc/cpuinfo; elsewhere less)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = ", ".join(f for f in FLAGS if f in flags) or "unknown"
    return f"{name}; {os.cpu_count()} logical cores; flags: {have}"


def load_text() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "load average unknown"


def run_once(parts: int, tmp: Path, shadow: dict | None, tag: str) -> dict:
    from inspector.core.config import Config, SaveImages, config_from_dict
    from station import Station, StationSpec

    data = Config().model_dump(mode="python")
    data["storage"]["save_images"] = SaveImages.FAILED
    data["station"]["name"] = "bench"
    if shadow:
        data["shadow"] = shadow
    cfg = config_from_dict(data)
    url = f"sqlite:///{(tmp / f'{tag}.db').as_posix()}"
    st = Station(StationSpec(str(ROOT / "sample_images"), url, cfg, max_frames=parts, loop=True))
    if st.shadow is not None:  # measured judging: the challenger loaded before the first part (a one-time cost)
        st.shadow.start()
        if not st.shadow.wait_ready(180):
            raise SystemExit(f"the challenger did not start: {st.shadow.error}")
    st.start()
    st.runner.join()
    stats = st.stats()
    judged, skipped = (st.shadow.judged, st.shadow.skipped) if st.shadow is not None else (0, 0)
    st.finish("finished")
    return {"fps": stats.fps, "inspected": stats.inspected, "shadow_judged": judged, "shadow_skipped": skipped}


def main() -> int:
    guard_process()  # the offline guard: nothing this benchmark runs may call out
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--share", type=float, default=0.2)
    ap.add_argument("--challenger", default=None, help="challenger model file (default: the shipped model)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from inspector.core.config import ModelConfig
    from station.models import config_model_file

    challenger = str(Path(a.challenger) if a.challenger else config_model_file(ModelConfig()))
    shadow = {"model": challenger, "share": a.share}
    tmp = Path(tempfile.mkdtemp(prefix="inspector-shadow-bench-"))
    os.environ.setdefault("INSPECTOR_HOME", str(tmp / "home"))
    plain, shadowed, runs = [], [], []
    for r in range(a.rounds):
        order = (("plain", None), ("shadow", shadow)) if r % 2 == 0 else (("shadow", shadow), ("plain", None))
        for tag, sh in order:
            res = run_once(a.parts, tmp, sh, f"{tag}-{r}")
            (plain if sh is None else shadowed).append(res["fps"])
            runs.append({"round": r, "run": tag, **res})
            print(f"round {r + 1} {tag:<6} {res['fps']:6.1f} parts/s ({res['inspected']} parts; shadow judged "
                  f"{res['shadow_judged']}, skipped {res['shadow_skipped']})", file=sys.stderr, flush=True)
    p, s = statistics.median(plain), statistics.median(shadowed)
    out = {"plain_parts_per_s": round(p, 1), "shadow_parts_per_s": round(s, 1), "ratio": round(s / p, 3),
           "share": a.share, "challenger": challenger, "parts": a.parts, "rounds": a.rounds, "cpu": cpu_text(),
           "load": load_text(), "runs": runs}
    change = (f"{(1 - s / p) * 100:.1f}% fewer parts/s" if s < p else f"{(s / p - 1) * 100:.1f}% more parts/s")
    print(f"without shadow {p:.1f} parts/s, with shadow ({a.share:.0%} of the parts) {s:.1f} parts/s: ratio "
          f"{s / p:.3f} ({change} with shadow; target: under 5% fewer)")
    print(f"{out['cpu']}; {out['load']}")
    if a.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
