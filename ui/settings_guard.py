"""Who may save which settings: sections that change verdicts, storage, the station's identity, alarms, the
challenger, line security, the run's mode or the camera need a signed-in user with the right role and leave an
audit entry (and approve the settings for the next run, issue 24); the display stays free for the operator.

The check runs on a pool thread, in one transaction with its audit entry (and, for a changed recipe, its
registration as a trusted recipe, so that the next run accepts it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from inspector.core.auth import STATION_OPERATOR, Actor
from inspector.core.config import Config, RecipeConfig
from inspector.detection.registry import recipe_sha256

log = logging.getLogger(__name__)

#: section -> the action (inspector.core.auth.ACTIONS) a change to it needs
PROTECTED: dict[str, str] = {"recipe": "recipe", "quality": "settings", "model": "settings", "storage": "settings",
                             # issue 24: identity, alarms, the challenger and line security as well
                             "station": "settings", "alarms": "settings", "shadow": "settings", "line": "settings",
                             # and what decides which picture is judged: the run's mode, the camera
                             "run": "settings", "camera": "settings"}


def diff(prefix: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """"prefix.key" -> {"old", "new"} for every key whose value differs."""
    return {f"{prefix}.{k}": {"old": a.get(k), "new": b.get(k)}
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def changes(old: Config, new: Config) -> dict[str, dict[str, Any]]:
    """"section.field" -> {"old", "new"} for every protected field that differs."""
    from inspector.core.guarded import FREE

    out: dict[str, dict[str, Any]] = {}
    for section in PROTECTED:
        out.update(diff(section, getattr(old, section).model_dump(mode="json"),
                        getattr(new, section).model_dump(mode="json")))
    for section in ("run", "camera"):  # their free fields stay the operator's (the window's model and storage
        for name in FREE[section]:     # choices, the model file and database URL included, stay an admin's)
            out.pop(f"{section}.{name}", None)
    return out


def settings_guard(sessions: Callable[[], Any], actor: Callable[[], Actor | None]) -> Callable[[Config, Config], None]:
    """A guard for ``SettingsDialog``: raises PermissionDenied (nothing saved) unless ``actor()`` may make
    the protected changes; records them in the audit trail otherwise."""

    def guard(old: Config, new: Config) -> None:
        from db import AuditRepo, TrustRepo, authorize
        from db.repositories.settings import SettingsRepo
        from db.writes import write
        from inspector.core.guarded import section_hashes

        changed = changes(old, new)
        if not changed:
            return
        who = actor()
        who = None if who == STATION_OPERATOR else who

        def record(s: Any) -> Actor:
            acted = who
            for action in sorted({PROTECTED[k.split(".")[0]] for k in changed}):
                acted = authorize(s, who, action)
            assert acted is not None
            if any(k.startswith("recipe.") for k in changed):
                TrustRepo.add(s, acted, "recipe", recipe_sha256(new.recipe.model_dump(mode="json")), new.recipe.name,
                              {"from": "settings"})
            AuditRepo.append(s, actor=acted.name, action="settings.change", target="settings", detail=changed)
            if section_hashes(old) != section_hashes(new):  # what the next run checks (issue 24): approved here
                SettingsRepo.approve(s, acted, new.station_name, section_hashes(new), "saved in the settings window")
            return acted
        acted = write(sessions(), record, "Saving the settings")
        log.info("settings changed by %s: %s", acted.name, ", ".join(changed))

    return guard


def product_guard(sessions: Callable[[], Any]
                  ) -> Callable[[str, RecipeConfig, RecipeConfig, Actor | None, Callable[[], None]], str]:
    """A guard for the product editor: a product's recipe decides verdicts, so a change needs a user allowed to
    change recipes; the new recipe is registered as trusted (so the station accepts it), the change audited and
    ``save`` (the settings file's write) run, in one transaction: a save that fails leaves neither the trust nor
    the audit entry. Returns who made it; PermissionDenied (nothing saved) otherwise."""

    def guard(name: str, old: RecipeConfig, new: RecipeConfig, actor: Actor | None, save: Callable[[], None]) -> str:
        from db import AuditRepo, TrustRepo, authorize
        from db.writes import write

        who = None if actor == STATION_OPERATOR else actor

        def record(s: Any) -> Actor:
            acted = authorize(s, who, "recipe")
            TrustRepo.add(s, acted, "recipe", recipe_sha256(new.model_dump(mode="json")), new.name,
                          {"from": "product editor", "product": name})
            AuditRepo.append(s, actor=acted.name, action="product.edit", target=f"product:{name}",
                             detail=diff("recipe", old.model_dump(mode="json"), new.model_dump(mode="json")))
            save()  # last, inside the transaction: when it raises, nothing above is committed
            return acted
        acted = write(sessions(), record, f"Saving the product {name}")
        log.info("product %s changed by %s", name, acted.name)
        return acted.name

    return guard
