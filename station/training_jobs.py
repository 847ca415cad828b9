"""Training jobs started from the window: ``inspector train`` in its own process, found again from its folder.

Each job has a folder under ``<data folder>/training/`` holding ``job.json`` (what was asked, the process id and
its start time), ``progress.jsonl`` (``inspector train --progress``), ``train.log`` (its output) and, to cancel,
``stop`` (``inspector train --stop-file``: the same clean stop as Ctrl-C, on every platform). The process is
started without a shell, detached from the window (its own session or process group), so closing the window
does not stop it; re-opening the window reads the folder and shows the job, running or finished.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from inspector.core.clock import format_duration
from inspector.core.errors import ConfigError
from inspector.core.home import data_home
from inspector.training.progress import TrainState, read_progress

log = logging.getLogger(__name__)


def jobs_dir() -> Path:
    return data_home() / "training"


@dataclass(frozen=True)
class JobRequest:
    data: Path
    out: Path
    budget_s: float
    db_url: str
    imgsz: int | None = None
    epochs: int | None = None
    base: str | None = None
    kind: str = "detect"  # or "anomaly": ``data`` is then a folder of pictures of good parts


@dataclass(frozen=True)
class Job:
    """A training job as its folder tells it: the request, the progress, and whether its process still runs."""

    folder: Path
    request: dict = field(hash=False, compare=False)
    started_by: str
    state: TrainState
    alive: bool

    @property
    def status(self) -> str:
        """starting, training, cancelling, done, failed, or ended (the process is gone without a word)."""
        if self.state.status in ("done", "failed"):
            return self.state.status
        if not self.alive:
            return "ended"
        return "cancelling" if (self.folder / "stop").exists() else self.state.status


def command(req: JobRequest, folder: Path) -> list[str]:
    """The training command: the same interpreter, ``-m inspector train``, no shell."""
    cmd = [sys.executable, "-m", "inspector", "train", "--data", str(req.data), "--out", str(req.out),
           "--time-budget", f"{max(1, round(req.budget_s))}s", "--progress", str(folder / "progress.jsonl"),
           "--stop-file", str(folder / "stop"), "--db", req.db_url]
    if req.kind == "anomaly":  # a memory bank of good parts: no epochs, no image size to choose, its own base
        return cmd + ["--kind", "anomaly"]
    if req.imgsz:
        cmd += ["--imgsz", str(req.imgsz)]
    if req.epochs:
        cmd += ["--epochs", str(req.epochs)]
    if req.base:
        cmd += ["--base", req.base]
    return cmd


def start_job(req: JobRequest, started_by: str, root: Path | None = None, env: dict | None = None) -> Job:
    """Start ``inspector train`` for ``req`` in its own process; returns the job (ConfigError for bad input)."""
    from dataclasses import replace

    from db.owner import process_owner

    req = replace(req, data=Path(req.data).resolve(), out=Path(req.out).resolve())
    if not Path(req.data).exists():
        raise ConfigError(f"data set not found: {req.data}")
    if Path(req.out).exists() and any(Path(req.out).iterdir()):
        raise ConfigError(f"{req.out} is not empty: choose a new folder for the model.")
    root = root or jobs_dir()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = root / f"{stamp}-{Path(req.out).name}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{stamp}-{Path(req.out).name}-{n}"
    folder.mkdir(parents=True)
    request = {"data": str(req.data), "out": str(req.out), "budget_s": req.budget_s,
               "budget": format_duration(req.budget_s), "imgsz": req.imgsz, "epochs": req.epochs, "base": req.base,
               "kind": req.kind}
    kw: dict = {}
    if os.name == "nt":  # its own process group, no console window: the window's closing does not reach it
        kw["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
    else:
        kw["start_new_session"] = True
    with open(folder / "train.log", "wb") as logf:
        proc = subprocess.Popen(command(req, folder), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, **kw)
    owner = process_owner(proc.pid)
    info = {"request": request, "started_by": started_by, "pid": proc.pid, "host": owner.host,
            "process_started": owner.started, "created": dt.datetime.now(dt.timezone.utc).isoformat()}
    tmp = folder / "job.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(folder / "job.json")
    _children.append(proc)  # reaped by poll(), so a finished child is no zombie while the window lives
    log.info("training job %s started (pid %d): %s", folder.name, proc.pid, " ".join(command(req, folder)))
    return read_job(folder)


_children: list[subprocess.Popen] = []


def read_job(folder: Path) -> Job:
    """The job in ``folder``, as its files say now."""
    from db.owner import is_gone

    for p in list(_children):
        if p.poll() is not None:
            _children.remove(p)
    try:
        info = json.loads((folder / "job.json").read_text())
    except (OSError, ValueError):
        info = {}
    state = read_progress(folder / "progress.jsonl")
    alive = bool(info) and not is_gone(info.get("host"), info.get("pid"), info.get("process_started"))
    return Job(folder, info.get("request", {}), info.get("started_by", ""), state, alive)


def list_jobs(root: Path | None = None) -> list[Job]:
    """The jobs of this data folder, newest first."""
    root = root or jobs_dir()
    if not root.is_dir():
        return []
    folders = sorted((f for f in root.iterdir() if (f / "job.json").exists()), key=lambda f: f.name, reverse=True)
    return [read_job(f) for f in folders]


def cancel_job(job: Job) -> None:
    """Ask the job to stop cleanly: it validates and keeps the best weights so far, then writes its card."""
    (job.folder / "stop").touch()
