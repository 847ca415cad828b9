"""Trust decisions: which model files and recipes this station runs. Each is added by a user whose role
the users table confirms, sealed (``db.seal``) and audited in the same transaction; a row added or
changed behind Inspector's back fails its seal and is not trusted.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.repositories._common import utcnow
from db.repositories.audit import AuditRepo, bind_row
from db.repositories.users import UserRepo, authorize
from db.schema import TRUST_KINDS, TrustedFile
from db.seal import row_sealed, trust_fields
from inspector.core.auth import Actor
from inspector.core.errors import PermissionDenied

log = logging.getLogger(__name__)

_ACTION = {"model": "model", "recipe": "recipe"}


class TrustRepo:
    @staticmethod
    def add(session: Session, actor: Actor | None, kind: str, sha256: str, name: str,
            detail: dict | None = None, action: str | None = None) -> bool:
        """Trust ``sha256`` as a ``kind`` ("model" or "recipe"); False if it was trusted already.

        PermissionDenied unless the users table lets ``actor`` do it (anyone while it has no users): the action
        is ``kind``'s own ("model": admin), or ``"train"`` (QC) for the files a training run just wrote.
        """
        if action not in (None, "train") or (action == "train" and kind != "model"):
            raise ValueError(f"expected no action or 'train' for a model, got {action!r} for a {kind}")
        if kind not in TRUST_KINDS:
            raise ValueError(f"expected a kind among {list(TRUST_KINDS)}, got {kind!r}")
        if len(sha256) != 64:
            raise ValueError(f"expected a SHA-256 in hex (64 characters), got {sha256!r}")
        who = authorize(session, actor, action or _ACTION[kind])
        if sha256 in TrustRepo.trusted(session, kind):
            return False
        old = session.scalars(select(TrustedFile).where(TrustedFile.kind == kind, TrustedFile.sha256 == sha256)).first()
        replaces = {}
        if old is not None:  # a row whose seal broke: replaced by this decision
            replaces = {"replaces": [f"trusted_files:{old.id}"]}
            session.delete(old)
            session.flush()
        row = TrustedFile(kind=kind, sha256=sha256, name=name, added_by=who.name, added_at=utcnow())
        session.add(row)
        bound = bind_row(session, trust_fields, row)
        AuditRepo.append(session, actor=who.name, action=f"{kind}.trust", target=f"{kind}:{sha256}",
                         detail={"name": name, **(detail or {}), **bound, **replaces})
        return True

    @staticmethod
    def trusted(session: Session, kind: str) -> dict[str, str]:
        """sha256 -> description, for the rows whose seal holds (a forged row is logged and ignored)."""
        out: dict[str, str] = {}
        for row in session.scalars(select(TrustedFile).where(TrustedFile.kind == kind).order_by(TrustedFile.id)):
            if row_sealed(session, trust_fields, row):
                out[row.sha256] = f"trusted by {row.added_by} ({row.name})"
            else:
                log.warning("trusted %s %s was added or changed outside Inspector: not trusted", kind, row.sha256)
        return out

    @staticmethod
    def allow_recipe(session: Session, sha256: str, name: str, default_sha256: str) -> None:
        """Refuse a recipe that is neither the built-in default nor registered, once the station has users
        (a fresh install runs any recipe, as before)."""
        if sha256 == default_sha256 or UserRepo.fresh(session):
            return
        if sha256 not in TrustRepo.trusted(session, "recipe"):
            raise PermissionDenied(f"the recipe {name!r} (sha256 {sha256[:12]}...) is not registered on this "
                                   "station; a QC or admin registers it by choosing the product while signed in, or "
                                   "with 'inspector recipe add --product PRODUCT --user NAME' (or a recipe FILE).")
