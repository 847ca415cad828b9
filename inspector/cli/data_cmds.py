"""``inspector data check``: the data-set report a QC engineer reads before training."""

from __future__ import annotations

import argparse
import json
import sys


def _check(a: argparse.Namespace) -> int:
    from inspector.training.datacheck import check_dataset, format_text, write_png

    def progress(n: int, total: int) -> None:
        if n % 100 == 0 or n == total:
            print(f"\rimages {n}/{total}", end="" if n < total else "\n", file=sys.stderr, flush=True)

    report = check_dataset(a.dataset, imgsz=a.imgsz, progress=progress, tile=a.tile)
    print(format_text(report))
    if a.png:
        write_png(report, a.png)
        print(f"wrote {a.png}")
    if a.json:
        print(json.dumps(report))
    return 1 if report["training_refuses"] else 0  # 1: 'inspector train' would refuse it


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("data", help="data-set tools")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    c = dsub.add_parser("check", help="images and boxes per class, box sizes, duplicates, bad files, imbalance; "
                        "exits 1 when training would refuse the data set")
    c.add_argument("dataset", help="data.yaml, Pascal VOC folder or YOLO folder")
    c.add_argument("--json", action="store_true", help="also print the report as one JSON line")
    c.add_argument("--png", default=None, metavar="FILE", help="draw the report into this PNG")
    c.add_argument("--imgsz", type=int, default=320, help="training size the box sizes are given at")
    c.add_argument("--tile", type=int, default=0, metavar="SIZE", help="tile size in camera pixels the box sizes "
                   "are checked against (inspector train --tile)")
    c.set_defaults(func=_check)
