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
    from station.models import change_model, rollback_target

    cfg, station, engine, sessions, config_model = _context(a)
    try:
        actor = signed_in(a, sessions, "promote")
        if action == "promote":
            target = Path(a.model)
            if target.is_dir():
                from inspector.detection.registry import resolve_model

                target = resolve_model(target, (".pt", ".onnx"))
        else:
            target = rollback_target(sessions, station, config_model, Path(a.to) if a.to else None)
        p = change_model(sessions, actor, station, target, a.reason, config_model, action)
        verb = "promoted" if action == "promote" else "rolled back to"
        print(f"{station}: {verb} {p.name} (sha256 {p.sha256[:12]}...) by {p.actor}; a running station takes it "
              "between two parts, a station started later starts with it")
        return 0
    finally:
        engine.dispose()


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
    db_user(p, "QC or admin")
    common(p)
    p.set_defaults(func=_promote)
    r = msub.add_parser("rollback", help="go back to the model active before the last promotion, or to --to MODEL "
                        "(any model this station had; QC or admin, with a reason; audited)")
    r.add_argument("--to", default=None, help="an earlier model file of this station")
    r.add_argument("--reason", required=True)
    db_user(r, "QC or admin")
    common(r)
    r.set_defaults(func=_rollback)
    ls = msub.add_parser("list", help="the models this station knows, the active one marked, with their promotions")
    ls.add_argument("--db", default=None)
    common(ls)
    ls.set_defaults(func=_list)
