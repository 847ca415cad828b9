"""Wiring of one inspection station: database, model, source, pipeline, runner.

Shared by the two composition roots (``inspector run`` and the window), so both build the same thing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inspector.config import Config, RecipeConfig
from inspector.detector import load_detector, pick_model
from inspector.errors import StorageError
from inspector.images import ImageStore, orphans
from inspector.pipeline import Pipeline, TimedDetector
from inspector.registry import ModelRegistry, data_home, read_card, recipe_sha256
from inspector.rules import Recipe
from inspector.runner import Runner, RunStats
from inspector.sources import CameraState, open_source
from inspector.types import Inspection

log = logging.getLogger(__name__)

DEFAULT_SOURCE = str(Path(__file__).resolve().parents[1] / "sample_images")


def default_db_url() -> str:
    return f"sqlite:///{(data_home() / 'inspections.db').as_posix()}"


def image_base(db_url: str, cfg: Config) -> tuple[Path, str]:
    """(base folder, sub-folder) for saved images: beside a SQLite file unless configured. Image paths in the
    database are relative to the base; a run writes under ``image_namespace`` inside the sub-folder."""
    if cfg.storage.data_dir is not None:
        return Path(cfg.storage.data_dir), ""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        f = Path(db_url[len("sqlite:///"):])
        return f.parent, f"{f.stem}-images"
    return data_home(), "images"


def station_folder(station: str) -> str:
    """A folder name for a station name (any characters a file system may refuse become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", station).strip("._") or "station"


def image_namespace(sessions, subdir: str, station: str) -> str:
    """``<subdir>/<database id>/<station>``: two databases (or stations) never share an image folder."""
    from db.repositories.runs import database_id
    from db.writes import write

    ns = f"{write(sessions, database_id, 'Reading the database identity')}/{station_folder(station)}"
    return f"{subdir}/{ns}" if subdir else ns


@dataclass(frozen=True)
class StationSpec:
    source: str
    db_url: str
    config: Config
    max_frames: int | None = None
    loop: bool = False
    # a model's first start on this machine runs the short tune first (``model.autotune``): headless runs
    # only; the window starts at once as configured and shows that ``inspector tune`` has not run
    first_start_tune: bool = False


def open_db(url: str):
    """Open (and migrate) the database; returns (engine, session factory). ``reconcile`` cleans up after a crash."""
    from db import open_database, session_factory

    engine = open_database(url)
    sessions = session_factory(engine)
    return engine, sessions


def reconcile(sessions, base: Path, subdir: str, station: str, waiting: set[str] = frozenset()) -> None:
    """After a crash: this station's runs whose process is provably gone are closed as interrupted, and their
    images that no row names (nor an outbox entry, ``waiting``) are removed, or half-written temporary files.
    ``subdir`` is this database's and station's own namespace, so no other database's file is touched."""
    from db import InspectionRepo, RunRepo
    from db.writes import write

    open_ids = write(sessions, lambda s: RunRepo.close_interrupted(s, station=station), "Closing interrupted runs")
    if not open_ids:
        return
    with sessions() as s:
        known = InspectionRepo.image_paths(s) | set(waiting)
    removed = 0
    for run_id in open_ids:
        for f in orphans(base / subdir if subdir else base, f"run-{run_id}", known, base):
            try:
                f.unlink()
                removed += 1
            except OSError:
                log.warning("could not remove orphan image %s", f)
    log.warning("closed %d interrupted run(s); removed %d orphan image file(s)", len(open_ids), removed)


def station_trust(sessions, cfg: Config, registry: ModelRegistry | None = None) -> tuple[ModelRegistry, str]:
    """The models this station's database trusts, and the recipe's hash (PermissionDenied for a recipe that
    is not registered once the station has users)."""
    from db import TrustRepo
    from db.writes import write

    sha = recipe_sha256(cfg.recipe.model_dump(mode="json"))
    default = recipe_sha256(RecipeConfig().model_dump(mode="json"))
    write(sessions, lambda s: TrustRepo.allow_recipe(s, sha, cfg.recipe.name, default), "Checking the recipe")
    return registry or trusted_models(sessions), sha


def trusted_models(sessions) -> ModelRegistry:
    """The shipped models and those this station's database trusts (sealed rows only)."""
    from db import TrustRepo
    from db.writes import write

    return ModelRegistry(write(sessions, lambda s: TrustRepo.trusted(s, "model"), "Reading the trusted models"))


class RetainingWriter:
    """The run's writer, enforcing the image size cap every ``every`` parts, on the writer thread."""

    def __init__(self, inner, sessions, base: Path, subdir: str, cap_bytes: int, every: int = 500) -> None:
        self.inner, self.sessions, self.base, self.subdir = inner, sessions, base, subdir
        self.cap_bytes, self.every = cap_bytes, every
        self._since = every if cap_bytes > 0 else 0  # check once at the first batch

    def write_batch(self, inspections: list[Inspection]) -> list[int]:
        ids = self.inner.write_batch(inspections)
        if self.cap_bytes > 0:
            self._since += len(inspections)
            if self._since >= self.every:
                from db.retention import apply_retention

                self._since = 0
                outbox = self.inner.outbox
                waiting = outbox.image_paths() if outbox is not None and outbox.size() else set()
                apply_retention(self.sessions, self.base, self.subdir, self.cap_bytes, waiting=waiting)
        return ids


class Station:
    """One run: everything built and checked before the first frame, so errors come early."""

    def __init__(self, spec: StationSpec, on_committed: Callable[[list[tuple[int, Inspection]]], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 on_camera: Callable[[CameraState], None] | None = None,
                 registry: ModelRegistry | None = None) -> None:
        from db import DbWriter

        cfg = spec.config
        self.spec = spec
        self.model_path, self.backend = pick_model(cfg.model)
        self.config = cfg
        self.recipe = Recipe(cfg.recipe)
        card = read_card(self.model_path)
        if card.get("classes"):
            self.recipe.check_classes(list(card["classes"]), self.model_path.name)
        self.engine, self.sessions = open_db(spec.db_url)
        try:
            # trust: the model's hash and the recipe checked against this station's database, before any load
            self.registry, self.recipe_sha = station_trust(self.sessions, cfg, registry)
            self.model_sha = self.registry.check(self.model_path)
            self.line = self._line(cfg)
            if self.line is not None:
                on_camera = self._camera_to_line(on_camera)
                on_committed = self._committed_to_line(on_committed)
            self.source = open_source(spec.source, cfg.camera, spec.loop, on_camera)
        except Exception:
            self.engine.dispose()
            raise
        try:
            self._prepare_storage(spec, card)
        except Exception:
            self.source.close()
            self.engine.dispose()
            raise
        store = ImageStore(self.base, self.subdir, cfg.storage.save_images, cfg.storage.jpeg_quality,
                           f"run-{self.run_id}", cfg.storage.keep_pass_fraction)
        self.db_writer = DbWriter(self.sessions, self.run_id, store, self.outbox, recipe_sha256=self.recipe_sha)
        self.writer = RetainingWriter(self.db_writer, self.sessions, self.base, self.subdir,
                                      int(cfg.storage.max_images_mb * 1e6))
        model_cfg = cfg.model.model_copy(update={"path": self.model_path})
        def pipeline() -> Pipeline:
            from inspector.tune_measure import first_start_tune

            if spec.first_start_tune:
                first_start_tune(self.model_path, self.model_sha, cfg, self.backend.value)
            detector = load_detector(model_cfg, self.recipe.detector_floor, self.registry)
            self.recipe.check_classes(detector.classes, self.model_path.name)
            self.tune = {**(getattr(detector, "tune", None) or {"status": "not tunable (the ultralytics backend)"}),
                         "running": {"backend": getattr(detector, "backend", "ultralytics"),
                                     "precision": getattr(detector, "precision", "f32"),
                                     "threads": getattr(detector, "threads", 0),
                                     "streams": getattr(detector, "streams", 1)}}
            decode_for = getattr(self.source, "decode_for", None)
            if decode_for is not None and getattr(detector, "input_hw", None):  # a folder's JPEGs at the model's scale
                decode_for(tuple(detector.input_hw))
            return Pipeline(TimedDetector(detector, cfg.model.timeout_s), self.recipe, cfg.quality,
                            cfg.quality.min_side_px or cfg.model.imgsz // 4)

        self.runner = Runner(self.source, pipeline,
                             self.writer, cfg.run.mode, cfg.run.queue_size, spec.max_frames, on_committed, on_error,
                             desk=self.line.desk if self.line is not None else None)
        self._ended = False
        self.tune: dict | None = None  # the inference configuration chosen for this machine, once the model is loaded

    def _line(self, cfg: Config):
        """The line's links from ``[line]`` (None when there are none and nothing triggers)."""
        from station.line import LineLink

        if cfg.line.trigger.value == "none" and not any((cfg.line.mqtt, cfg.line.opcua, cfg.line.modbus)):
            return None
        return LineLink(cfg, self.model_sha)

    def _camera_to_line(self, on_camera):
        line = self.line

        def camera(state: CameraState) -> None:
            line.camera(state)
            if on_camera is not None:
                on_camera(state)
        return camera

    def _committed_to_line(self, on_committed):
        line = self.line

        def committed(items: list[tuple[int, Inspection]]) -> None:
            line.on_committed(items)  # the PLC first: it is waiting
            if on_committed is not None:
                on_committed(items)
        return committed

    def line_status(self) -> dict | None:
        """The line's connections and figures (None without a line)."""
        return self.line.status() if self.line is not None else None

    def _prepare_storage(self, spec: StationSpec, card: dict) -> None:
        """The image namespace, the outbox (a database server only), the backlog of an earlier run forwarded,
        the clean-up after a crash, and this run's row; every write retried, every failure one sentence."""
        from db import AuditRepo, ModelRepo, RunRepo
        from db.failures import mask_url, sqlite_path
        from db.outbox import Outbox
        from db.writes import write

        cfg = spec.config
        self.base, legacy = image_base(spec.db_url, cfg)
        self.subdir = image_namespace(self.sessions, legacy, cfg.station_name)
        self.outbox = None if sqlite_path(spec.db_url) is not None or spec.db_url.startswith("sqlite") \
            else Outbox(self.base / f"{self.subdir}.outbox" / "outbox.sqlite")  # beside the images, not among them
        waiting: set[str] = set()
        if self.outbox is not None and self.outbox.size():
            try:
                self.outbox.forward(self.sessions)
            except Exception as e:  # noqa: BLE001 - the backlog stays and goes with this run's writes
                log.warning("the outbox %s could not be forwarded yet (%s); %d record(s) wait",
                            self.outbox.path, type(e).__name__, self.outbox.size())
            waiting = self.outbox.image_paths()
        reconcile(self.sessions, self.base, self.subdir, cfg.station_name, waiting)
        name = self.model_path.parent.name if self.model_path.parent.name != "models" else self.model_path.stem
        recipe = json.dumps(cfg.recipe.model_dump(mode="json"))

        def start(s) -> tuple[int, str]:
            mv = ModelRepo.get_or_create(s, name, str(self.model_path), self.model_sha, list(card.get("classes", [])))
            run = RunRepo.start(s, mask_url(self.source.name), recipe, cfg.recipe.name, mv.id, cfg.station_name,
                                cfg.run.mode.value)
            AuditRepo.append(s, actor=f"station:{cfg.station_name}", action="run.start", target=f"run:{run.id}",
                             detail={"model_sha256": self.model_sha, "recipe_sha256": self.recipe_sha,
                                     "recipe": cfg.recipe.name})
            return run.id, mv.name

        self.run_id, self.model_name = write(self.sessions, start, "Starting the run")

    def start(self) -> None:
        if self.line is not None:
            self.line.start(self.runner)
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()

    def backlog(self) -> int:
        """Records waiting in the outbox for the database server (0 for SQLite)."""
        return self.db_writer.backlog()

    def stats(self) -> RunStats:
        """The runner's figures, with the outbox's backlog."""
        from inspector.tune import setup_text

        return dataclasses.replace(self.runner.stats(), outbox=self.backlog(), setup=setup_text(self.tune))

    def finish(self, reason: str, forward_wait_s: float = 15.0) -> None:
        """Record how the run ended (once). A backlog is forwarded first (for up to ``forward_wait_s``); while
        the server stays away the end waits in the outbox too, and the next start forwards it.

        Raises StorageError (one sentence) when the end cannot be recorded, saying what happens to the run.
        """
        if self._ended:
            return
        import datetime as dt
        import time

        from db import RunRepo
        from db.outbox import unreachable
        from db.writes import write

        self._ended = True
        if self.line is not None:  # the PLC hears at once that this station no longer inspects
            self.line.close("stopped" if not reason.startswith("error") else reason[:200])
        try:
            deadline = time.monotonic() + forward_wait_s
            while not self.db_writer.forward(force=True) and time.monotonic() < deadline:
                time.sleep(1.0)
            if self.backlog():
                self.outbox.put_end(self.run_id, reason, dt.datetime.now(dt.timezone.utc))  # type: ignore[union-attr]
                log.warning("run %d: %d record(s) wait in the outbox %s for the database; the next start on this "
                            "station sends them", self.run_id, self.backlog(), self.outbox.path)  # type: ignore
                return
            try:
                write(self.sessions, lambda s: RunRepo.end(s, self.run_id, reason), f"Ending run {self.run_id}")
            except StorageError as e:
                if self.outbox is not None and unreachable(e):
                    self.outbox.put_end(self.run_id, reason, dt.datetime.now(dt.timezone.utc))
                    return
                raise StorageError(f"{e} Run {self.run_id} stays open; the next start on this station closes it "
                                   "as interrupted.") from e
        finally:
            self.engine.dispose()

