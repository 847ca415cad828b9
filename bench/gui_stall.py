"""How long can the window's event loop stall while the line runs at full speed?

Opens the real window (offscreen unless a display is asked for), plays the sample images in a loop
through the real Station for N seconds, and measures the gaps between ticks of a 5 ms heartbeat
timer. Prints the worst and the 99th-percentile gap; with --json, a JSON object on the last line.
For scale, the same heartbeat is first measured for a moment with the window open and the line idle
(on a loaded machine the idle figures show what the operating system alone costs).

    python bench/gui_stall.py --model /tmp/ui/tiny/tiny.pt --seconds 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inspector.core.privacy import guard_process  # noqa: E402 - the project root is on sys.path first

HEARTBEAT_MS = 5


def gap_figures(ticks: list[float]) -> tuple[list[float], float, float, float]:
    """Sorted gaps between ticks (ms), the worst, the 99th percentile and the median."""
    gaps = sorted((b - t) * 1000 for t, b in zip(ticks, ticks[1:], strict=False))
    if not gaps:
        return gaps, 0.0, 0.0, 0.0
    return gaps, gaps[-1], gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))], gaps[len(gaps) // 2]


def main(argv: list[str] | None = None) -> int:
    guard_process()  # the offline guard: nothing this benchmark runs may call out
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=15.0, help="how long the line runs (default 15)")
    p.add_argument("--model", default=None, help="model file or folder (default: the shipped model)")
    p.add_argument("--source", default=None, help="source (default: the sample images, looped)")
    p.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    p.add_argument("--mode", choices=["part", "stream"], default="part")
    p.add_argument("--threads", type=int, default=0, help="inference threads (default 0: the runtime chooses)")
    p.add_argument("--idle-seconds", type=float, default=2.0, help="baseline with the line idle (default 2)")
    p.add_argument("--display", action="store_true", help="use the real display instead of offscreen")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    a = p.parse_args(argv)
    if not a.display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("YOLO_OFFLINE", "1")

    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from inspector.core.config import Config, config_from_dict
    from station import DEFAULT_SOURCE, StationSpec
    from ui.app import build_window, drop_foreign_qt_plugins
    from ui.theme import apply_theme

    drop_foreign_qt_plugins()
    tmp = tempfile.mkdtemp(prefix="gui-stall-")
    db = a.db or f"sqlite:///{Path(tmp, 'stall.db').as_posix()}"
    data = Config().model_dump(mode="python")
    data["run"]["mode"] = a.mode
    data["model"]["threads"] = a.threads
    if a.model:
        data["model"]["path"] = Path(a.model)
    spec = StationSpec(a.source or DEFAULT_SOURCE, db, config_from_dict(data, "bench"), loop=True)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app)
    window = build_window(spec)
    window.resize(1600, 1000)
    window.show()
    ticks: list[float] = []
    idle_ticks: list[float] = []
    stats: dict = {}
    heartbeat = QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    idle_beat = QTimer()
    idle_beat.setTimerType(Qt.TimerType.PreciseTimer)
    idle_beat.setInterval(HEARTBEAT_MS)
    idle_beat.timeout.connect(lambda: idle_ticks.append(time.perf_counter()))
    errors: list[str] = []
    ctl = window.controller
    ctl.failed.connect(errors.append)
    ctl.stats.connect(lambda st: stats.update(inspected=st.inspected, fps=st.fps))

    def first_result(_results) -> None:  # measure from the first part on: model loading is not the line
        if not heartbeat.isActive():
            heartbeat.start()
            QTimer.singleShot(int(a.seconds * 1000), stop)

    def stop() -> None:
        heartbeat.stop()
        window.close()  # the real closing path: stop, join, finish

    ctl.results.connect(first_result)
    ctl.state_changed.connect(lambda s: s == "idle" and ticks and QTimer.singleShot(0, app.quit))
    ctl.state_changed.connect(lambda s: s == "idle" and errors and not ticks and app.quit())
    def start() -> None:
        idle_beat.stop()
        window.start()

    idle_beat.start()
    QTimer.singleShot(int(a.idle_seconds * 1000), start)
    app.exec()
    ctl.shutdown()
    if errors and not ticks:
        print(f"error: {errors[0]}", file=sys.stderr)
        return 2
    gaps, worst, p99, median = gap_figures(ticks)
    _, idle_worst, idle_p99, _ = gap_figures(idle_ticks)
    paints = window.live.canvas.paints
    print(f"line idle    ({a.idle_seconds:g} s): worst gap {idle_worst:.1f} ms, p99 {idle_p99:.1f} ms")
    print(f"line running ({a.seconds:g} s, {len(gaps)} heartbeats of {HEARTBEAT_MS} ms): worst gap {worst:.1f} ms, "
          f"p99 {p99:.1f} ms, median {median:.1f} ms")
    print(f"{stats.get('inspected', 0)} parts inspected ({stats.get('fps', 0):.1f}/s), {paints} frame paints, "
          f"mode {a.mode}, database {db}")
    if a.json:
        print(json.dumps({"worst_gap_ms": round(worst, 2), "p99_gap_ms": round(p99, 2),
                          "median_gap_ms": round(median, 2), "idle_worst_gap_ms": round(idle_worst, 2),
                          "idle_p99_gap_ms": round(idle_p99, 2),
                          "heartbeats": len(gaps), "inspected": stats.get("inspected", 0),
                          "fps": round(stats.get("fps", 0.0), 2), "paints": paints, "seconds": a.seconds,
                          "mode": a.mode}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
