"""NEU-DET with one budget: fine-tuning from the shipped model against training from scratch.

Both runs use `inspector train` on ../shared/datasets/neu-det as it is (its own train split) with the
same epochs and image size, and are evaluated with `inspector evaluate` on its splits/val.txt.

    python bench/neu_finetune.py [--epochs 6] [--imgsz 224] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEU = ROOT.parent / "shared" / "datasets" / "neu-det"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _run(name: str, base: str | None, out: Path, epochs: int, imgsz: int) -> dict:
    args = ["train", "--data", str(NEU), "--epochs", str(epochs), "--imgsz", str(imgsz), "--batch", "32",
            "--out", str(out / name)]
    if base:
        args += ["--base", base]
    t0 = time.perf_counter()
    r = _cli(*args)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{name}: training failed: {r.stderr[-800:]}")
    e = _cli("evaluate", "--model", str(out / name / f"{name}.pt"), "--data", str(NEU), "--split", "val",
             "--backend", "ultralytics", "--json")
    if e.returncode != 0:
        raise SystemExit(f"{name}: evaluation failed: {e.stderr[-800:]}")
    res = json.loads(e.stdout.strip().splitlines()[-1])
    return {"base": base or "yolo11n.yaml (scratch)", "train_s": round(took, 1), "map50": res["map50"],
            "map50_95": res["map50_95"], "per_class_ap50": res["per_class_ap50"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--imgsz", type=int, default=224)
    ap.add_argument("--base", default=None, help="model to fine-tune (default: the shipped .pt)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not NEU.is_dir():
        print(f"NEU-DET not found at {NEU}")
        return 2
    sys.path.insert(0, str(ROOT))
    from inspector.detection.registry import resolve_model

    base = a.base or str(resolve_model(None, (".pt",)))
    out = Path(tempfile.mkdtemp(prefix="neu-"))
    result = {"epochs": a.epochs, "imgsz": a.imgsz, "train_images": 1440, "val_images": 360,
              "finetune": _run("finetune", base, out, a.epochs, a.imgsz),
              "scratch": _run("scratch", None, out, a.epochs, a.imgsz)}
    f, s = result["finetune"], result["scratch"]
    print(f"NEU-DET, {a.epochs} epochs at {a.imgsz} px, evaluated on splits/val.txt (360 images):")
    print(f"  fine-tuned from {Path(base).name}: mAP50 {f['map50']:.3f}, mAP50-95 {f['map50_95']:.3f} "
          f"({f['train_s'] / 60:.1f} min)")
    print(f"  from scratch (yolo11n.yaml):   mAP50 {s['map50']:.3f}, mAP50-95 {s['map50_95']:.3f} "
          f"({s['train_s'] / 60:.1f} min)")
    if a.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
