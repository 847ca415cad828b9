"""Which start trains better on a short CPU budget: the shipped parts model, or the general surface base?

Runs plain Ultralytics training (time mode, the same defaults as ``inspector train``) on a data set's
train split from each base, one after the other, and prints the best val mAP50 each reached (val is
used to pick the best epoch, as in ``inspector train``). Example (NEU-DET, 8 minutes each):

    python bench/learn_base_compare.py --data ../shared/datasets/neu-det --minutes 8 \
        --run models/parts-v2/parts-v2.pt:320 --run models/surfaces-v1/surfaces-v1.pt:320 \
        --run models/surfaces-v1/surfaces-v1.pt:256
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def run_one(data_yaml: Path, base: str, imgsz: int, minutes: float, batch: int, out: Path) -> dict:
    from ultralytics import YOLO

    from inspector.detection.checkpoint import safe_source

    t0 = time.time()
    load0 = _load()
    # never the file itself: a .pt rebuilt from its tensors, an architecture checked as data
    model = YOLO(str(safe_source(base, Path(tempfile.mkdtemp(prefix="inspector-base-")))))
    model.train(data=str(data_yaml), epochs=max(1, int(minutes)), time=minutes / 60, imgsz=imgsz, batch=batch,
                device="cpu", workers=0, project=str(out), name=f"{Path(base).stem}-{imgsz}", exist_ok=True,
                plots=False, verbose=False, amp=False, val=True, patience=1000)
    rows = list(csv.DictReader((out / f"{Path(base).stem}-{imgsz}" / "results.csv").open()))
    rows = [{k.strip(): v for k, v in r.items()} for r in rows]
    best = max(rows, key=lambda r: float(r["metrics/mAP50(B)"]))
    return {"base": base, "imgsz": imgsz, "minutes": minutes, "epochs": len(rows),
            "best_epoch": int(float(best["epoch"])), "map50": round(float(best["metrics/mAP50(B)"]), 4),
            "map50_95": round(float(best["metrics/mAP50-95(B)"]), 4), "wall_s": round(time.time() - t0, 1),
            "load_before": load0, "load_after": _load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--run", action="append", required=True, help="BASE.pt:IMGSZ")
    ap.add_argument("--json", default=None, help="append one JSON line per run to this file")
    a = ap.parse_args()
    from inspector.training.datasets import load_dataset, to_ultralytics
    from inspector.training.train import default_cache_dir

    data_yaml = to_ultralytics(load_dataset(a.data), default_cache_dir())
    out = Path(tempfile.mkdtemp(prefix="learn-compare-"))
    for spec in a.run:
        base, _, size = spec.rpartition(":")
        r = run_one(data_yaml, base, int(size), a.minutes, a.batch, out)
        print(json.dumps(r), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
