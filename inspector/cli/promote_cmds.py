"""``inspector model promote|rollback|list``: which model judges this station's parts (issue 15).

A promotion or rollback needs a signed-in QC or admin (``--user``; the password from INSPECTOR_PASSWORD or
asked for) and a reason; the repository checks the role and the model's trust again and records it in the audit
chain. A running station (``inspector run``, the window) takes the new model between two parts, within a few
seconds, without a restart; a station started later starts with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from inspector.core.config import load_config


def _context(a: argparse.Namespace):
    from station import default_db_url, open_db
    from station.models import config_model_file

    cfg = load_config(a.config)
    station = a.station or cfg.station_name
    if getattr(a, "product", None):  # every station that runs the product (issue 30)
        from station.models import product_target

        station = product_target(a.product)
    engine, sessions = open_db(a.db or default_db_url())
    return cfg, station, engine, sessions, config_model_file(cfg.model)


def _change(a: argparse.Namespace, action: str) -> int:
    from inspector.cli.signin import signed_in
    from station.models import active_promotion, change_model, compare_text, last_compare, rollback_target

    cfg, station, engine, sessions, config_model = _context(a)
    try:
        actor = signed_in(a, sessions, "promote")
        if action == "promote":
            target = Path(a.model)
            if target.is_dir():
                from inspector.detection.registry import resolve_model

                target = resolve_model(target, (".pt", ".onnx"))
            print(f"{station}: {compare_text(last_compare(sessions, station, target, config_model))}")
        else:
            target = rollback_target(sessions, station, config_model, Path(a.to) if a.to else None)
            promo = active_promotion(sessions, station)
            now = promo.name if promo is not None else f"{config_model.parent.name}/{config_model.name}"
            print(f"{station}: roll back from {now} to {target.parent.name}/{target.name} ({target})")
            if not _confirmed(a, "Roll back? [y/N] "):
                print("not rolled back: nothing changed")
                return EXIT_NOT_CONFIRMED
        from station.models import shared_models_root

        p = change_model(sessions, actor, station, target, a.reason, config_model, action,
                         force=getattr(a, "force", False), share=shared_models_root(cfg.storage))
        verb = "promoted" if action == "promote" else "rolled back to"
        print(f"{station}: {verb} {p.name} (sha256 {p.sha256[:12]}...) by {p.actor}; a running station takes it "
              "between two parts, a station started later starts with it")
        return 0
    finally:
        engine.dispose()


EXIT_NOT_CONFIRMED = 1


def _confirmed(a: argparse.Namespace, question: str) -> bool:
    """--yes, or a 'y' typed at the terminal; a script without --yes is refused in one sentence."""
    import sys

    from inspector.core.errors import ConfigError

    if getattr(a, "yes", False):
        return True
    if not sys.stdin.isatty():
        raise ConfigError("a rollback asks to confirm its target: run it in a terminal, or add --yes in a script.")
    return input(question).strip().lower() in ("y", "yes")


def _promote(a: argparse.Namespace) -> int:
    return _change(a, "promote")


def _rollback(a: argparse.Namespace) -> int:
    return _change(a, "rollback")


def _list(a: argparse.Namespace) -> int:
    from station.models import known_models

    cfg, station, engine, sessions, config_model = _context(a)
    try:
        models = known_models(sessions, station, config_model)
    finally:
        engine.dispose()
    print(f"models of station {station} ('*' is active; before any promotion, the configuration's model):")
    for m in models:
        mark = "*" if m.active else " "
        where = str(m.path) if m.path is not None else "(file not recorded)"
        missing = "" if m.exists else " [file missing]"
        print(f"{mark} {m.name:<40} {m.sha256[:12]}  {m.trusted_by}  {where}{missing}")
        for h in m.promoted[:3]:
            print(f"      {h}")
    return 0


def register(msub, db_user) -> None:
    """Add promote, rollback and list under ``inspector model``."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=None, help="the station's configuration (its [station] name)")
        p.add_argument("--station", default=None, help="station name (default: the configuration's)")
        p.add_argument("--product", default=None, help="instead of one station: every station that runs this product "
                       "(each takes it between two parts, after checking the file's hash)")

    p = msub.add_parser("promote", help="make a trusted model the one that judges this station's parts (QC or "
                        "admin, with a reason; audited; a running station takes it between two parts)")
    p.add_argument("model", help="trusted model file or folder")
    p.add_argument("--reason", required=True, help="why (what was compared, on which parts)")
    p.add_argument("--force", action="store_true", help="promote without a recorded comparison against the active "
                   "model (an admin only; the reason is recorded)")
    db_user(p, "QC or admin")
    common(p)
    p.set_defaults(func=_promote)
    r = msub.add_parser("rollback", help="go back to the model active before the active one (a second rollback goes "
                        "further back, never forward), or to --to MODEL (any model this station had; QC or admin, "
                        "with a reason; names its target and asks to confirm; audited)")
    r.add_argument("--to", default=None, help="an earlier model file of this station")
    r.add_argument("--yes", action="store_true", help="do not ask to confirm the target (for scripts)")
    r.add_argument("--reason", required=True)
    db_user(r, "QC or admin")
    common(r)
    r.set_defaults(func=_rollback)
    ls = msub.add_parser("list", help="the models this station knows, the active one marked, with their promotions")
    ls.add_argument("--db", default=None)
    common(ls)
    ls.set_defaults(func=_list)
