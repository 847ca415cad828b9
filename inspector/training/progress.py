"""The machine-readable progress of ``inspector train --progress FILE``: one JSON object per line.

Events: ``start`` (pid, time), ``note`` (a line the training says: base, image size, budget), ``batch`` (within
an epoch, every few seconds from the first batch: epoch, epochs, batch, batches, eta_s), ``epoch`` (epoch,
epochs, loss, map50, best_map50, eta_s), ``done`` (what was reached, the files, who trusted them) and ``failed``
(one sentence). Each line is written whole and flushed, so a reader (the window, another process) sees whole
lines only; a line cut by a crash is skipped. ``read_progress`` turns the file into one frozen ``TrainState``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inspector.detection.card import ModelCard

log = logging.getLogger(__name__)


class ProgressFile:
    """Appends progress events to ``path`` (written by the training process)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.best: float | None = None
        self._write({"event": "start", "pid": os.getpid()})

    def _write(self, event: dict) -> None:
        event = {**event, "t": round(time.time(), 3)}
        line = (json.dumps(event, default=str) + "\n").encode("utf-8")
        with open(self.path, "a+b") as f:
            if f.tell() > 0:  # after a line cut by a crash, start a new one
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = b"\n" + line
            f.write(line)
            f.flush()

    def note(self, text: str) -> None:
        self._write({"event": "note", "text": text})

    def batch(self, p) -> None:
        """Progress within an epoch (a ``training.TrainProgress`` with ``batch``)."""
        eta = round(p.eta_s, 1) if math.isfinite(p.eta_s) else None
        self._write({"event": "batch", "epoch": p.epoch, "epochs": p.epochs, "batch": p.batch,
                     "batches": p.batches, "eta_s": eta})

    def epoch(self, p) -> None:
        """One ``training.TrainProgress``."""
        m = p.map50 if p.map50 is not None and math.isfinite(p.map50) else None
        if m is not None:
            self.best = m if self.best is None else max(self.best, m)
        loss = p.loss if math.isfinite(p.loss) else None
        self._write({"event": "epoch", "epoch": p.epoch, "epochs": p.epochs, "loss": loss, "map50": m,
                     "best_map50": self.best, "eta_s": round(p.eta_s, 1)})

    def done(self, card: ModelCard, out: Path, reached: str, trusted_by: str = "") -> None:
        self._write({"event": "done", "out": str(Path(out).resolve()), "reached": reached, "trusted_by": trusted_by,
                     "files": {f.name: f.sha256 for f in card.files}, "stopped_by": card.stopped_by,
                     "interrupted": card.interrupted, "best_epoch": card.best_epoch, "map50": card.train_val_map50})

    def failed(self, e: BaseException) -> None:
        try:
            self._write({"event": "failed", "error": str(e) or type(e).__name__})
        except OSError:
            log.warning("could not record the failure in %s", self.path)


@dataclass(frozen=True)
class EpochPoint:
    epoch: int
    epochs: int
    loss: float | None
    map50: float | None
    t: float


@dataclass(frozen=True)
class TrainState:
    """What a progress file says so far. ``status``: starting, training, done or failed (a reader that knows the
    process is gone without either calls it ``ended``)."""

    status: str
    pid: int | None = None
    started: float | None = None
    epochs: tuple[EpochPoint, ...] = ()
    best_map50: float | None = None
    eta_s: float | None = None
    notes: tuple[str, ...] = ()
    result: dict = field(default_factory=dict, hash=False, compare=False)
    error: str = ""
    batch: tuple[int, int, int] | None = None  # (epoch, batch, batches) of the latest progress within an epoch

    @property
    def last(self) -> EpochPoint | None:
        return self.epochs[-1] if self.epochs else None


def read_progress(path: Path | str) -> TrainState:
    """The state a progress file records (``starting`` when it does not exist yet)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return TrainState("starting")
    status, pid, started, best, eta, err = "starting", None, None, None, None, ""
    batch: tuple[int, int, int] | None = None
    points: list[EpochPoint] = []
    notes: list[str] = []
    result: dict = {}
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if not isinstance(e, dict):
            continue
        kind = e.get("event")
        if kind == "start":
            pid, started = e.get("pid"), e.get("t")
        elif kind == "note":
            notes.append(str(e.get("text", "")))
        elif kind == "batch":
            status, batch = "training", (int(e["epoch"]), int(e["batch"]), int(e["batches"]))
            eta = e.get("eta_s") if e.get("eta_s") is not None else eta
        elif kind == "epoch":
            status, batch = "training", None
            points.append(EpochPoint(int(e["epoch"]), int(e["epochs"]), e.get("loss"), e.get("map50"), e.get("t", 0)))
            best, eta = e.get("best_map50"), e.get("eta_s")
        elif kind == "done":
            status, result, eta = "done", e, 0.0
        elif kind == "failed":
            status, err = "failed", str(e.get("error", ""))
    return TrainState(status, pid, started, tuple(points), best, eta, tuple(notes), result, err, batch)
