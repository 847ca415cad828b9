"""Parts per second of an exported anomaly model as the station calls it (``detect``: resize, score, heat map,
boxes), per backend and thread count, on pictures decoded beforehand.
  python bench/anomaly_speed.py --model M.onnx --data ../shared/datasets/magnetic-tile [--n 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2

from inspector.detection.anomaly import AnomalyDetector
from inspector.detection.setup import cpu_flags


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/magnetic-tile"))
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    rels = [ln.split("\t")[0] for ln in (a.data / "splits/test.txt").read_text().splitlines() if ln.strip()]
    ims = [cv2.imread(str(a.data / r)) for r in rels[:: max(1, len(rels) // a.n)][: a.n]]
    card = a.model.parent / "card.json"
    facts = json.loads(card.read_text()).get("anomaly", {}) if card.is_file() else {}
    print(f"model {a.model.name}: memory bank of {facts.get('bank', '?')} patches; {len(ims)} pictures; "
          f"{os.cpu_count()} CPUs")
    print(f"CPU flags: {' '.join(cpu_flags())}; load average before: {os.getloadavg()}")
    for backend in ("openvino", "onnxruntime"):
        for threads in (1, 2):
            det = AnomalyDetector(a.model, "", backend=backend, threads=threads)
            for im in ims[:5]:
                det.detect(im)
            t0, c0 = time.perf_counter(), time.process_time()
            for im in ims:
                det.detect(im)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            # on a shared machine the wall time includes waiting for a core; the CPU time does not
            print(f"{backend} x{threads}: {len(ims) / dt:.1f} parts/s ({1000 * dt / len(ims):.1f} ms each, "
                  f"{1000 * cpu / len(ims):.1f} ms of CPU time each, {det.size} px input)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
