"""The station's time zone: one zone for every time a person reads (the window, the PDF/HTML reports), named
where it is shown. Times are stored in UTC; machine formats (CSV, JSON) stay ISO 8601 with their offset."""

from __future__ import annotations

import datetime as dt


def station_time(t: dt.datetime, seconds: bool = False) -> str:
    """``t`` (aware) in the station's zone, as ``2026-11-30 06:05``."""
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def zone_text(at: dt.datetime | None = None) -> str:
    """The station's zone as people read it: ``UTC+01:00 (CET)``, ``UTC`` where the station runs on UTC."""
    local = (at or dt.datetime.now(dt.timezone.utc)).astimezone()
    off = local.utcoffset() or dt.timedelta(0)
    name = local.tzname() or ""
    if off == dt.timedelta(0) and name in ("UTC", "GMT", ""):
        return "UTC"
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h:02d}:{m:02d}" + (f" ({name})" if name and not name.startswith(("+", "-")) else "")


def format_duration(seconds: float) -> str:
    """A duration as a person reads it: 1h2m3s, 45s."""
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s or not (h or m) else "")
