"""``inspector run`` (headless) and ``inspector`` (the window): same options, same station."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from db.failures import mask_url
from inspector.core.config import Config, load_config, load_recipe
from inspector.core.day import clean_text
from inspector.core.errors import ConfigError, SourceIncomplete
from inspector.core.types import Inspection, Verdict
from inspector.lifecycle.tune import first_start_tune, first_start_wanted
from inspector.sources.live import CameraState
from station import DEFAULT_SOURCE, Station, StationSpec, default_db_url, open_station

log = logging.getLogger(__name__)

EXIT_INCOMPLETE = 3  # the run ended before its source did (a damaged video, a camera that gave up)


def add_source_options(p: argparse.ArgumentParser, for_run: bool = False) -> None:
    default = argparse.SUPPRESS if not for_run else None
    p.add_argument("--source", default=default,
                   help="image folder, video file, camera index (0) or rtsp:// / http:// URL "
                        "(default: the sample images)")
    p.add_argument("--model", default=default, help="model file (.pt/.onnx) or folder (default: the shipped model)")
    p.add_argument("--db", default=default, help="database URL (default: sqlite in the user's data folder)")
    p.add_argument("--config", default=default, help="configuration file (TOML)")
    p.add_argument("--recipe", default=default, help="recipe file (TOML) overriding the configuration's [recipe]")
    p.add_argument("--backend", default=default, choices=["auto", "onnxruntime", "openvino", "ultralytics"],
                   help="inference backend (default: auto, the fastest installed)")
    p.add_argument("--mode", default=default, choices=["part", "stream"],
                   help="part: every frame is a part, none dropped; stream: newest frame wins")
    p.add_argument("--product", default=default, help="a product of the configuration's [products.NAME]: its model "
                                                      "and recipe judge the parts")
    p.add_argument("--lot", default=default, help="the lot the parts belong to (stored on each inspection)")
    p.add_argument("--work-order", default=default, help="the work order (stored on each inspection)")


def register(sub) -> None:
    r = sub.add_parser("run", help="inspect headless: a line per part, a summary at the end")
    add_source_options(r, for_run=True)
    r.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    r.add_argument("--loop", action="store_true", help="repeat a folder or video forever (demos)")
    r.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    r.add_argument("--quiet", action="store_true", help="no line per part")
    r.set_defaults(func=run)


def config_path(a: argparse.Namespace) -> Path | None:
    """--config, else the settings saved from the window (<data folder>/config.toml) if any."""
    from inspector.core.home import data_home

    given = getattr(a, "config", None)
    if given:
        return Path(given)
    saved = data_home() / "config.toml"
    return saved if saved.is_file() else None


def build_config(a: argparse.Namespace) -> Config:
    cfg = load_config(config_path(a))
    upd: dict = {}
    if getattr(a, "recipe", None):
        upd["recipe"] = load_recipe(a.recipe)
    model_upd = {}
    if getattr(a, "model", None):
        model_upd["path"] = Path(a.model)
    if getattr(a, "backend", None):
        model_upd["backend"] = a.backend
    if model_upd:
        upd["model"] = cfg.model.model_copy(update=model_upd)
    if getattr(a, "mode", None):
        upd["run"] = cfg.run.model_copy(update={"mode": a.mode})
    if upd:
        cfg = cfg.model_copy(update=upd)
    # re-validate after the command-line overrides
    from inspector.core.config import config_from_dict

    return config_from_dict(cfg.model_dump(mode="python"), "command line")


def spec_from_args(a: argparse.Namespace) -> StationSpec:
    cfg = build_config(a)
    if getattr(a, "max_frames", None) is not None and a.max_frames < 1:
        raise ConfigError(f"--max-frames = {a.max_frames}: must be at least 1")
    db = getattr(a, "db", None) or cfg.storage.db_url or default_db_url()
    _check_db_folder(db)
    source = getattr(a, "source", None)
    if source is not None and not source.strip():
        raise ConfigError("--source is empty: give an image folder, a video file, a camera index or a URL "
                          "(leave the option out for the sample images).")
    if source is not None and cfg.camera.type.value != "opencv":
        raise ConfigError(f"--source is for [camera] type = \"opencv\"; this configuration's camera is "
                          f"{cfg.camera.type.value!r}: leave --source out to inspect its pictures.")
    product = getattr(a, "product", None) or None
    if product is not None and product not in cfg.products:
        raise ConfigError(f"--product {product!r}: not in [products] of the configuration (defined: "
                          f"{', '.join(sorted(cfg.products)) or 'none'}).")
    try:
        lot, order = clean_text(getattr(a, "lot", None) or "", "lot"), clean_text(
            getattr(a, "work_order", None) or "", "work order")
    except ValueError as e:
        raise ConfigError(f"--lot/--work-order: {e}") from None
    return StationSpec(source or DEFAULT_SOURCE, db, cfg,
                       getattr(a, "max_frames", None), getattr(a, "loop", False), product, lot, order)


def _check_db_folder(url: str) -> None:
    """A database file named in a folder that does not exist (an unmounted share, a typing error) is refused
    rather than made somewhere nobody will look; the default data folder is made as always."""
    from db.failures import sqlite_path

    try:
        path = sqlite_path(url)
    except Exception:  # noqa: BLE001 - a bad address is worded when the database is opened
        return
    if path is None or url == default_db_url():
        return
    folder = path.absolute().parent
    if not folder.is_dir():
        raise ConfigError(f"The database {path} is in a folder that does not exist ({folder}); is a share not "
                          "mounted? Create the folder or correct --db (or storage.db_url).")


def _line(rid: int, insp: Inspection) -> str:
    why = insp.reasons[0] if insp.reasons else ""
    more = f" (+{len(insp.reasons) - 1})" if len(insp.reasons) > 1 else ""
    name = Path(insp.frame_name).name if "/" in insp.frame_name else insp.frame_name
    return f"#{insp.seq + 1:<5} {name[:32]:<32} {insp.verdict.value:<13} {insp.latency_ms:6.1f} ms  {why}{more}"


def run(a: argparse.Namespace) -> int:
    from inspector.cli import catch_stops

    # a stop while the station is being built (model, database, source) is kept and honoured once it stands:
    # the run is closed as "stopped", never left open; a second one (a start-up that hangs) stops at once
    stop_reason = ["finished"]
    built: list[Station] = []

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        if not built:
            if stop_reason[0] == "stopped":
                raise KeyboardInterrupt(signum)
            log.warning("stopping as soon as the station has started (signal %d)", signum)
        stop_reason[0] = "stopped"
        for s in built:
            s.stop()

    catch_stops(on_signal)
    spec = spec_from_args(a)
    lock = threading.Lock()

    def committed(items: list[tuple[int, Inspection]]) -> None:
        if a.quiet:
            return
        with lock:
            for rid, insp in items:
                print(_line(rid, insp), flush=True)

    camera: list[CameraState] = []
    camera_lost: list[str] = []  # why the camera stopped, when it gave up (not closed by the run)

    def on_camera(state: CameraState) -> None:  # the watchdog's state: the log, and the summary's rates
        last = camera[-1] if camera else None
        camera[:] = [state]
        if state.state == "stopped" and state.reason != "closed":
            camera_lost[:] = [f"the camera stopped: {state.reason}"]
        if last is not None and (last.state, last.attempt) == (state.state, state.attempt) \
                and state.stalls != last.stalls:
            log.warning("camera stall: %s", state.health())
        elif state.state == "reconnecting" or (state.state == "stopped" and state.reason != "closed"):
            log.warning("camera %s, attempt %d: %s (%s)", state.state, state.attempt, state.reason, state.health())
        elif last is not None and last.state != state.state:
            log.info("camera %s (%s)", state.state, state.health())

    station = open_station(spec, on_committed=committed, on_camera=on_camera)
    built.append(station)
    tune_due = first_start_wanted(station.model_sha, station.config, station.backend.value)
    if tune_due:
        log.warning("not tuned on this machine for this model yet: this run uses the configuration as it is; when "
                    "it ends, the inference set-ups are measured once for the next start")

    old = signal.getsignal(signal.SIGINT)
    old_term = signal.getsignal(signal.SIGTERM) if hasattr(signal, "SIGTERM") else None
    try:
        if stop_reason[0] == "stopped":  # stopped while starting: the runner never starts
            station.runner.stop()
        station.start()
        last_log = time.monotonic()
        while not station.runner.join(timeout=0.2):
            if time.monotonic() - last_log >= 10:
                last_log = time.monotonic()
                cam = f"; camera {camera[-1].state}, {camera[-1].health()}" if camera else ""
                line = station.line_status()
                cam += f"; line: {line_text(line)}" if line is not None else ""
                log.info("%s mode: %s%s", spec.config.run.mode.value, station.stats().status_line(), cam)
    finally:
        signal.signal(signal.SIGINT, old)
        err = station.runner.error
        if err is None and camera_lost and stop_reason[0] == "finished":
            err = SourceIncomplete(camera_lost[0])
        incomplete = isinstance(err, SourceIncomplete)
        # an incomplete source ends as "error: ... read N of M ..." / "error: the camera stopped: ..."
        station.finish(f"error: {err}" if err else stop_reason[0])
    if err is not None and not incomplete:
        raise err if isinstance(err, Exception) else RuntimeError(str(err))
    if tune_due:
        if old_term is not None:  # a stop during the tune skips it, as Ctrl+C does: the next run tunes
            signal.signal(signal.SIGTERM, _interrupt)
        _tune_for_next_start(station)
    _summary(a, spec, station, camera, str(err) if incomplete else None)
    if incomplete:  # what was read is on record; the run did not see all of its source
        print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_INCOMPLETE
    return 0


def _interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


def _tune_for_next_start(station: Station) -> None:
    """After a model's first run here (ended by itself or stopped, not failed): the short tune, for the next
    start; Ctrl+C or SIGTERM skips it (nothing is recorded, and the next run tunes instead)."""
    try:
        record = first_start_tune(station.model_path, station.model_sha, station.config, station.backend.value)
    except KeyboardInterrupt:
        log.warning("tune skipped: the next run measures the inference set-ups instead")
        return
    chosen = (record or {}).get("chosen")
    if station.tune is not None and chosen:
        station.tune = {**station.tune, "next_start": chosen.get("label")}


def _summary(a: argparse.Namespace, spec: StationSpec, station: Station, camera: list[CameraState],
             incomplete: str | None) -> None:
    st = station.stats()
    c = st.counts
    summary = {"frames": st.inspected, "pass": c[Verdict.PASS.value], "fail": c[Verdict.FAIL.value],
               "review": c[Verdict.REVIEW.value], "not_inspected": c[Verdict.NOT_INSPECTED.value],
               "fps": round(st.fps, 2), "db": mask_url(spec.db_url), "run_id": station.run_id, "skipped": st.skipped,
               "outbox": st.outbox,
               "inference_ms": round(st.inference_ms, 2), "latency_p50_ms": round(st.latency_p50_ms, 1),
               "latency_p99_ms": round(st.latency_p99_ms, 1), "seconds": round(st.elapsed_s, 2),
               # fps = parts committed (rows and images stored) / seconds, from the model loaded and warmed up to
               # the last commit: the 30-line peer script likewise starts its clock after export and warm-up
               "fps_from": "model loaded to last commit (model load and warm-up excluded)",
               "first_verdict_s": None if st.first_verdict_s is None else round(st.first_verdict_s, 2),
               "tune": station.tune}
    if camera:
        cam = camera[-1]
        summary.update(camera_reconnects=cam.reconnects, camera_stalls=cam.stalls,
                       camera_reconnects_per_hour=round(cam.per_hour(cam.reconnects), 2),
                       camera_stalls_per_hour=round(cam.per_hour(cam.stalls), 2),
                       camera_gaps=cam.gaps, camera_gap_s=round(cam.gap_s, 1), camera_dropped=cam.dropped,
                       camera_dropped_s=round(cam.dropped_s, 1))
        if cam.device:  # a GenICam camera: which, and the frames it sent broken or never sent
            summary.update(camera=cam.device, camera_incomplete=cam.incomplete, camera_trigger_timeouts=cam.timeouts)
    if incomplete:
        summary["incomplete"] = incomplete
    line = station.line_status()
    if line is not None:
        summary["line"] = line
    judged = summary["frames"] - summary["not_inspected"]
    yield_txt = f"{100 * summary['pass'] / judged:.1f}%" if judged else "n/a"
    print(f"{summary['frames']} parts: {summary['pass']} pass, {summary['fail']} fail, {summary['review']} review, "
          f"{summary['not_inspected']} not inspected; yield {yield_txt}; {summary['fps']:.1f} parts/s; "
          f"run {station.run_id} in {mask_url(spec.db_url)}", flush=True)
    if st.outbox:
        print(f"outbox: {st.outbox} record(s) wait for the database in {station.outbox.path}; "  # type: ignore
              "the next start on this station sends them", flush=True)
    if camera:
        print(f"camera: {camera[-1].health()}", flush=True)
    if line is not None:
        print(f"line: {line_text(line)}", flush=True)
    if a.json:
        print(json.dumps(summary), flush=True)


def line_text(line: dict) -> str:
    """The line's figures in one line (summary, log)."""
    links = "; ".join(f"{x['name']} {'connected' if x['connected'] else 'DOWN: ' + x['detail']}"
                      for x in line["links"]) or "no links"
    return (f"trigger {line['trigger']}, {line['triggers']} trigger(s), {line['answered']} answered, "
            f"{line['repeats']} repeat(s), {line['missed']} missed, {line['unacknowledged']} unacknowledged; {links}")


def open_window(a: argparse.Namespace) -> int:
    """``inspector`` alone: the desktop app, or one line on how to run headless."""
    from inspector.cli import gui_check

    problem = gui_check.display_problem()
    if problem:
        print(f"error: {problem} Run headless instead: inspector run --source FOLDER|VIDEO|CAMERA|URL", file=sys.stderr)
        return 2
    spec = spec_from_args(a)
    from ui.app import run_app

    return run_app(spec, config_path=getattr(a, "config", None))
