"""Command line: the composition root that wires the engine, the database and the window."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from inspector.errors import InspectorError

log = logging.getLogger("inspector")


def _synth(a: argparse.Namespace) -> int:
    from inspector.synth import write_dataset

    def progress(n: int, total: int) -> None:
        if n % 50 == 0 or n == total:
            print(f"\r{n}/{total} parts", end="" if n < total else "\n", flush=True)

    meta = write_dataset(Path(a.out), a.count, a.seed, progress)
    print(f"wrote {meta['count']} parts ({meta['defective']} defective) to {a.out}")
    return 0


def _train(a: argparse.Namespace) -> int:
    from inspector.training import TrainProgress, train

    def progress(p: TrainProgress) -> None:
        m = f" mAP50 {p.map50:.3f}" if p.map50 is not None else ""
        print(f"epoch {p.epoch}/{p.epochs} loss {p.loss:.3f}{m} ETA {p.eta_s / 60:.1f} min", flush=True)

    cmd = "inspector " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    card = train(a.data, a.out, base=a.base, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, hours=a.hours,
                 resume=a.resume, command=cmd, progress=progress)
    print(f"model written to {a.out}: {', '.join(card['files'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="inspector", description="Offline visual inspection.")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("synth", help="write labelled synthetic part images")
    s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_synth)
    t = sub.add_parser("train", help="train or fine-tune a detector")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--base", default=None)
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--imgsz", type=int, default=320)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--hours", type=float, default=None, help="time budget; epochs are fitted to it")
    t.add_argument("--resume", action="store_true")
    t.set_defaults(func=_train)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = build_parser().parse_args(argv)
    try:
        return a.func(a)
    except InspectorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
