"""Issue 28's rows on real defects: a tiled model on NEU-DET mosaics, the same model on the single crops, and an
untiled 320-px model on the same mosaics.

1. ``bench/neu_mosaics.py`` writes the mosaics (2400x2000, real NEU-DET crops on strip background; train mosaics
   from the train split only, val from val) and a "crops" set: each NEU crop alone on a 320x320 piece of the same
   background, so the crop is judged at its camera scale as one tile (a 200x200 picture given to a 320-px model
   would be enlarged 1.6x; the tiled model never saw that scale).
2. ``inspector train --tile SIZE --overlap PX`` on the train mosaics, and ``inspector train --imgsz 320`` on the
   same mosaics whole (the untiled model), each with the same ``--time-budget``.
3. ``inspector evaluate`` on the val mosaics (the tiled model through a recipe with the same tiles), and the tiled
   model on the val crops: mAP50 on whole pictures in their own pixels and defective-part recall.

    python bench/neu_tiled.py --work /tmp/neu-tiled --budget 30m [--tile 320 --overlap 128] [--json]

Training takes most of the time (two budgets); the evaluation of 60-odd 5 MP mosaics tile by tile a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEU = ROOT.parent / "shared" / "datasets" / "neu-det"
sys.path.insert(0, str(ROOT / "bench"))
from suite_load import cpu_flags  # noqa: E402  (the same flags beside every figure)


def _run(*args: str) -> str:
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONUNBUFFERED="1", YOLO_OFFLINE="1"))
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args[:3])}...: {(r.stderr or r.stdout)[-1500:]}")
    return r.stdout


def _evaluate(model: Path, data: Path, recipe: Path | None = None) -> dict:
    args = ["-m", "inspector.cli", "evaluate", "--model", str(model), "--data", str(data), "--split", "val", "--json"]
    if recipe is not None:
        args += ["--recipe", str(recipe)]
    res = json.loads(_run(*args).strip().splitlines()[-1])
    return {k: res[k] for k in ("images", "map50", "map50_95", "part_recall", "false_reject_rate") if k in res}


def _train(data: Path, out: Path, budget: str, *extra: str) -> float:
    t0 = time.perf_counter()
    _run("-m", "inspector.cli", "train", "--data", str(data), "--time-budget", budget, "--out", str(out), *extra)
    return round(time.perf_counter() - t0, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="new folder outside the repository for the sets and models")
    ap.add_argument("--budget", default="30m", help="time budget of each training (default 30m)")
    ap.add_argument("--tile", type=int, default=320)
    ap.add_argument("--overlap", type=int, default=128)
    ap.add_argument("--size", default="2400x2000")
    ap.add_argument("--neu", default=str(NEU))
    ap.add_argument("--limit", type=int, default=0, help="at most this many NEU crops per split (a quick try)")
    ap.add_argument("--skip-untiled", action="store_true", help="train and judge the tiled model only")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    work = Path(a.work).resolve()
    if work.is_relative_to(ROOT):
        print("--work must lie outside the repository (NEU-DET images are not to be copied into it)", file=sys.stderr)
        return 2
    if not (Path(a.neu) / "splits" / "val.txt").is_file():
        print(f"NEU-DET not found at {a.neu}: give --neu", file=sys.stderr)
        return 2
    mosaics, crops = work / "mosaics", work / "crops"
    if not (mosaics / "splits" / "val.txt").is_file():
        _run(str(ROOT / "bench" / "neu_mosaics.py"), "--out", str(mosaics), "--size", a.size, "--neu", a.neu,
             "--limit", str(a.limit))
    if not (crops / "splits" / "val.txt").is_file():
        side = f"{a.tile}x{a.tile}"
        _run(str(ROOT / "bench" / "neu_mosaics.py"), "--out", str(crops), "--size", side, "--crops", "1",
             "--clean", "0", "--neu", a.neu, "--limit", str(a.limit))
    recipe = work / "tiled.toml"
    recipe.write_text(f'name = "neu-tiled"\ntile_size = {a.tile}\ntile_overlap = {a.overlap}\n')
    result: dict = {"cpu_flags": cpu_flags(), "cpus": os.cpu_count(), "budget": a.budget, "tile": a.tile,
                    "overlap": a.overlap, "mosaic_size": a.size}
    tiled = work / "tiled"
    if not (tiled / "card.json").is_file():
        result["tiled_train_s"] = _train(mosaics, tiled, a.budget, "--tile", str(a.tile), "--overlap",
                                         str(a.overlap), "--imgsz", str(a.tile))
    result["tiled_on_mosaics"] = _evaluate(tiled, mosaics, recipe)
    result["tiled_on_crops"] = _evaluate(tiled, crops)
    if not a.skip_untiled:
        flat = work / "untiled"
        if not (flat / "card.json").is_file():
            result["untiled_train_s"] = _train(mosaics, flat, a.budget, "--imgsz", "320")
        result["untiled_on_mosaics"] = _evaluate(flat, mosaics)
    t, c = result["tiled_on_mosaics"], result["tiled_on_crops"]
    checks = {"recall_within_0.05_of_crops": c["part_recall"] - t["part_recall"] <= 0.05,
              "map50_within_0.05_of_crops": c["map50"] - t["map50"] <= 0.05}
    if "untiled_on_mosaics" in result:
        checks["map50_0.30_above_untiled"] = t["map50"] - result["untiled_on_mosaics"]["map50"] >= 0.30
    result["checks"] = checks
    if a.json:
        print(json.dumps(result))
    else:
        print(f"CPU flags: {result['cpu_flags']}; {result['cpus']} CPUs; budget {a.budget} per training")
        for k in ("tiled_on_mosaics", "tiled_on_crops", "untiled_on_mosaics"):
            if k in result:
                r = result[k]
                print(f"  {k:20s} mAP50 {r['map50']:.3f}  part recall {r['part_recall']:.3f}  ({r['images']} pictures)")
        print("  " + ", ".join(f"{k}: {v}" for k, v in checks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
