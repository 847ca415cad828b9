"""``inspector corpus``: write the procedural surface-defect corpus used to pre-train a base model."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from inspector.core.errors import DatasetError


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _corpus(a: argparse.Namespace) -> int:
    from inspector.training.corpus import write_corpus

    out = Path(a.out)
    if (out / "images").is_dir() and any((out / "images").iterdir()):
        raise DatasetError(f"{out} already holds images: give an empty or new folder.")
    if a.size < 64:
        raise DatasetError(f"--size must be at least 64 px, got {a.size}.")

    def progress(n: int, total: int) -> None:
        print(f"\rimages {n}/{total}", end="", file=sys.stderr, flush=True)

    try:
        info = write_corpus(out, a.count, a.seed, size=a.size, workers=a.workers, val_every=a.val_every,
                            time_budget_s=a.time_budget, progress=progress)
    except OSError as e:
        raise DatasetError(f"cannot write the corpus to {out}: {e.strerror or e}.") from e
    print(file=sys.stderr)
    print(f"wrote {info['count']} images ({info['train']} train, {info['val']} val, "
          f"{sum(info['boxes_per_class'].values())} defects) to {out} in {info['seconds']:.0f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("corpus", help="write procedurally generated surfaces with defects, for pre-training")
    c.add_argument("--out", required=True, help="new folder (YOLO layout with splits/ and data.yaml)")
    c.add_argument("--count", type=_positive, default=2000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--size", type=int, default=320, help="image side in pixels")
    c.add_argument("--workers", type=_positive, default=os.cpu_count() or 1, help="processes")
    c.add_argument("--val-every", type=int, default=20, help="every N-th image goes to the val split")
    c.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop starting new work after this long; keeps what was finished")
    c.set_defaults(func=_corpus)
