"""The live run as a service for the window: build, start, pause and stop a Station off the GUI thread.

States: idle -> starting (the Station is built on a pool thread: database, model check, source) ->
running <-> paused -> stopping (stop, join, ``finish`` on a pool thread) -> idle. Widgets subscribe to the
signals; nothing here blocks the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal

from inspector.core.config import config_from_dict, load_recipe
from inspector.inspection.runner import RunStats
from inspector.sources.live import CameraState
from ui.bridge import RunnerBridge
from ui.workers import operator_message, run_job

if TYPE_CHECKING:  # the spec is data here; only the composition root (ui/app.py) builds stations
    from inspector.core.day import DayContext
    from station import StationSpec

log = logging.getLogger(__name__)

STATS_INTERVAL_MS = 200
JOIN_TIMEOUT_S = 60.0


class StationLike(Protocol):
    """What the controller needs of ``station.Station``."""

    run_id: int
    model_name: str
    model_sha: str
    runner: Any

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def finish(self, reason: str) -> None: ...

    def stats(self) -> Any: ...  # the runner's RunStats with the outbox's backlog

    def line_status(self) -> dict | None: ...  # the line's connections and figures (None: no line)

    # the plant's day (station.Station): each checked and audited, raising one sentence when refused
    def switch_product(self, name: str, actor: Any = None, base: Any = None) -> DayContext: ...

    def set_lot(self, lot: str, work_order: str, actor: Any = None) -> DayContext: ...

    def acknowledge_alarm(self, alarm_id: int, actor: Any = None) -> str: ...


StationFactory = Callable[..., StationLike]  # (spec, on_committed=, on_error=, on_camera=, on_alarm=) -> Station
AckOffline = Callable[[str, int, Any], str]  # (database URL, alarm id, actor) -> who: for a run that has ended
Denied = Callable[[str], None]  # told (GUI thread) when a day action needs a signed-in user


@dataclass(frozen=True)
class RunInfo:
    """What the screen shows about the run that started."""

    run_id: int
    source: str
    live: bool
    mode: str
    model_name: str
    model_sha: str
    recipe_name: str
    db_url: str
    roi: tuple[float, float, float, float] | None = None
    day: DayContext | None = None  # product, lot, work order in force
    classes: tuple[str, ...] = ()  # the model's classes (the product editor's threshold table)


@dataclass(frozen=True)
class RunEnd:
    reason: str  # "finished", "stopped" or "error: ..."
    stats: RunStats | None


def prepare_spec(spec: StationSpec, recipe_path: Path | None) -> StationSpec:
    """The spec with the chosen recipe file loaded and the whole configuration re-validated (pool thread)."""
    cfg = spec.config
    if recipe_path is not None:
        cfg = cfg.model_copy(update={"recipe": load_recipe(recipe_path)})
        cfg = config_from_dict(cfg.model_dump(mode="python"), str(recipe_path))
    return replace(spec, config=cfg)


class LiveController(QObject):
    state_changed = Signal(str)  # idle, starting, running, paused, stopping
    started = Signal(object)  # RunInfo
    finished = Signal(object)  # RunEnd
    failed = Signal(str)  # one sentence for the operator
    results = Signal(object)  # tuple[LiveResult, ...]
    camera = Signal(object)  # CameraState
    stats = Signal(object)  # RunStats
    line = Signal(object)  # the line's status dict (station.line.LineLink.status()), None without a line
    day = Signal(object)  # DayContext: product, lot, work order in force on the running station
    alarm = Signal(object)  # AlarmEvent raised on the station
    alarm_acked = Signal(int, str)  # alarm id, who acknowledged it

    def __init__(self, station_factory: StationFactory, pool: QThreadPool | None = None,
                 parent: QObject | None = None, ack_offline: AckOffline | None = None) -> None:
        super().__init__(parent)
        self._factory = station_factory
        self._ack_offline = ack_offline
        self._db_url = ""
        self.pool = pool or QThreadPool(self)
        self.pool.setMaxThreadCount(max(2, self.pool.maxThreadCount()))
        self.state = "idle"
        self.station: StationLike | None = None
        self._stop_requested = False
        self._error: str | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(STATS_INTERVAL_MS)
        self._timer.timeout.connect(self._poll)
        self._fit: tuple[int, int] | None = None
        self._bridge: RunnerBridge | None = None

    def set_display_size(self, width: int, height: int) -> None:
        """The canvas size: frames are scaled to it on the runner's thread, not at paint time."""
        self._fit = (width, height)
        if self._bridge is not None:
            self._bridge.fit = self._fit

    # commands (GUI thread) ----------------------------------------------------------------------
    def start(self, spec: StationSpec, recipe_path: Path | None = None) -> bool:
        """Build and start a station off the GUI thread; False if a run is already on."""
        if self.state != "idle":
            return False
        self._stop_requested = False
        self._error = None
        bridge = RunnerBridge()  # lives in the GUI thread; the runner's threads emit its signals
        bridge.fit = self._fit
        queued = Qt.ConnectionType.QueuedConnection
        bridge.results.connect(self.results.emit, queued)
        bridge.camera.connect(self._on_camera, queued)
        bridge.error.connect(self._on_runner_error, queued)
        bridge.alarm.connect(self.alarm.emit, queued)
        self._bridge = bridge
        self._set_state("starting")

        def build() -> tuple[StationLike, RunInfo]:
            ready = prepare_spec(spec, recipe_path)
            station = self._factory(ready, on_committed=bridge.on_committed, on_error=bridge.on_error,
                                    on_camera=bridge.on_camera, on_alarm=bridge.on_alarm)
            try:
                station.start()
            except BaseException:
                station.finish("error: could not start")
                raise
            cfg = ready.config
            info = RunInfo(station.run_id, getattr(station.runner.source, "name", ready.source),
                           bool(getattr(station.runner.source, "live", False)), cfg.run.mode.value,
                           station.model_name, station.model_sha, cfg.recipe.name, ready.db_url, cfg.recipe.roi,
                           getattr(station, "day", None), tuple(getattr(station, "classes", ())))
            return station, info

        run_job(self.pool, build, self._built, self._build_failed, "building the station")
        return True

    def pause(self, paused: bool) -> None:
        if self.station is None or self.state not in ("running", "paused"):
            return
        self.station.runner.pause(paused)
        self._set_state("paused" if paused else "running")

    def stop(self) -> None:
        """Stop reading; what was read is still inspected and written, then the run is closed."""
        if self.state == "starting":
            self._stop_requested = True
        elif self.state in ("running", "paused"):
            self._begin_finish("stopped")

    @property
    def idle(self) -> bool:
        return self.state == "idle"

    # the plant's day (GUI thread; the checks and records run on the pool) ----------------------------
    def switch_product(self, name: str, actor: Any, base: Any, denied: Denied | None = None) -> bool:
        """Switch the running station to product ``name`` (False when no station runs)."""
        return self._day_job(lambda st: st.switch_product(name, actor, base), self.day.emit, denied,
                             f"switching to {name}")

    def set_lot(self, lot: str, work_order: str, actor: Any, denied: Denied | None = None) -> bool:
        return self._day_job(lambda st: st.set_lot(lot, work_order, actor), self.day.emit, denied, "setting the lot")

    def acknowledge_alarm(self, alarm_id: int, actor: Any, denied: Denied | None = None) -> bool:
        """Record who acknowledged the alarm: on the running station, else in the last run's database."""
        station, db_url, offline = self.station, self._db_url, self._ack_offline

        def ack() -> str:
            if station is not None:
                return station.acknowledge_alarm(alarm_id, actor)
            if offline is None or not db_url:
                raise RuntimeError("no database to record the acknowledgement in")
            return offline(db_url, alarm_id, actor)

        run_job(self.pool, ack, lambda who: self.alarm_acked.emit(alarm_id, who),
                lambda e: self._day_failed(e, denied), "acknowledging an alarm")
        return True

    def _day_job(self, act: Callable[[StationLike], Any], done: Callable[[Any], None], denied: Denied | None,
                 doing: str) -> bool:
        station = self.station
        if station is None or self.state not in ("running", "paused"):
            return False
        run_job(self.pool, lambda: act(station), done, lambda e: self._day_failed(e, denied), doing)
        return True

    def _day_failed(self, e: BaseException, denied: Denied | None) -> None:
        from inspector.core.errors import PermissionDenied

        if isinstance(e, PermissionDenied) and denied is not None:
            denied(operator_message(e))
        else:
            self.failed.emit(operator_message(e))

    # pool results (GUI thread) -------------------------------------------------------------------
    def _built(self, built: tuple[StationLike, RunInfo]) -> None:
        self.station, info = built
        self._db_url = info.db_url
        self._set_state("running")
        self.started.emit(info)
        self._timer.start()
        if self._stop_requested:
            self._begin_finish("stopped")

    def _build_failed(self, e: BaseException) -> None:
        self._set_state("idle")
        self.failed.emit(operator_message(e))

    def _begin_finish(self, reason: str) -> None:
        station = self.station
        if station is None or self.state == "stopping":
            return
        self._set_state("stopping")
        self._timer.stop()

        def finish() -> RunEnd:
            station.stop()
            if not station.runner.join(JOIN_TIMEOUT_S):
                log.error("the runner did not stop within %.0f s", JOIN_TIMEOUT_S)
            err = station.runner.error
            why = f"error: {operator_message(err)}" if err is not None else reason
            station.finish(why)
            return RunEnd(why, station.stats())

        run_job(self.pool, finish, self._finished, self._finish_failed, "closing the run")

    def _finished(self, end: RunEnd) -> None:
        self.station = None
        if end.stats is not None:
            self.stats.emit(end.stats)
        self._set_state("idle")
        self.finished.emit(end)

    def _finish_failed(self, e: BaseException) -> None:
        self.station = None
        self._set_state("idle")
        self.failed.emit(f"The run could not be closed properly: {operator_message(e)}")
        self.finished.emit(RunEnd(f"error: {e}", None))

    # runner events (GUI thread, queued) ------------------------------------------------------------
    def _poll(self) -> None:
        station = self.station
        if station is None:
            return
        self.stats.emit(station.stats())
        line_status = getattr(station, "line_status", None)
        self.line.emit(line_status() if line_status is not None else None)
        if not station.runner.running and self.state in ("running", "paused"):
            self._begin_finish("finished")

    def _on_runner_error(self, e: Exception) -> None:
        msg = operator_message(e)
        if msg != self._error:
            self._error = msg
            self.failed.emit(msg)
        self._begin_finish(f"error: {msg}")

    def _on_camera(self, state: CameraState) -> None:
        self.camera.emit(state)
        if state.state == "stopped" and state.reason and state.reason != "closed":
            self.failed.emit(f"Camera stopped: {state.reason}. Check the cable or the address, then start again.")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Wait for pool jobs (used when the application exits)."""
        self._timer.stop()
        self.pool.waitForDone(timeout_ms)
