"""Wiring of one inspection station: database, model, source, pipeline, runner.

Shared by the two composition roots (``inspector run`` and the window), so both build the same thing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inspector.core.alarms import Alarm
from inspector.core.auth import Actor, Role
from inspector.core.config import Config, RecipeConfig
from inspector.core.day import DayContext, Shifts, check_expected, product_config
from inspector.core.errors import StorageError
from inspector.core.home import data_home
from inspector.core.images import ImageStore, orphans
from inspector.core.types import Inspection
from inspector.detection.card import ModelCard, load_card
from inspector.detection.detector import load_detector, pick_model
from inspector.detection.registry import ModelRegistry, recipe_sha256
from inspector.detection.tiling import TiledDetector, recipe_tiling, tiled_for_recipe
from inspector.inspection.pipeline import Pipeline, TimedDetector
from inspector.inspection.rules import Recipe
from inspector.inspection.runner import Runner, RunStats
from inspector.sources.live import CameraState
from inspector.sources.opening import open_source
from station.day import AlarmDesk, acting, recipe_hash
from station.records import image_namespace, run_proof, trusted_models

log = logging.getLogger(__name__)

DEFAULT_SOURCE = str(Path(__file__).resolve().parents[1] / "sample_images")


def default_db_url() -> str:
    return f"sqlite:///{(data_home() / 'inspections.db').as_posix()}"


def image_base(db_url: str, cfg: Config) -> tuple[Path, str]:
    """(base folder, sub-folder) for saved images: the plant's shared root when configured (issue 30), else beside a
    SQLite file unless configured. Image paths in the database are relative to the base; a run writes under
    ``image_namespace`` (``<database id>/<station>``) inside the sub-folder."""
    if cfg.storage.image_root is not None:
        return Path(cfg.storage.image_root), ""
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
    product: str | None = None  # a [products.NAME] to start with (None: [model] and [recipe] as they are)
    lot: str = ""
    work_order: str = ""


def open_db(url: str, station: str | None = None):
    """Open (and migrate) the database; returns (engine, session factory), signing as this data folder's station
    when its key is registered there (issue 30; ``station``: the name it must be registered as). ``reconcile``
    cleans up after a crash."""
    from db import open_database, session_factory
    from db.plant import attach_signer
    from inspector.core.secrets import url_with_secret

    engine = open_database(url_with_secret(url))  # a password from the environment or secrets.toml (issue 24)
    sessions = session_factory(engine)
    try:
        attach_signer(sessions, station=station)
    except Exception:
        engine.dispose()
        raise
    return engine, sessions


def reconcile(sessions, base: Path, subdir: str, station: str, waiting: set[str] = frozenset()) -> None:
    """After a crash: this station's runs whose process is provably gone are closed as interrupted, and their
    images that no row names (nor an outbox entry, ``waiting``) are removed, or half-written temporary files.
    ``subdir`` is this database's and station's own namespace, so no other database's file is touched."""
    from db import InspectionRepo, RunRepo
    from db.writes import write

    open_ids = write(sessions, lambda s: RunRepo.close_interrupted(s, station=station), "Closing interrupted runs")
    sweep_unfinished(sessions, base, subdir, station)
    if not open_ids:
        return
    with sessions() as s:
        known = InspectionRepo.image_paths(s) | set(waiting)
        started = {rid: RunRepo.get(s, rid).started_at for rid in open_ids}  # type: ignore[union-attr]
    removed = 0
    for run_id in open_ids:  # only in folders this database's run proves it wrote (``run_proof``)
        for f in orphans(base / subdir if subdir else base, f"run-{run_id}", known, base,
                         run_proof(subdir, run_id, started[run_id])):
            try:
                f.unlink()
                removed += 1
            except OSError:
                log.warning("could not remove orphan image %s", f)
    log.warning("closed %d interrupted run(s); removed %d orphan image file(s)", len(open_ids), removed)


def sweep_unfinished(sessions, base: Path, subdir: str, station: str) -> None:
    """Half-written image files (``*.part``) that an ended run of this database left (a crash, a folder that
    became read-only before its clean-up) are removed at each start; those that cannot be, are reported."""
    import re

    from sqlalchemy import select

    from db.schema import Run
    from inspector.core.images import TMP_SUFFIX, proven

    root = base / subdir if subdir else base
    if not subdir or not root.is_dir():
        return
    with sessions() as s:
        ended = dict(s.execute(select(Run.id, Run.started_at).where(Run.station == station, Run.ended_at.is_not(None))
                               ).tuples().all())
    removed, left = 0, []
    for day in (d for d in root.iterdir() if d.is_dir()):
        for folder in day.iterdir():
            m = re.fullmatch(r"run-(\d+)", folder.name)
            rid = int(m.group(1)) if m else None
            if rid not in ended or not proven(folder, run_proof(subdir, rid, ended[rid])):  # type: ignore[index]
                continue
            for f in folder.glob(f"*{TMP_SUFFIX}"):
                try:
                    f.unlink()
                    removed += 1
                except OSError as e:
                    left.append((f, e))
    if removed:
        log.warning("removed %d unfinished image file(s) that ended runs left in %s", removed, root)
    if left:
        f, e = left[0]
        log.warning("%d unfinished image file(s) (%s, ...) cannot be removed from %s (%s); they are tried again at "
                    "each start: make the folder writable or remove them", len(left), f.name, root,
                    e.strerror or e)


def station_trust(sessions, cfg: Config, registry: ModelRegistry | None = None,
                  base: Config | None = None) -> tuple[ModelRegistry, str]:
    """The models this station's database trusts, and the recipe's hash (PermissionDenied for a recipe that
    is not registered, or guarded settings not approved, once the station has users). ``base``: the configuration
    before a product's recipe, model and camera nodes were applied (what the guarded settings are approved on)."""
    from db import TrustRepo
    from db.writes import write

    sha = recipe_sha256(cfg.recipe.model_dump(mode="json"))
    default = recipe_sha256(RecipeConfig().model_dump(mode="json"))
    write(sessions, lambda s: TrustRepo.allow_recipe(s, sha, cfg.recipe.name, default), "Checking the recipe")
    from db.repositories.settings import SettingsRepo
    from inspector.core.guarded import section_hashes

    hashes = section_hashes(base or cfg)  # issue 24: verdict, storage, identity, line, alarm, run, camera approved
    write(sessions, lambda s: SettingsRepo.allow(s, cfg.station_name, hashes), "Checking the settings")
    from db.head_record import problem as copy_problem

    with sessions() as s:
        copied = copy_problem(s)  # issue 24: a copy, a rollback or a restore, as the data folder saw it
    if copied is not None:
        log.warning("%s", copied)
    return registry or trusted_models(sessions), sha


def _min_side_px(cfg: Config) -> int:
    """The shortest picture side judged (smaller ones are NOT_INSPECTED): as configured, or a quarter of the
    model's input."""
    return cfg.quality.min_side_px or cfg.model.imgsz // 4


class RetainingWriter:
    """The run's writer, enforcing the image size cap every ``every`` parts, on the writer thread."""

    def __init__(self, inner, sessions, base: Path, subdir: str, cap_bytes: int, every: int = 500) -> None:
        self.inner, self.sessions, self.base, self.subdir = inner, sessions, base, subdir
        self.cap_bytes, self.every = cap_bytes, every
        self._since = every if cap_bytes > 0 else 0  # check once at the first batch

    def blocked_s(self) -> float:
        """How long the record has been blocked past its write deadline (0: it is not)."""
        return self.inner.blocked_s()

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


SERVER_WAIT_S = 30.0  # a server restarting comes back within this; a wrong address is refused after it


def open_station(spec: StationSpec, wait_s: float = SERVER_WAIT_S, **kwargs) -> Station:
    """``Station(spec, **kwargs)``; while a database server cannot be reached at start-up (a plant's server
    restarting), tried again with back-off for up to ``wait_s`` seconds: a run is numbered by the server, so its
    first part waits for it; once running, a station keeps judging into its outbox while the server is away."""
    import time

    from db.failures import mask_url
    from db.outbox import unreachable

    deadline = time.monotonic() + wait_s
    delay = 1.0
    while True:
        try:
            return Station(spec, **kwargs)
        except StorageError as e:
            if spec.db_url.startswith("sqlite") or not unreachable(e) or time.monotonic() + delay > deadline:
                raise
            log.warning("the database %s cannot be reached yet; trying again in %.0f s", mask_url(spec.db_url),
                        delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


class Station:
    """One run: everything built and checked before the first frame, so errors come early."""

    def __init__(self, spec: StationSpec, on_committed: Callable[[list[tuple[int, Inspection]]], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 on_camera: Callable[[CameraState], None] | None = None,
                 registry: ModelRegistry | None = None,
                 on_alarm: Callable[[int, Alarm], None] | None = None) -> None:
        from db import DbWriter

        self.spec = spec
        self.product = spec.product or ""
        self.engine, self.sessions = open_db(spec.db_url, spec.config.station_name)
        try:
            # the model promoted on this station (issue 15) replaces [model], the default before any promotion;
            # a product with a model of its own keeps it
            self.promoted_path: Path | None = None  # the promoted file here (copied from the plant's share)
            self.home = data_home()  # this station's data folder, where models from the plant's share are copied
            self.base_config, self.promotion = self._promoted(spec.config)
            cfg = product_config(self.base_config, spec.product)
            self.recipe = Recipe(cfg.recipe)
            self.model_path, self.backend = pick_model(cfg.model)
            self.config = cfg
            card = load_card(self.model_path)
            self._check_classes(self.base_config, self.product, self.recipe, card, self.model_path.name)
            self.classes: tuple[str, ...] = card.classes if card is not None else ()
            # trust: the model's hash and the recipe checked against this station's database, before any load
            self.registry, self.recipe_sha = station_trust(self.sessions, cfg, registry, self.base_config)
            self.model_sha = self.registry.check(self.model_path)
            self._shadow_cfg = self._shadow_model(cfg)
            self.line = self._line(cfg)
            if self.line is not None:
                on_camera = self._camera_to_line(on_camera)
                on_committed = self._committed_to_line(on_committed)
            on_committed = self._committed_to_alarms(on_committed)
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
                           f"run-{self.run_id}", cfg.storage.keep_pass_fraction,
                           run_proof(self.subdir, self.run_id, self.run_started))
        self.db_writer = DbWriter(self.sessions, self.run_id, store, self.outbox, recipe_sha256=self.recipe_sha,
                                  deadline_s=cfg.storage.write_deadline_s)
        self.writer = RetainingWriter(self.db_writer, self.sessions, self.base, self.subdir,
                                      int(cfg.storage.max_images_mb * 1e6))
        self.shadow = self._shadow(cfg)
        if self.shadow is not None:
            on_committed = self._committed_to_shadow(on_committed)
        self.tune: dict | None = None  # the inference configuration chosen for this machine, once the model is loaded
        self.runner = Runner(self.source, self._pipeline_factory(cfg, self.model_path, self.recipe),
                             self.writer, cfg.run.mode, cfg.run.queue_size, spec.max_frames, on_committed, on_error,
                             desk=self.line.desk if self.line is not None else None)
        self.runner.on_swap = self._swapped
        listeners = [x for x in (on_alarm, self.line.alarm if self.line is not None else None) if x is not None]
        self.alarms = AlarmDesk(cfg, self.sessions, self.run_id, listeners)
        self.day = DayContext(self.product, spec.lot, spec.work_order, self.recipe_sha, Shifts(cfg.shifts))
        self.runner.switch(self.day)
        self._day_lock = threading.Lock()
        self.watcher = self._watcher(cfg)
        from station.plant import StatusReporter  # the plant view's row: backlog, run, model (issue 30)

        self.reporter = StatusReporter(self.sessions, cfg.station_name, self.run_id, self.backlog,
                                       lambda: f"{self.model_path.parent.name}/{self.model_path.name}")
        self._ended = False

    def build_pipeline(self, cfg: Config, model_path: Path, recipe: Recipe,
                       registry: ModelRegistry | None = None) -> Pipeline:
        """A pipeline over a trusted model, loaded, for the line's parts; the recipe's classes checked against it,
        its inference setup recorded to be shown, and a folder's JPEGs decoded at its scale."""
        detector = load_detector(cfg.model.model_copy(update={"path": model_path}), recipe.detector_floor,
                                 registry or self.registry)
        recipe.check_classes(detector.classes, model_path.name)
        timed = TimedDetector(detector, cfg.model.timeout_s)
        tiled = tiled_for_recipe(timed, recipe.cfg, load_card(model_path), model_path.name)
        if tiled is not timed:  # small defects on large pictures: tile by tile at the model's scale, each bounded
            timed = detector = tiled
        self._running_setup(detector)
        return Pipeline(timed, recipe, cfg.quality, _min_side_px(cfg))

    def _running_setup(self, detector) -> None:
        """Record the inference setup the line's detector runs with, and tell a folder source its input size."""
        setup = detector.setup
        self.tune = {**(setup.tune or {"status": f"not tunable (the {setup.backend} backend)"}),
                     "running": setup.running}
        decode_for = getattr(self.source, "decode_for", None)
        hw = getattr(detector, "input_hw", None)
        if decode_for is not None and (hw or isinstance(detector, TiledDetector)):  # a folder's JPEGs at the model's
            decode_for(tuple(hw) if hw else None)  # scale, or at full size for tiles

    def _pipeline_factory(self, cfg: Config, model_path: Path, recipe: Recipe) -> Callable[[], Pipeline]:
        """Builds the pipeline on the inference thread (the model is created in the thread that uses it)."""
        def pipeline() -> Pipeline:
            return self.build_pipeline(cfg, model_path, recipe)
        return pipeline

    @staticmethod
    def _check_classes(base: Config, product: str, recipe: Recipe, card: ModelCard | None, model: str) -> None:
        """The recipe's classes and the product's expected ones must be classes the model's card names; a tiled
        recipe needs a model trained on such tiles."""
        recipe_tiling(recipe.cfg.tile_size, recipe.cfg.tile_overlap, card, model, recipe.cfg.name)
        known = list(card.classes) if card is not None else []
        if known:
            recipe.check_classes(known, model)
            check_expected(product, base.products[product].classes if product else (), known, model)

    # the plant's day ----------------------------------------------------------------------------
    def switch_product(self, name: str, actor: Actor | None = None, base: Config | None = None) -> DayContext:
        """See ``_switch_product``; one change of the day at a time (a lot set meanwhile sees the new product)."""
        with self._day_lock:
            return self._switch_product(name, actor, base)

    def set_lot(self, lot: str, work_order: str, actor: Actor | None = None) -> DayContext:
        """The lot and work order of the next parts (audited; ValueError for text that is too long)."""
        with self._day_lock:
            return self._set_lot(lot, work_order, actor)

    def _switch_product(self, name: str, actor: Actor | None, base: Config | None) -> DayContext:
        """Judge the next parts as product ``name`` (``base``: the configuration that defines it, by default the
        one this station started from), without stopping: checked as a run's start is (recipe registered,
        model trusted, expected classes known), audited, then handed to the runner. Raises one sentence
        (ConfigError, PermissionDenied, ModelError) and changes nothing when a check fails. ``actor`` must be a
        user of the station once it has users (a line adapter calling this needs one for the PLC)."""
        from db import AuditRepo, TrustRepo, authorize
        from db.writes import write

        base = self.base_config if base is None else self._on_promoted_model(base)
        cfg = product_config(base, name)
        model_path, _ = pick_model(cfg.model)
        recipe = Recipe(cfg.recipe)
        card = load_card(model_path)
        self._check_classes(base, name, recipe, card, model_path.name)
        sha = recipe_hash(cfg)
        model_sha = self.registry.check(model_path)
        old = self.day

        def record(s) -> None:
            who = authorize(s, acting(actor), "run")
            if who.role in (Role.QC, Role.ADMIN) and name:  # a product of the configuration, registered on first
                TrustRepo.add(s, who, "recipe", sha, cfg.recipe.name,  # use by a signed-in QC (issue 26)
                              {"from": "configuration product", "product": name,
                               "values": cfg.recipe.model_dump(mode="json")})
            TrustRepo.allow_recipe(s, sha, cfg.recipe.name, recipe_hash(Config()))
            AuditRepo.append(s, actor=who.name, action="product.switch", target=f"run:{self.run_id}",
                             detail={"product": name, "from": old.product, "recipe": cfg.recipe.name,
                                     "recipe_sha256": sha, "model_sha256": model_sha})

        camera = getattr(self.source, "set_features", None)  # a GenICam camera: the product's nodes, now
        if cfg.camera.features == self.config.camera.features:
            camera = None
        try:
            if camera is not None:
                camera(cfg.camera.features)
            write(self.sessions, record, f"Switching to product {name!r}")
        except BaseException:
            if camera is not None:  # the switch did not happen: the camera as it was
                try:
                    camera(self.config.camera.features)
                except Exception:  # noqa: BLE001 - the first error is the one to report
                    log.exception("restoring the camera's settings for product %r failed", self.product)
            raise
        self.product, self.config, self.recipe, self.recipe_sha = name, cfg, recipe, sha
        self.model_path = model_path
        self.classes = card.classes if card is not None else self.classes
        self.day = dataclasses.replace(old, product=name, recipe_sha256=sha, shifts=Shifts(cfg.shifts))
        self.runner.switch(self.day, self._pipeline_factory(cfg, model_path, recipe))
        log.info("run %d: product %r (recipe %s, model %s)", self.run_id, name, sha[:12], model_sha[:12])
        return self.day

    def _set_lot(self, lot: str, work_order: str, actor: Actor | None) -> DayContext:
        from db import AuditRepo, authorize
        from db.writes import write

        day = dataclasses.replace(self.day, lot=lot, work_order=work_order)

        def record(s) -> None:
            who = authorize(s, acting(actor), "run")
            AuditRepo.append(s, actor=who.name, action="lot.set", target=f"run:{self.run_id}",
                             detail={"lot": day.lot, "work_order": day.work_order, "product": day.product})

        write(self.sessions, record, "Recording the lot")
        self.day = day
        self.runner.switch(day)
        return day

    def acknowledge_alarm(self, alarm_id: int, actor: Actor | None = None) -> str:
        """Record who acknowledged the alarm; returns their name."""
        return self.alarms.acknowledge(alarm_id, actor)

    def _committed_to_alarms(self, on_committed):
        def committed(items: list[tuple[int, Inspection]]) -> None:
            if on_committed is not None:
                on_committed(items)
            self.alarms.on_committed(items)
        return committed

    # champion and challenger (issue 15) -----------------------------------------------------------------
    def _watcher(self, cfg: Config):
        from station.models import PromotionWatcher

        current = self.promotion.sha256 if self.promotion is not None else None
        return PromotionWatcher(self.sessions, cfg.station_name, current, self.apply_promotion,
                                product=lambda: self.product, on_refused=self._promotion_refused)

    def _promoted(self, cfg: Config) -> tuple[Config, object | None]:
        """``cfg`` with [model] replaced by the model promoted on this station, and the promotion (None: none)."""
        from station.models import shared_models_root, station_model_config

        model_cfg, promotion = station_model_config(self.sessions, cfg.station_name, cfg.model, self.product,
                                                    shared_models_root(cfg.storage), self.home)
        if promotion is None:
            return cfg, None
        self.promoted_path = Path(model_cfg.path)  # here, or copied from the plant's share (issue 30)
        if cfg.model.path is not None and Path(cfg.model.path).resolve() != Path(model_cfg.path).resolve():
            log.warning("%s judges with %s, promoted by %s; the configured model %s is the default only before any "
                        "promotion ('inspector model list')", cfg.station_name, promotion.name, promotion.actor,
                        cfg.model.path)
        return cfg.model_copy(update={"model": model_cfg}), promotion

    def _on_promoted_model(self, base: Config) -> Config:
        """A configuration read afresh (the window's) with the model promoted on this station as its [model]."""
        if self.promotion is None:
            return base
        path = self.promoted_path or Path(self.promotion.path)
        return base.model_copy(update={"model": base.model.model_copy(update={"path": path})})

    def apply_promotion(self, promotion) -> None:
        """Load the promoted model on this (the watcher's) thread, then hand it to the inference thread, which
        takes it between parts. A model that cannot load or lacks the recipe's classes leaves the old one on.
        A product with a model of its own keeps it: the promotion replaces [model], the other products' model."""
        from station.models import checked_file, shared_models_root

        # the file's hash, before anything else; copied from the plant's shared models folder when not here
        path = checked_file(promotion, shared_models_root(self.base_config.storage), self.home)
        with self._day_lock:
            self.promotion, self.promoted_path = promotion, path
            self.base_config = self._on_promoted_model(self.base_config)
            product, cfg, recipe = self.product, self.config, self.recipe
        own = self.base_config.products.get(product) if product else None
        if own is not None and own.model is not None:
            log.warning("model %s promoted by %s: product %r keeps its own model %s", path.name, promotion.actor,
                        product, self.base_config.products[product].model)
            return
        registry = trusted_models(self.sessions)  # it may have been trusted after this run started
        pipeline = self.build_pipeline(cfg, path, recipe, registry)
        with self._day_lock:
            if self.product != product:  # a changeover meanwhile: the new product's pipeline already has it
                return
            self.config = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": path})})
            self.model_path = path
            log.info("model %s (%s) promoted by %s: taking over from the next part", path.name,
                     promotion.sha256[:12], promotion.actor)
            self.runner.replace_pipeline(pipeline)
        self._record_model("model.take", promotion, "")

    def _promotion_refused(self, promotion, error: Exception) -> None:
        """A promoted model this station cannot load: the old one keeps judging; recorded and raised as an alarm."""
        self._record_model("model.refused", promotion, str(error))
        from inspector.core.alarms import Alarm

        self.alarms.raise_alarm(Alarm("model_refused", f"the model {promotion.name} promoted by {promotion.actor} "
                                                       f"could not be loaded here ({error}); the previous model keeps "
                                                       "judging"))

    def _record_model(self, action: str, promotion, error: str) -> None:
        """Which model this station runs (or refused), in its audit chain: the plant view reads it from there."""
        from db import AuditRepo
        from db.writes import write

        detail = {"model_sha256": promotion.sha256, "name": promotion.name, "promotion": promotion.id,
                  "for": promotion.station, **({"error": error[:300]} if error else {})}
        try:
            write(self.sessions, lambda s: AuditRepo.append(s, actor=f"station:{self.config.station_name}",
                                                            action=action, target=f"run:{self.run_id}",
                                                            detail=detail), "Recording the station's model")
        except Exception:  # noqa: BLE001 - the line goes on; the log has it
            log.exception("could not record %s for promotion %s", action, promotion.id)

    def _swapped(self, pipeline: Pipeline) -> None:
        """On the inference thread, between parts: the new model judges from here on."""
        sha = pipeline.detector.sha256
        self.model_sha = sha
        if self.line is not None:
            self.line.model_sha256 = sha
        log.warning("run %s: the model %s judges from here on", getattr(self, "run_id", "?"), sha[:12])

    def _shadow_model(self, cfg: Config):
        """The challenger's model configuration from ``[shadow]`` (None: no shadow), its file found and trusted:
        a missing or untrusted challenger is one sentence at the start, not a silent thread later."""
        if cfg.shadow.model is None:
            return None
        shadow_cfg = cfg.model.model_copy(update={"path": Path(cfg.shadow.model)})
        self._shadow_sha = self.registry.check(pick_model(shadow_cfg)[0])
        return shadow_cfg

    def _shadow(self, cfg: Config):
        """The challenger on a share of the parts (one inference thread, a process of its own), or None."""
        if self._shadow_cfg is None:
            return None
        from station.shadow import ChallengerSpec, Shadow

        spec = ChallengerSpec(self._shadow_cfg.model_copy(update={"threads": 1}), self._shadow_sha, cfg.recipe,
                              cfg.quality, _min_side_px(cfg), cfg.model.timeout_s)
        return Shadow(self.sessions, cfg.station_name, self.run_id, spec, cfg.shadow.share)

    def _committed_to_shadow(self, on_committed):
        shadow = self.shadow

        def committed(items: list[tuple[int, Inspection]]) -> None:
            if on_committed is not None:
                on_committed(items)
            shadow.offer(items)  # never blocks: a busy challenger skips parts
        return committed

    def _line(self, cfg: Config):
        """The line's links from ``[line]`` (None when there are none and nothing triggers)."""
        from station.line import LineLink, remembered

        if cfg.line.trigger.value == "none" and not any((cfg.line.mqtt, cfg.line.opcua, cfg.line.modbus)):
            return None
        answered = [] if cfg.line.trigger.value == "none" else \
            remembered(self.sessions, cfg.station_name, cfg.line.repeat_window_h)
        return LineLink(cfg, self.model_sha, answered=answered)

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

    def _prepare_storage(self, spec: StationSpec, card: ModelCard | None) -> None:
        """The image namespace, the outbox (a database server only), the backlog of an earlier run forwarded,
        the clean-up after a crash, and this run's row; every write retried, every failure one sentence."""
        from db import AuditRepo, ModelRepo, RunRepo
        from db.failures import mask_url, sqlite_path
        from db.outbox import Outbox
        from db.writes import write

        cfg = self.config  # with the product applied
        self.base, legacy = image_base(spec.db_url, cfg)
        self.subdir = image_namespace(self.sessions, legacy, cfg.station_name)
        self.outbox = None if sqlite_path(spec.db_url) is not None or spec.db_url.startswith("sqlite") \
            else Outbox(self._outbox_base(cfg) / f"{self.subdir}.outbox" / "outbox.sqlite")  # not among the images
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
            mv = ModelRepo.get_or_create(s, name, str(self.model_path), self.model_sha,
                                      list(card.classes) if card is not None else [])
            run = RunRepo.start(s, mask_url(self.source.name), recipe, cfg.recipe.name, mv.id, cfg.station_name,
                                cfg.run.mode.value)
            AuditRepo.append(s, actor=f"station:{cfg.station_name}", action="run.start", target=f"run:{run.id}",
                             detail={"model_sha256": self.model_sha, "recipe_sha256": self.recipe_sha,
                                     "recipe": cfg.recipe.name, "product": self.product, "lot": spec.lot,
                                     "work_order": spec.work_order})
            return run.id, mv.name, run.started_at

        self.run_id, self.model_name, self.run_started = write(self.sessions, start, "Starting the run")

    def _outbox_base(self, cfg: Config) -> Path:
        """Beside the images on this station's disk; with a plant's shared image root, in the data folder: the
        backlog is this station's alone and must not depend on the share."""
        return data_home() / "images" if cfg.storage.image_root is not None else self.base

    def start(self) -> None:
        if self.line is not None:
            self.line.start(self.runner)
        self.runner.start()
        self.watcher.start()
        self.reporter.start()
        if self.shadow is not None:
            self.shadow.start()

    def stop(self) -> None:
        self.runner.stop()

    def backlog(self) -> int:
        """Records waiting in the outbox for the database server (0 for SQLite)."""
        return self.db_writer.backlog()

    def stats(self) -> RunStats:
        """The runner's figures, with the outbox's backlog."""
        from inspector.detection.setup import setup_text

        return dataclasses.replace(self.runner.stats(), outbox=self.backlog(), setup=setup_text(self.tune),
                                   record_blocked_s=self.db_writer.blocked_s())

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
        from db.sink import WriteBlocked
        from db.writes import write

        self._ended = True
        self.watcher.stop()
        self.reporter.stop()
        if self.shadow is not None:
            self.shadow.stop()
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
            try:  # under the write deadline: a server that hangs does not hold the end of the run
                self.db_writer.call(lambda: write(self.sessions, lambda s: RunRepo.end(s, self.run_id, reason),
                                                  f"Ending run {self.run_id}"))
            except WriteBlocked:
                if self.outbox is None:
                    raise
                log.warning("run %d: the database does not answer; its end waits in the outbox %s", self.run_id,
                            self.outbox.path)
                self.outbox.put_end(self.run_id, reason, dt.datetime.now(dt.timezone.utc))
                return
            except StorageError as e:
                if self.outbox is not None and unreachable(e):
                    self.outbox.put_end(self.run_id, reason, dt.datetime.now(dt.timezone.utc))
                    return
                raise StorageError(f"{e} Run {self.run_id} stays open; the next start on this station closes it "
                                   "as interrupted.") from e
            self.reporter.report("ended")  # the plant view: this station's run ended with its backlog sent
        finally:
            self.engine.dispose()

