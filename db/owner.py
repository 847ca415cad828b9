"""Which process owns an open run, and whether that process is provably gone (on any platform).

A run records its host name, process id and the process's start time. A run is closed as interrupted only when
it was started on this host and no process with that id and start time is running now: a reused id has another
start time. Without psutil (an Ultralytics dependency, so normally present) a process's start time cannot be
read portably, and a run of this host is then treated as still alive (left open, never wrongly closed).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

log = logging.getLogger(__name__)

START_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: float | None


def this_process() -> Owner:
    return Owner(socket.gethostname(), os.getpid(), _start_time(os.getpid()))


def process_owner(pid: int) -> Owner:
    """The owner record of another process of this host (a child this process started, say)."""
    return Owner(socket.gethostname(), pid, _start_time(pid))


def _start_time(pid: int) -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def is_gone(host: str | None, pid: int | None, started: float | None) -> bool:
    """True when the process that owned a run has provably ended; False when it may still be running.

    A run with no owner recorded (written before schema 0002) counts as gone, as it did then.
    """
    if pid is None:
        return True
    if host != socket.gethostname():
        return False  # another machine's process cannot be checked from here
    if pid == os.getpid():
        return False
    try:
        import psutil
    except ImportError:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        now_started = proc.create_time()
    except psutil.NoSuchProcess:
        return True
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return started is not None and abs(now_started - started) > START_TOLERANCE_S
