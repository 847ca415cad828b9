"""Model versions and runs: what was inspected, with which model and recipe, and how the run ended."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.dto import ModelVersionDTO, RunDTO
from db.owner import Owner, is_gone, this_process
from db.repositories._common import dumps, model_dto, run_dto, utcnow
from db.schema import InspectionRecord, ModelVersion, Run

log = logging.getLogger(__name__)

END_REASONS = ("finished", "stopped", "interrupted")


def _check_end_reason(reason: str) -> None:
    if reason not in END_REASONS and not (reason.startswith("error: ") and len(reason) > len("error: ")):
        raise ValueError(f"expected an end reason among {list(END_REASONS)} or 'error: <what>', got {reason!r}")


def database_id(session: Session) -> str:
    """This database's identity (``database_info.db_id``); a copied database gets its own (``db.identity``)."""
    from db.identity import database_id as own_id

    return own_id(session)


class ModelRepo:
    """Registered model versions, one row per distinct file content (sha256)."""

    @staticmethod
    def get_or_create(session: Session, name: str, path: str, sha256: str, classes: Sequence[str]) -> ModelVersionDTO:
        """The version with this sha256, created on first sight (name, path and classes of the first sight)."""
        if len(sha256) != 64:
            raise ValueError(f"expected a 64-character sha256, got {sha256!r}")
        found = session.scalars(select(ModelVersion).where(ModelVersion.sha256 == sha256)).first()
        if found is None:
            try:
                with session.begin_nested():  # a plant's stations starting at once register the same model
                    found = ModelVersion(name=name, path=str(path), sha256=sha256, classes=dumps(list(classes)),
                                         created_at=utcnow())
                    session.add(found)
                    session.flush()
                log.info("registered model %s (%s…)", name, sha256[:12])
            except IntegrityError:  # another station registered it first (and committed): theirs stands
                found = session.scalars(select(ModelVersion).where(ModelVersion.sha256 == sha256)).one()
        return model_dto(found)

    @staticmethod
    def get(session: Session, model_id: int) -> ModelVersionDTO | None:
        m = session.get(ModelVersion, model_id)
        return None if m is None else model_dto(m)

    @staticmethod
    def by_sha256(session: Session, sha256: str) -> ModelVersionDTO | None:
        m = session.scalars(select(ModelVersion).where(ModelVersion.sha256 == sha256)).first()
        return None if m is None else model_dto(m)

    @staticmethod
    def list(session: Session) -> list[ModelVersionDTO]:
        return [model_dto(m) for m in session.scalars(select(ModelVersion).order_by(ModelVersion.id))]


class RunRepo:
    """Runs: one source inspected with one model and recipe, from start to end."""

    @staticmethod
    def start(session: Session, source: str, recipe_json: str | Mapping[str, Any], recipe_name: str, model_id: int,
              station: str = "", mode: str = "", owner: Owner | None = None) -> RunDTO:
        """A new run, started now and owned by ``owner`` (default: this process). ``recipe_json`` is the recipe
        as JSON text (or a mapping)."""
        recipe = json.loads(recipe_json) if isinstance(recipe_json, str) else dict(recipe_json)
        owner = owner or this_process()
        run = Run(source=str(source), recipe=dumps(recipe), recipe_name=recipe_name, model_id=model_id,
                  station=station, mode=mode, started_at=utcnow(), host=owner.host, pid=owner.pid,
                  process_started=owner.started)
        session.add(run)
        session.flush()
        return run_dto(run)

    @staticmethod
    def end(session: Session, run_id: int, reason: str, ended_at: dt.datetime | None = None) -> RunDTO:
        """Mark the run ended ("finished", "stopped", "interrupted" or "error: ..."); an ended run keeps its end."""
        _check_end_reason(reason)
        run = session.get(Run, run_id)
        if run is None:
            raise LookupError(f"no run with id {run_id}")
        if run.ended_at is None:
            run.ended_at = ended_at or utcnow()
            run.end_reason = reason
            session.flush()
        else:
            log.warning("run %s already ended (%s); not marking it %r", run_id, run.end_reason, reason)
        return run_dto(run)

    @staticmethod
    def close_interrupted(session: Session, station: str | None = None) -> list[int]:
        """End, at its last inspection (or its start), every open run whose process is provably gone (see
        ``db.owner``); returns their ids. A run whose process still runs (another ``inspector run`` on the
        same database) or runs on another host is left open.

        Call it at start-up, before starting a run. ``station`` limits it to this station's runs.
        """
        query = select(Run.id, Run.host, Run.pid, Run.process_started).where(Run.ended_at.is_(None))
        if station is not None:
            query = query.where(Run.station == station)
        gone = [rid for rid, host, pid, started in session.execute(query) if is_gone(host, pid, started)]
        if not gone:
            return []
        last = (select(func.max(InspectionRecord.created_at)).where(InspectionRecord.run_id == Run.id)
                .scalar_subquery())
        stmt = (update(Run).where(Run.ended_at.is_(None), Run.id.in_(gone))
                .values(ended_at=func.coalesce(last, Run.started_at), end_reason="interrupted")
                .execution_options(synchronize_session=False))
        session.execute(stmt)
        log.warning("closed %d interrupted run(s): %s", len(gone), gone)
        return gone

    @staticmethod
    def get(session: Session, run_id: int) -> RunDTO | None:
        run = session.get(Run, run_id)
        return None if run is None else run_dto(run)

    @staticmethod
    def list(session: Session, limit: int = 500) -> list[RunDTO]:
        """Newest first."""
        rows = session.scalars(select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit))
        return [run_dto(r) for r in rows]
