"""``inspector compare``: champion against challenger on the same held-out labelled parts."""

from __future__ import annotations

import argparse
import json
import sys


def _compare(a: argparse.Namespace) -> int:
    from inspector.core.config import load_config, load_recipe
    from inspector.lifecycle.compare import compare, format_text, write_gallery

    cfg = load_config(a.config)
    recipe_cfg = load_recipe(a.recipe) if a.recipe else cfg.recipe

    def progress(role: str, n: int, total: int) -> None:
        if n % 25 == 0 or n == total:
            print(f"\r{role} {n}/{total}", end="" if n < total else "\n", file=sys.stderr, flush=True)

    from station import default_db_url, open_db, trusted_models

    engine, sessions = open_db(a.db or default_db_url())
    try:
        registry = trusted_models(sessions)  # the shipped models and those this station's database trusts
        result, gallery = compare(a.champion, a.challenger, a.data, split=a.split, recipe_cfg=recipe_cfg,
                                  model_cfg=cfg.model, progress=progress, registry=registry)
        from station.models import record_compare

        record_compare(sessions, result)  # a promotion of the challenger over this champion shows it
    finally:
        engine.dispose()
    print(format_text(result))
    if a.gallery:
        write_gallery(result, gallery, a.gallery)
        print(f"wrote {a.gallery}")
    if a.json:
        print(json.dumps(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="champion vs challenger model on the same held-out labelled parts")
    c.add_argument("--champion", required=True, help="the model in use (a trusted .pt, .onnx or .xml file)")
    c.add_argument("--challenger", required=True, help="the candidate (a trusted model file)")
    c.add_argument("--data", required=True, help="labelled data never trained on: its val split, or all of it "
                   "when it has no split; with an anomaly model on either side, a folder of parts (sub-folders by "
                   "kind, 'good' for good parts, or splits/test.txt, give the truth): verdicts side by side")
    c.add_argument("--split", default=None, help="split to use (default: val if defined, else all)")
    c.add_argument("--config", default=None)
    c.add_argument("--recipe", default=None, help="recipe whose thresholds turn detections into verdicts")
    c.add_argument("--gallery", default=None, metavar="FILE", help="PNG of the parts where the verdicts differ")
    c.add_argument("--json", action="store_true")
    c.add_argument("--db", default=None, help="the station's database, whose trusted models may be compared and "
                   "where the figures are kept for a promotion to show (default: sqlite in the user's data folder)")
    c.set_defaults(func=_compare)
