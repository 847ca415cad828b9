#!/usr/bin/env python3
"""Peer for tiled throughput, as a plant engineer would write it: SAHI's sliced prediction on Ultralytics'
OpenVINO export, one SQLite commit and one JPEG per part (as ../shared/acceptance/lib/peer_pipeline.py does
untiled). pip install sahi. Usage: sahi_peer.py WEIGHTS.pt IMAGES_DIR OUT_DIR [TILE] [OVERLAP]"""
import glob
import json
import os
import sqlite3
import sys
import time

import cv2
from sahi import AutoDetectionModel
from sahi.predict import get_sliced_prediction
from ultralytics import YOLO

weights, images, out = sys.argv[1], sys.argv[2], sys.argv[3]
tile = int(sys.argv[4]) if len(sys.argv) > 4 else 320
overlap = int(sys.argv[5]) if len(sys.argv) > 5 else 64
os.makedirs(os.path.join(out, "img"), exist_ok=True)
xml = YOLO(weights).export(format="openvino", imgsz=tile, verbose=False)
model = AutoDetectionModel.from_pretrained(model_type="ultralytics", model_path=xml, confidence_threshold=0.25,
                                           image_size=tile, device="cpu")
paths = sorted(p for p in glob.glob(os.path.join(images, "*")) if p.lower().endswith((".jpg", ".png", ".bmp")))
db = sqlite3.connect(os.path.join(out, "peer.db"))
db.execute("pragma journal_mode=wal"); db.execute("pragma synchronous=full")  # noqa: E702
db.execute("create table if not exists insp (id integer primary key, name text, verdict text, boxes text, t real)")
kw = dict(slice_height=tile, slice_width=tile, overlap_height_ratio=overlap / tile, overlap_width_ratio=overlap / tile,
          verbose=0)
get_sliced_prediction(cv2.imread(paths[0])[:, :, ::-1], model, **kw)  # warm-up
n, t0 = 0, time.perf_counter()
for p in paths:
    im = cv2.imread(p)
    r = get_sliced_prediction(im[:, :, ::-1], model, **kw)  # SAHI takes RGB
    boxes = [[*map(float, o.bbox.to_xyxy()), float(o.score.value), o.category.id] for o in r.object_prediction_list]
    name = f"{n:06d}.jpg"
    cv2.imwrite(os.path.join(out, "img", name), im)
    db.execute("insert into insp (name, verdict, boxes, t) values (?,?,?,?)",
               (name, "FAIL" if boxes else "PASS", json.dumps(boxes), time.time()))
    db.commit()
    n += 1
dt = time.perf_counter() - t0
print(json.dumps({"parts": n, "seconds": round(dt, 2), "peer_parts_per_s": round(n / dt, 2)}))
