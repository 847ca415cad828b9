"""Soak: run the real pipeline (looped sample images -> model -> SQLite + JPEGs) for a set time and
report memory growth and stalls.

    python bench/soak.py --minutes 30 [--model PATH] [--json]

Memory growth is the resident size at the end minus the resident size after the first minute
(warm-up: model, caches). A stall is a gap of more than --stall-s between two committed results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inspector.core.privacy import guard_process  # noqa: E402 - the project root is on sys.path first


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 1e6
    except ImportError:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> int:
    guard_process()  # the offline guard: nothing this benchmark runs may call out
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--source", default=str(ROOT / "sample_images"))
    ap.add_argument("--stall-s", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from inspector.core.config import Config, SaveImages
    from station import Station, StationSpec

    tmp = Path(tempfile.mkdtemp(prefix="inspector-soak-"))
    cfg = Config()
    # PASS images are not kept, as on a real line with retention; failures are
    cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"save_images": SaveImages.FAILED}),
                                 "model": cfg.model.model_copy(update={"path": Path(a.model) if a.model else None})})
    # O(1) bookkeeping, so that the soak does not measure its own memory
    gap = {"last": None, "worst": 0.0, "stalls": 0}
    lock = threading.Lock()

    def committed(items) -> None:
        now = time.monotonic()
        with lock:
            if gap["last"] is not None:
                g = now - gap["last"]
                gap["worst"] = max(gap["worst"], g)
                gap["stalls"] += g > a.stall_s
            gap["last"] = now

    station = Station(StationSpec(a.source, f"sqlite:///{(tmp / 'soak.db').as_posix()}", cfg, loop=True),
                      on_committed=committed)
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    station.start()
    station.runner.wait_ready(120)
    try:
        while time.monotonic() - t0 < a.minutes * 60 and station.runner.running:
            time.sleep(5)
            samples.append((time.monotonic() - t0, rss_mb()))
    finally:
        station.stop()
        station.runner.join(60)
        station.finish("stopped")
    st = station.runner.stats()
    shutil.rmtree(tmp, ignore_errors=True)
    after_warmup = next((m for t, m in samples if t >= 60), samples[0][1] if samples else 0.0)
    end = samples[-1][1] if samples else 0.0
    with lock:
        stalls, worst = gap["stalls"], gap["worst"]
    # resident size every 5 minutes (or at the end): a leak climbs steadily, warm-up levels off
    curve = [round(m, 1) for t, m in samples if int(t) % 300 < 5] + ([round(end, 1)] if samples else [])
    out = {"minutes": round((time.monotonic() - t0) / 60, 2), "inspected": st.inspected, "fps": round(st.fps, 2),
           "rss_after_warmup_mb": round(after_warmup, 1), "rss_end_mb": round(end, 1),
           "rss_growth_mb": round(end - after_warmup, 1),
           "rss_peak_mb": round(max((m for _, m in samples), default=0), 1),
           "rss_every_5_min_mb": curve,
           "stalls": stalls, "worst_gap_s": round(worst, 3), "error": str(station.runner.error or "")}
    print(f"{out['inspected']} parts in {out['minutes']} min ({out['fps']} parts/s); memory "
          f"{out['rss_after_warmup_mb']} MB after warm-up -> {out['rss_end_mb']} MB at the end "
          f"(growth {out['rss_growth_mb']} MB); {out['stalls']} stalls over {a.stall_s:g} s, "
          f"worst gap {out['worst_gap_s']} s")
    if a.json:
        print(json.dumps(out))
    return 0 if not station.runner.error else 1


if __name__ == "__main__":
    sys.exit(main())
