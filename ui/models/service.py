"""The Models tab's side of the station: every method blocks (database, files, model loading, a process start),
so the tab calls them through ``run_job`` on a pool thread, never on the GUI thread."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.core.auth import Actor
from inspector.core.config import Config
from inspector.core.errors import ConfigError
from inspector.core.home import data_home
from station.models import (
    PRODUCT,
    KnownModel,
    change_model,
    config_model_file,
    known_models,
    product_target,
    shared_models_root,
)
from station.training_jobs import Job, JobRequest, cancel_job, list_jobs, read_job, start_job
from ui.review.service import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overview:
    """What the tab lists: the models, the shadow agreement, the earlier models a rollback may go to."""

    models: tuple[KnownModel, ...]
    agreement: Any  # db.dto.ShadowAgreement
    earlier: tuple[tuple[str, Path], ...]  # (label, file) of models that were active here, newest first
    shadow_model: str
    config_model: Path  # the configuration's model: active before any promotion
    product: str = ""  # "" : this station's models and promotions; else every station that runs this product
    products: tuple[str, ...] = ()  # the products a promotion may target


@dataclass(frozen=True)
class Comparison:
    result: dict
    gallery: Path | None


class ModelsService:
    """The station's models, promotions, shadow figures, comparisons and training jobs (blocking calls)."""

    def __init__(self, db: Database, config: Config, jobs_root: Path | None = None) -> None:
        self.db = db
        self.config = config
        self.station = config.station_name
        self.jobs_root = jobs_root

    def config_model(self) -> Path:
        return config_model_file(self.config.model)

    def products(self) -> tuple[str, ...]:
        """The products a promotion may target (``[products.NAME]``, and those promoted for already)."""
        from db import PromotionRepo
        from db.writes import write

        found = write(self.db.sessions(), lambda s: PromotionRepo.targets(s, PRODUCT), "Reading the promotions")
        return tuple(sorted(set(self.config.products) | {t.removeprefix(PRODUCT) for t in found}))

    def target(self, product: str = "") -> str:
        """Whose promotions: this station's, or (``product``) every station's that runs the product (issue 30)."""
        return product_target(product) if product else self.station

    def overview(self, product: str = "") -> Overview:
        from db import PromotionRepo, ShadowRepo
        from db.writes import write

        sessions = self.db.sessions()
        config_model = self.config_model()
        target = self.target(product)
        models = known_models(sessions, target, config_model)

        def read(s):
            return (ShadowRepo.agreement(s, self.station, last=self.config.shadow.agreement_parts),
                    PromotionRepo.history(s, target, 1000))

        agreement, history = write(sessions, read, "Reading the shadow figures")
        earlier: list[tuple[str, Path]] = []
        seen = {history[0].sha256} if history else set()
        for p in history:
            if p.previous_sha256 and p.previous_sha256 not in seen:
                seen.add(p.previous_sha256)
                path = next((Path(q.path) for q in history if q.sha256 == p.previous_sha256), config_model)
                earlier.append((f"{path.parent.name}/{path.name}", path))
        shadow = str(self.config.shadow.model) if self.config.shadow.model else ""
        return Overview(tuple(models), agreement, tuple(earlier), shadow, config_model, product, self.products())

    def change(self, actor: Actor | None, model: Path, reason: str, action: str = "promote", force: bool = False,
               product: str = ""):
        """Promote or roll back on this station, or (``product``) on every station that runs the product, as
        'inspector model promote MODEL --product P' does: the same role, trust and comparison checks."""
        return change_model(self.db.sessions(), actor, self.target(product), model, reason, self.config_model(),
                            action, force=force, share=shared_models_root(self.config.storage))

    def last_compare(self, model: Path, product: str = "") -> str:
        """The last recorded comparison of ``model`` against the active model, in one line ('' when none)."""
        from station.models import compare_text, last_compare

        found = last_compare(self.db.sessions(), self.target(product), model, self.config_model())
        return compare_text(found) if found else ""

    def compare(self, champion: Path, challenger: Path, data: Path, actor: Actor | None = None) -> Comparison:
        from inspector.lifecycle.compare import compare, write_gallery
        from station import trusted_models

        registry = trusted_models(self.db.sessions())
        result, gallery = compare(champion, challenger, data, recipe_cfg=self.config.recipe,
                                  model_cfg=self.config.model, registry=registry)
        from station.models import record_compare

        record_compare(self.db.sessions(), result, actor.name if actor is not None else "")  # what a promotion shows
        png = None
        if result["disagreements"]["count"]:
            png = Path(tempfile.mkdtemp(prefix="inspector-compare-")) / "disagreements.png"
            write_gallery(result, gallery, png)
        return Comparison(result, png)

    # training ---------------------------------------------------------------------------------------
    def start_training(self, actor: Actor, data: Path | None, budget_s: float, name: str,
                       imgsz: int | None = None, epochs: int | None = None, kind: str = "detect") -> Job:
        """A training job on ``data``, or (None) on the reviewed parts exported first into the job's data folder
        (``kind`` anomaly: the pictures of the parts QC confirmed good).

        PermissionDenied unless the users table lets ``actor`` train (QC or admin), before anything starts."""
        from db import authorize
        from db.writes import write

        write(self.db.sessions(), lambda s: authorize(s, actor, "train"), "Checking who trains")
        out = data_home() / "models" / name
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"a model named {name!r} exists already ({out}): choose another name.")
        if data is None:
            data = self._export_good(name) if kind == "anomaly" else self._export_reviewed(name)
        return start_job(JobRequest(Path(data), out, budget_s, self.db.url, imgsz, epochs, kind=kind), actor.name,
                         self.jobs_root)

    def _export_good(self, name: str) -> Path:
        from inspector.training.anomaly import MIN_PICTURES
        from station.reports import export_good_parts

        out = data_home() / "datasets" / f"{name}-good"
        summary = export_good_parts(self.db.sessions(), out, self.db.image_root)
        log.info("exported the parts QC confirmed good for anomaly training: %s", summary.text())
        if summary.pictures < MIN_PICTURES:
            raise ConfigError(f"the parts QC confirmed good are too few to learn from ({summary.text()}; at least "
                              f"{MIN_PICTURES} needed): confirm more good parts in review, or pick a folder of good "
                              "pictures.")
        return out

    def _export_reviewed(self, name: str) -> Path:
        from station.reports import export_dataset

        out = data_home() / "datasets" / name
        summary = export_dataset(self.db.sessions(), out, self.db.image_root)
        log.info("exported the reviewed parts for training: %s", summary.text())
        if not summary.boxes:
            raise ConfigError(f"the reviewed parts give nothing to train on ({summary.text()}): review more parts, "
                              "or train on a labelled data set folder.")
        return out

    def latest_job(self) -> Job | None:
        jobs = list_jobs(self.jobs_root)
        return jobs[0] if jobs else None

    def refresh_job(self, job: Job) -> Job:
        return read_job(job.folder)

    def cancel(self, job: Job) -> None:
        cancel_job(job)

    def trust_output(self, actor: Actor, job: Job) -> int:
        """Trust what a finished job wrote, as ``actor`` (a QC or admin signed in here); returns how many files."""
        from db import TrustRepo
        from db.writes import write
        from inspector.core.errors import ModelError
        from inspector.detection.registry import sha256_file

        result = job.state.result
        out = Path(result.get("out", ""))
        files = result.get("files", {})
        for name, sha in files.items():  # what is trusted is what the job wrote, not a file put there since
            if sha256_file(out / name) != sha:
                raise ModelError(f"{out / name} changed after the training wrote it: not trusted.")

        def add(s) -> int:
            return sum(TrustRepo.add(s, actor, "model", sha, name, {"file": str(out / name),
                                                                   "trained_by": f"window job {job.folder.name}"},
                                     "train")
                       for name, sha in files.items())
        return write(self.db.sessions(), add, "Trusting the trained model")
