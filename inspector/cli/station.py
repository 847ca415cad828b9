"""Wiring of one inspection station: database, model, source, pipeline, runner.

Shared by the two composition roots (``inspector run`` and the window), so both build the same thing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inspector.config import Config
from inspector.detector import load_detector, pick_model
from inspector.images import ImageStore, orphans
from inspector.pipeline import Pipeline, TimedDetector
from inspector.registry import ModelRegistry, data_home, read_card
from inspector.rules import Recipe
from inspector.runner import Runner
from inspector.sources import CameraState, open_source
from inspector.types import Inspection

log = logging.getLogger(__name__)

DEFAULT_SOURCE = str(Path(__file__).resolve().parents[2] / "sample_images")


def default_db_url() -> str:
    return f"sqlite:///{(data_home() / 'inspections.db').as_posix()}"


def image_base(db_url: str, cfg: Config) -> tuple[Path, str]:
    """(base folder, sub-folder) for saved images: beside a SQLite file unless configured."""
    if cfg.storage.data_dir is not None:
        return Path(cfg.storage.data_dir), ""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        f = Path(db_url[len("sqlite:///"):])
        return f.parent, f"{f.stem}-images"
    return data_home(), "images"


@dataclass(frozen=True)
class StationSpec:
    source: str
    db_url: str
    config: Config
    max_frames: int | None = None
    loop: bool = False


def open_db(url: str):
    """Open (and migrate) the database; returns (engine, session factory). ``reconcile`` cleans up after a crash."""
    from db import open_database, session_factory

    engine = open_database(url)
    sessions = session_factory(engine)
    return engine, sessions


def reconcile(sessions, base: Path, subdir: str, station: str) -> None:
    """After a crash: this station's runs left open are closed as interrupted, and their images that no
    row names (or half-written temporary files) are removed. One station per database writes here."""
    from db import InspectionRepo, RunRepo

    with sessions.begin() as s:
        open_ids = [r.id for r in RunRepo.list(s, limit=100) if r.ended_at is None and r.station == station]
        RunRepo.close_interrupted(s, station=station)
    if not open_ids:
        return
    with sessions() as s:
        known = InspectionRepo.image_paths(s)
    removed = 0
    for run_id in open_ids:
        for f in orphans(base / subdir if subdir else base, f"run-{run_id}", known, base):
            try:
                f.unlink()
                removed += 1
            except OSError:
                log.warning("could not remove orphan image %s", f)
    log.warning("closed %d interrupted run(s); removed %d orphan image file(s)", len(open_ids), removed)


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
                apply_retention(self.sessions, self.base, self.subdir, self.cap_bytes)
        return ids


class Station:
    """One run: everything built and checked before the first frame, so errors come early."""

    def __init__(self, spec: StationSpec, on_committed: Callable[[list[tuple[int, Inspection]]], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 on_camera: Callable[[CameraState], None] | None = None,
                 registry: ModelRegistry | None = None) -> None:
        from db import DbWriter, ModelRepo, RunRepo

        cfg = spec.config
        self.spec = spec
        self.registry = registry or ModelRegistry()
        # the model: resolved and its hash checked here, loaded on the inference thread
        self.model_path, self.backend = pick_model(cfg.model)
        self.model_sha = self.registry.check(self.model_path)
        card = read_card(self.model_path)
        self.config = cfg
        self.recipe = Recipe(cfg.recipe)
        if card.get("classes"):
            self.recipe.check_classes(list(card["classes"]), self.model_path.name)
        self.source = open_source(spec.source, cfg.camera, spec.loop, on_camera)
        try:
            self.engine, self.sessions = open_db(spec.db_url)
        except Exception:
            self.source.close()
            raise
        self.base, self.subdir = image_base(spec.db_url, cfg)
        reconcile(self.sessions, self.base, self.subdir, cfg.run.station)
        with self.sessions.begin() as s:
            mv = ModelRepo.get_or_create(s, self.model_path.parent.name if self.model_path.parent.name != "models"
                                         else self.model_path.stem, str(self.model_path), self.model_sha,
                                         list(card.get("classes", [])))
            run = RunRepo.start(s, self.source.name, json.dumps(cfg.recipe.model_dump(mode="json")),
                                cfg.recipe.name, mv.id, cfg.run.station, cfg.run.mode.value)
        self.run_id = run.id
        self.model_name = mv.name
        store = ImageStore(self.base, self.subdir, cfg.storage.save_images, cfg.storage.jpeg_quality, f"run-{run.id}",
                           cfg.storage.keep_pass_fraction)
        self.writer = RetainingWriter(DbWriter(self.sessions, run.id, store), self.sessions, self.base, self.subdir,
                                      int(cfg.storage.max_images_mb * 1e6))
        model_cfg = cfg.model.model_copy(update={"path": self.model_path})
        def pipeline() -> Pipeline:
            detector = load_detector(model_cfg, self.recipe.detector_floor, self.registry)
            self.recipe.check_classes(detector.classes, self.model_path.name)
            return Pipeline(TimedDetector(detector, cfg.model.timeout_s), self.recipe, cfg.quality,
                            cfg.quality.min_side_px or cfg.model.imgsz // 4)

        self.runner = Runner(self.source, pipeline,
                             self.writer, cfg.run.mode, cfg.run.queue_size, spec.max_frames, on_committed, on_error)
        self._ended = False

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()

    def finish(self, reason: str) -> None:
        """Record how the run ended (once)."""
        if self._ended:
            return
        from db import RunRepo

        self._ended = True
        try:
            with self.sessions.begin() as s:
                RunRepo.end(s, self.run_id, reason)
        finally:
            self.engine.dispose()

