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

from inspector.config import config_from_dict, load_recipe
from inspector.runner import RunStats
from inspector.sources import CameraState
from ui.bridge import RunnerBridge
from ui.workers import operator_message, run_job

if TYPE_CHECKING:  # the spec is data here; only the composition root (ui/app.py) builds stations
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


StationFactory = Callable[..., StationLike]  # (spec, on_committed=, on_error=, on_camera=) -> Station


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

    def __init__(self, station_factory: StationFactory, pool: QThreadPool | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = station_factory
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
        self._bridge = bridge
        self._set_state("starting")

        def build() -> tuple[StationLike, RunInfo]:
            ready = prepare_spec(spec, recipe_path)
            station = self._factory(ready, on_committed=bridge.on_committed, on_error=bridge.on_error,
                                    on_camera=bridge.on_camera)
            try:
                station.start()
            except BaseException:
                station.finish("error: could not start")
                raise
            cfg = ready.config
            info = RunInfo(station.run_id, getattr(station.runner.source, "name", ready.source),
                           bool(getattr(station.runner.source, "live", False)), cfg.run.mode.value,
                           station.model_name, station.model_sha, cfg.recipe.name, ready.db_url, cfg.recipe.roi)
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

    # pool results (GUI thread) -------------------------------------------------------------------
    def _built(self, built: tuple[StationLike, RunInfo]) -> None:
        self.station, info = built
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
