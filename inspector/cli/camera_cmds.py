"""``inspector cameras``: the GenICam cameras pylon and the GenTL producers find (vendor, model, serial,
interface, reachable or not)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cameras(a: argparse.Namespace) -> int:
    from inspector.cli.run_cmd import build_config
    from inspector.sources.opening import discover

    cti = tuple(Path(p) for p in a.cti) if a.cti else build_config(a).camera.cti
    found, notes = discover(cti)
    if a.json:
        print(json.dumps({"cameras": [c.__dict__ for c in found], "notes": notes}))
        return 0
    for c in found:
        print(c.line())
    for n in notes:
        print(n)
    if not found:
        print("no GenICam camera found")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("cameras", help="list the GenICam cameras (pylon, GenTL producers) this computer finds")
    c.add_argument("--config", default=None, help="configuration file (TOML) whose [camera] cti producers to load")
    c.add_argument("--cti", action="append", default=[], metavar="FILE",
                   help="a GenTL producer (.cti) to load (repeatable; default: [camera] cti, else "
                        "GENICAM_GENTL64_PATH)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=_cameras)
