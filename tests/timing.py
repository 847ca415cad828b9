"""Bounds on time in the tests, for a machine that is shared.

A test that checks a promise about time ("answered at once", "p99 under 150 ms") states its bound for a station PC
with the CPU to itself. The suite also runs on a 2-core machine at a load average of 6 to 12, where every thread
waits its turn several times over; there the bound grows with the contention measured when it is checked, never
shrinks. A deadline on a wait for an event is not such a bound: it only stops a test that would hang.
(``tests/db/test_writes_while_line_runs.py`` measures its slowdown instead, by timing a password hash.)
"""

from __future__ import annotations

import os

CAP = 8.0  # a load of 16 on 2 cores; beyond that a test is measuring the machine, not the product


def contention() -> float:
    """How many times over the CPU is asked for now: the 1-minute load average per core, between 1 and ``CAP``
    (1 where the platform has no load average)."""
    try:
        return max(1.0, min(CAP, os.getloadavg()[0] / (os.cpu_count() or 1)))
    except (AttributeError, OSError):
        return 1.0


def loose(bound: float) -> float:
    """``bound`` (seconds or milliseconds) on an idle machine, stretched by the contention now."""
    return bound * contention()
