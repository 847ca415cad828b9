"""Champion and challenger (issue 15): which model judges a station's parts, and the challenger's shadow verdicts.

A promotion or rollback is made by a QC or admin whose role the users table confirms, for a model this station
trusts (shipped card or sealed ``trusted_files`` row), with a reason; the row is sealed and audited in the same
transaction. The active model of a station is its latest promotion row whose seal holds; a forged row is
ignored (and reported by ``audit verify``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.dto import PromotionDTO, ShadowAgreement
from db.repositories._common import dumps, loads, utcnow
from db.repositories.audit import AuditRepo, bind_row
from db.repositories.users import authorize
from db.schema import ModelPromotion, ShadowResult
from db.seal import promotion_fields, row_sealed
from inspector.core.auth import Actor
from inspector.core.errors import ConfigError, PermissionDenied

log = logging.getLogger(__name__)

PASSING = ("PASS",)


def _dto(r: ModelPromotion) -> PromotionDTO:
    return PromotionDTO(id=r.id, station=r.station, action=r.action, sha256=r.sha256, path=r.path, name=r.name,
                        previous_sha256=r.previous_sha256, reason=r.reason, actor=r.actor, created_at=r.created_at)


class PromotionRepo:
    @staticmethod
    def history(session: Session, station: str, limit: int = 200) -> list[PromotionDTO]:
        """The station's promotions and rollbacks whose seal holds, newest first."""
        q = (select(ModelPromotion).where(ModelPromotion.station == station).order_by(ModelPromotion.id.desc())
             .limit(limit))
        out = []
        for row in session.scalars(q):
            if row_sealed(session, promotion_fields, row):
                out.append(_dto(row))
            else:
                log.warning("model promotion %d of %s was added or changed outside Inspector: ignored", row.id,
                            station)
        return out

    @staticmethod
    def targets(session: Session, prefix: str) -> list[str]:
        """The promotions' targets that start with ``prefix`` (``product:``: the products promoted for), sorted."""
        q = (select(ModelPromotion.station).where(ModelPromotion.station.startswith(prefix, autoescape=True))
             .distinct().order_by(ModelPromotion.station))
        return list(session.scalars(q))

    @staticmethod
    def active(session: Session, station: str) -> PromotionDTO | None:
        """The station's latest sealed promotion (None: the configuration's model is active)."""
        found = PromotionRepo.history(session, station, limit=50)
        return found[0] if found else None

    @staticmethod
    def record_compare(session: Session, actor: str, figures: Mapping[str, object]) -> None:
        """Keep a champion-against-challenger comparison (``figures`` names both SHA-256s) in the audit chain,
        where a later promotion finds it."""
        AuditRepo.append(session, actor=actor or "?", action="model.compare",
                         target=f"model:{figures.get('challenger_sha256', '')}", detail=dict(figures))

    @staticmethod
    def last_compare(session: Session, champion_sha256: str, challenger_sha256: str) -> dict | None:
        """The latest recorded comparison of the challenger against this champion (its figures), or None."""
        from db.schema import AuditEntry

        q = (select(AuditEntry.detail, AuditEntry.actor, AuditEntry.created_at)
             .where(AuditEntry.action == "model.compare", AuditEntry.target == f"model:{challenger_sha256}")
             .order_by(AuditEntry.id.desc()))
        for detail, who, at in session.execute(q):
            figures = loads(detail, {}) or {}
            if figures.get("champion_sha256") == champion_sha256:
                return {**figures, "by": who, "at": at.isoformat(timespec="minutes") if at else ""}
        return None

    @staticmethod
    def record(session: Session, actor: Actor | None, station: str, action: str, sha256: str, path: str, name: str,
               reason: str, trusted: Mapping[str, str], current_sha256: str = "",
               evidence: Mapping[str, object] | None = None) -> PromotionDTO:
        """Make ``sha256`` (the file at ``path``) the model that judges ``station``'s parts from its next part on.

        PermissionDenied unless the users table lets ``actor`` promote (QC or admin; anyone on a fresh install)
        and the model is trusted (``trusted``: the station's registry); ConfigError without a reason, for a model
        that is active already, or a rollback to a model never promoted here.
        """
        if action not in ("promote", "rollback"):
            raise ValueError(f"expected 'promote' or 'rollback', got {action!r}")
        who = authorize(session, actor, "promote")
        if not reason or not reason.strip():
            raise ConfigError(f"a {action} needs a reason (what was compared, why this model).")
        if sha256 not in trusted:
            raise PermissionDenied(f"{name or path} (sha256 {sha256[:12]}...) is not trusted on this station: only a "
                                   "trusted model can be promoted ('inspector model add FILE --user ADMIN').")
        current = PromotionRepo.active(session, station)
        previous = current.sha256 if current is not None else current_sha256
        if previous == sha256:
            raise ConfigError(f"{name or path} is already the active model of {station}.")
        if action == "rollback" and sha256 != current_sha256 and not any(
                p.sha256 == sha256 for p in PromotionRepo.history(session, station, limit=10_000)):
            raise ConfigError(f"{name or path} was never the model of {station}: roll back only to a model it had.")
        row = ModelPromotion(station=station, action=action, sha256=sha256, path=path, name=name,
                             previous_sha256=previous, reason=reason.strip(), actor=who.name, created_at=utcnow())
        session.add(row)
        bound = bind_row(session, promotion_fields, row)
        AuditRepo.append(session, actor=who.name, action=f"model.{action}", target=f"station:{station}",
                         detail={"sha256": sha256, "path": path, "name": name, "previous_sha256": previous,
                                 "reason": reason.strip(), **({"evidence": dict(evidence)} if evidence else {}),
                                 **bound})
        return _dto(row)


class ShadowRepo:
    @staticmethod
    def add(session: Session, rows: Iterable[dict]) -> int:
        """Record shadow verdicts (dicts of ``ShadowResult`` columns, ``reasons`` a list); returns how many."""
        n = 0
        for r in rows:
            session.add(ShadowResult(**{**r, "reasons": dumps(list(r.get("reasons", ())))}))
            n += 1
        session.flush()
        return n

    @staticmethod
    def agreement(session: Session, station: str, model_sha256: str | None = None, last: int = 500) -> ShadowAgreement:
        """Agreement of the (latest, or given) challenger with the active model over its last ``last`` parts."""
        if model_sha256 is None:
            model_sha256 = session.scalars(select(ShadowResult.model_sha256).where(ShadowResult.station == station)
                                           .order_by(ShadowResult.id.desc()).limit(1)).first()
            if model_sha256 is None:
                return ShadowAgreement("", 0, 0, 0, 0)
        rows = session.execute(select(ShadowResult.verdict, ShadowResult.active_verdict)
                               .where(ShadowResult.station == station, ShadowResult.model_sha256 == model_sha256)
                               .order_by(ShadowResult.id.desc()).limit(last)).all()
        agreed = sum(1 for v, a in rows if v == a)
        fails = sum(1 for v, a in rows if a in PASSING and v not in PASSING and v != "NOT_INSPECTED")
        passes = sum(1 for v, a in rows if v in PASSING and a not in PASSING and a != "NOT_INSPECTED")
        return ShadowAgreement(model_sha256, len(rows), agreed, fails, passes)


def trusted_model_files(session: Session) -> dict[str, dict]:
    """sha256 -> {"file", "by", "at", "detail"} of the models trusted on this station, from the audit chain's
    ``model.trust`` entries (the trusted_files rows keep no path; the entries say where the file was)."""
    from db.schema import AuditEntry

    out: dict[str, dict] = {}
    q = select(AuditEntry).where(AuditEntry.action == "model.trust").order_by(AuditEntry.id)
    for e in session.scalars(q):
        detail = loads(e.detail, {})
        sha = e.target.split(":", 1)[-1]
        out[sha] = {"file": detail.get("file", ""), "by": e.actor, "at": e.created_at, "detail": detail}
    return out
