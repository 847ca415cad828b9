"""Health of the line: frames/s, inference time, model and version, camera state, run mode, skipped frames."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QWidget

from inspector.inspection.runner import RunStats
from inspector.sources.live import CameraState
from ui import theme
from ui.controller import RunInfo

ROWS = (("state", "Run"), ("fps", "Frames/s"), ("inference", "Inference"), ("latency", "Latency p50/p99"),
        ("setup", "Inference setup"), ("model", "Model"), ("camera", "Camera"), ("mode", "Mode"),
        ("skipped", "Skipped"), ("outbox", "Waiting for DB"), ("source", "Source"))

STATE_TEXT = {"idle": "stopped", "starting": "starting…", "running": "running", "paused": "paused",
              "stopping": "stopping…"}
OK, WARN, BAD = "#3ccf6e", "#f2a900", "#e5484d"


def camera_text(state: CameraState) -> tuple[str, str]:
    """The line the operator reads for a camera state, and its colour."""
    counts = f"\n{state.health()}" if state.reconnects or state.stalls or state.gaps or state.dropped \
        or state.incomplete or state.timeouts else ""
    if state.device:  # a GenICam camera: model (serial) and its frame rate
        counts = f"\n{state.device}, {state.fps:.1f} frames/s{counts}"
    if state.state == "running":
        return f"running{counts}", OK
    if state.state == "reconnecting":
        return f"reconnecting, attempt {state.attempt} ({state.reason}){counts}", WARN
    if state.state == "stopped":
        colour = BAD if state.reason != "closed" else theme.MUTED
        return f"stopped: {state.reason or 'no reason given'}{counts}", colour
    return f"{state.state}…", WARN


class RowsPanel(QFrame):
    """A titled panel of caption/value rows (``rows``: key, caption); values elide nothing, they wrap."""

    def __init__(self, title_text: str, rows, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("panel")
        grid = QGridLayout(self)
        grid.setContentsMargins(12, 8, 12, 10)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(5)
        title = QLabel(title_text)
        title.setObjectName("panelTitle")
        grid.addWidget(title, 0, 0, 1, 2)
        self.values: dict[str, QLabel] = {}
        for i, (key, caption) in enumerate(rows, start=1):
            cap = QLabel(caption)
            cap.setStyleSheet(f"color: {theme.MUTED}; background: transparent;")
            val = QLabel("–")
            val.setStyleSheet("background: transparent;")
            val.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            val.setWordWrap(True)
            val.setTextFormat(Qt.TextFormat.PlainText)
            grid.addWidget(cap, i, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(val, i, 1)
            self.values[key] = val
        grid.setColumnStretch(1, 1)


class HealthPanel(RowsPanel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("HEALTH", ROWS, parent)
        self._camera: CameraState | None = None
        self.set_value("camera", "– (file source)")
        self.set_value("state", "stopped")

    def set_value(self, key: str, text: str, colour: str | None = None) -> None:
        label = self.values[key]
        label.setText(text)
        label.setToolTip(text)
        label.setStyleSheet(f"background: transparent; color: {colour or theme.TEXT};")

    def value(self, key: str) -> str:
        return self.values[key].text()

    def show_state(self, state: str) -> None:
        if state == "starting":
            self._camera = None
        colour = {"running": OK, "paused": WARN, "starting": WARN, "stopping": WARN}.get(state, theme.MUTED)
        self.set_value("state", STATE_TEXT.get(state, state), colour)

    def show_starting(self) -> None:
        """A new start: nothing of the previous run is left on screen."""
        for key in ("fps", "inference", "latency", "setup", "skipped", "outbox", "mode", "source"):
            self.set_value(key, "–")
        self.set_value("model", "checking…", WARN)
        self.set_value("camera", "–")

    def show_not_ready(self) -> None:
        """The station could not be built (refused model, camera that does not open): no model runs."""
        self.set_value("model", "not loaded", BAD)
        if self._camera is None:
            self.set_value("camera", "–")

    def show_run(self, info: RunInfo) -> None:
        self._model = (info.model_name, info.model_sha)
        self.set_value("model", f"{info.model_name} · {info.model_sha[:12]}")
        self.set_value("mode", f"{info.mode} · recipe {info.recipe_name}")
        self.set_value("source", short(info.source))
        self.values["source"].setToolTip(info.source)
        if not info.live:
            self.set_value("camera", "– (file source)")
        elif self._camera is None:  # the camera reports while the station is built, before this
            self.set_value("camera", "connecting…", WARN)
        self.set_value("skipped", "0")

    def show_model(self, sha: str) -> None:
        """The model that judged the newest part: after a promotion, another than the run started with."""
        name, started = getattr(self, "_model", ("", ""))
        if sha and sha != started:
            self.set_value("model", f"promoted · {sha[:12]}", WARN)
        elif sha:
            self.set_value("model", f"{name} · {sha[:12]}")

    def show_stats(self, st: RunStats) -> None:
        self.set_value("fps", f"{st.fps:.1f}  (camera {st.camera_fps:.1f})")
        self.set_value("inference", f"{st.inference_ms:.1f} ms")
        self.set_value("latency", f"{st.latency_p50_ms:.0f} / {st.latency_p99_ms:.0f} ms")
        if st.setup:
            self.set_value("setup", st.setup)
        self.set_value("skipped", f"{st.skipped:,}", WARN if st.skipped else None)
        self.set_value("outbox", f"{st.outbox:,} in the outbox" if st.outbox else "0", WARN if st.outbox else None)
        if st.record_blocked_s:  # the record does not answer: parts wait, the station is not ready
            self.set_value("outbox", f"BLOCKED {st.record_blocked_s:.0f} s: not ready", BAD)

    def show_camera(self, state: CameraState) -> None:
        last = self._camera
        if state.state == "stopped" and state.reason == "closed" and last is not None and last.state == "stopped":
            return  # closing a camera that gave up: keep the reason it gave up
        self._camera = state
        text, colour = camera_text(state)
        self.set_value("camera", text, colour)


def short(path: str, n: int = 38) -> str:
    return path if len(path) <= n else "…" + path[-(n - 1):]
