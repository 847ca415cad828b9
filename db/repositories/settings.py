"""Approved settings (issue 24): the sections of a configuration file that change verdicts, storage, the station's
identity, line security, alarms, the run's mode or the camera are hashed; once the station has users, a run
accepts only the hashes a signed-in admin approved (``inspector settings approve``, or a save in the settings
window), like an unregistered recipe. The approval is a row of ``database_info`` sealed with the station's key
(``settings:<station>``) and an audit entry. The first run after users exist (or after an upgrade) adopts what it
finds, audited as such; so does a run that finds sections guarded since its approval was made (``run`` and
``camera`` for an approval of before).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping

from sqlalchemy.orm import Session

from db.repositories._common import utcnow
from db.repositories.audit import AuditRepo
from db.repositories.users import UserRepo, authorize
from db.schema import DatabaseInfo
from db.seal import key
from inspector.core.auth import Actor
from inspector.core.errors import PermissionDenied
from inspector.core.integrity import seal, sealed

log = logging.getLogger(__name__)

ADOPTED_BY = "inspector (first run with users)"


def _key_of(station: str) -> str:
    return "settings:" + hashlib.sha256(station.encode("utf-8")).hexdigest()[:32]


def digest(sections: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(sections), sort_keys=True).encode("utf-8")).hexdigest()


class SettingsRepo:
    @staticmethod
    def approved(session: Session, station: str) -> dict | None:
        """The station's approved section hashes ({"sections", "by", "at"}), None when none was recorded; a
        record whose seal fails counts as none approved (``{"sections": {}, "broken": True}``)."""
        row = session.get(DatabaseInfo, _key_of(station))
        if row is None:
            return None
        try:
            value = json.loads(row.value)
            fields = ("settings", station, value["sections"], value["by"], value["at"])
            ok = sealed(key(session), value.get("mac"), *fields)
        except (ValueError, KeyError, TypeError):
            ok = False
        return value if ok else {"sections": {}, "broken": True}

    @staticmethod
    def approve(session: Session, actor: Actor | None, station: str, sections: Mapping[str, str],
                note: str = "") -> list[str]:
        """Record ``sections`` (section -> hash) as this station's approved settings, by a signed-in admin (anyone
        on a fresh install); returns the sections that changed. Audited."""
        who = authorize(session, actor, "settings")
        return _record(session, who.name, station, sections, "settings.approve", note)

    @staticmethod
    def allow(session: Session, station: str, sections: Mapping[str, str]) -> None:
        """Refuse a run whose guarded settings differ from the approved ones once the station has users (a fresh
        install runs any settings); the first run with users adopts them (audited)."""
        if UserRepo.fresh(session):
            return
        found = SettingsRepo.approved(session, station)
        if found is None:
            _record(session, ADOPTED_BY, station, sections, "settings.adopt", "no approval recorded yet")
            return
        newly = sorted(k for k in sections if k not in found["sections"])  # guarded since the approval was made
        changed = sorted(k for k in set(sections) | set(found["sections"])
                         if k not in newly and sections.get(k) != found["sections"].get(k))
        if found.get("broken"):
            raise PermissionDenied(f"the approved settings of station {station!r} were changed outside Inspector: an "
                                   "admin approves the configuration again with 'inspector settings approve --config "
                                   "FILE --user NAME'.")
        if changed:
            raise PermissionDenied(f"the configuration's {', '.join(changed)} settings changed since they were "
                                   f"approved ({found['by']}, {found['at'][:16]}): an admin approves them with "
                                   "'inspector settings approve --config FILE --user NAME' (or saves them in the "
                                   "settings window).")
        if newly:  # an approval from before these sections were guarded: what this run finds is adopted (audited)
            _record(session, ADOPTED_BY, station, {**found["sections"], **{k: sections[k] for k in newly}},
                    "settings.adopt", f"newly guarded: {', '.join(newly)}")


def _record(session: Session, who: str, station: str, sections: Mapping[str, str], action: str,
            note: str) -> list[str]:
    old = SettingsRepo.approved(session, station) or {"sections": {}}
    changed = sorted(k for k in set(sections) | set(old["sections"]) if sections.get(k) != old["sections"].get(k))
    at = utcnow().isoformat(timespec="seconds")
    value = {"sections": dict(sections), "by": who, "at": at}
    value["mac"] = seal(key(session), "settings", station, value["sections"], who, at)
    row = session.get(DatabaseInfo, _key_of(station))
    if row is None:
        session.add(DatabaseInfo(key=_key_of(station), value=json.dumps(value, sort_keys=True)))
    else:
        row.value = json.dumps(value, sort_keys=True)
    session.flush()
    AuditRepo.append(session, actor=who, action=action, target=f"station:{station}",
                     detail={"settings_sha256": digest(sections), "changed": changed,
                             **({"note": note} if note else {})})
    log.info("settings of %s %s by %s: %s", station, action.split(".")[1], who, ", ".join(changed) or "unchanged")
    return changed
