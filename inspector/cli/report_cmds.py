"""QC commands: ``inspector report``, ``inspector audit verify`` and ``inspector export-dataset``.

Wiring only: the figures come from ``station.reports`` (``db`` queries in, ``inspector.reports`` writers out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from inspector.cli.signin import db_user
from inspector.core.errors import ConfigError, StorageError
from inspector.reports import FORMATS

EXIT_TAMPERED = 1


def _time(text: str) -> dt.datetime:
    """An ISO 8601 date or time; without a zone it is taken as UTC."""
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or time such as 2026-11-28 or 2026-11-28T06:00, "
                                         f"got {text!r}") from None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=argparse.SUPPRESS, help="database URL (default: sqlite in the user's data folder)")
    p.add_argument("--config", default=argparse.SUPPRESS, help="configuration file (TOML), for the image folder")


def _add_user(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", default=None, help="the signed-in QC or admin user (needed once the station has users; "
                   "password from INSPECTOR_PASSWORD or asked for)")


def _add_period(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", type=_time, default=None, help="first time included (ISO 8601; UTC unless a zone "
                   "is given)")
    p.add_argument("--until", type=_time, default=None, help="end of the period, excluded (ISO 8601)")


def register(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    r = sub.add_parser("report", help="QC report of a period or a run as PDF, HTML or CSV")
    _add_db(r)
    _add_period(r)
    r.add_argument("--run", type=int, default=None, metavar="ID", help="only this run")
    r.add_argument("--product", default=None, help="only parts of this product")
    r.add_argument("--lot", default=None, help="only parts of this lot")
    r.add_argument("--station", default=None, help="only parts this station judged (a plant's stations share one "
                   "database)")
    r.add_argument("--shift", default=None, metavar="DATE/NAME", help="only parts of this shift, e.g. 2026-11-30/A "
                   "(a shift that crosses midnight belongs to the date it started)")
    r.add_argument("--format", choices=list(FORMATS), default=None,
                   help="output format (default: from the --out suffix, else pdf)")
    r.add_argument("--out", required=True, help="file to write; CSV also writes <name>_detections.csv beside it")
    _add_user(r)
    r.set_defaults(func=report)

    a = sub.add_parser("audit", help="audit trail commands")
    asub = a.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = asub.add_parser("verify", help="check the audit trail's hash chain; exit 1 when it was tampered with")
    _add_db(v)
    v.set_defaults(func=audit_verify)
    ad = asub.add_parser("adopt", help="an admin's word that this database is the right one after 'audit verify' "
                         "reported it as a copy, rolled back or restored (audited)")
    db_user(ad, "admin")
    ad.set_defaults(func=audit_adopt)

    e = sub.add_parser("export-dataset", help="reviewed parts as a YOLO training set (images/, labels/, classes.txt)")
    _add_db(e)
    _add_period(e)
    e.add_argument("--out", required=True, help="new or empty folder to write")
    e.add_argument("--reviewed-only", action="store_true", help="only parts that QC reviewed (default: every part "
                   "with a stored image, the machine's boxes standing where no review corrected them)")
    e.add_argument("--kind", default="detect", choices=["detect", "anomaly"], help="anomaly: the pictures of the "
                   "parts QC confirmed good, a folder for 'inspector train --kind anomaly --data'")
    e.add_argument("--product", default=None, help="with --kind anomaly: only the parts of this product")
    _add_user(e)
    e.set_defaults(func=export_dataset)


def _db_url(a: argparse.Namespace) -> str:
    from station import default_db_url

    return getattr(a, "db", None) or default_db_url()


def _open(url: str):  # noqa: ANN202
    """Engine and sessions of an existing database (a report never creates one)."""
    from db import mask_url, open_database, session_factory
    from db.failures import sqlite_path

    try:
        path = sqlite_path(url)
    except Exception:
        path = None
    if path is not None and not path.is_file():
        raise StorageError(f"No database at {path}; give the file that 'inspector run' wrote with --db "
                           f"(got {mask_url(url)}).")
    if path is not None and not _writable(path):  # a read-only copy: read as it is (no lock, no upgrade)
        from db.engine import open_read_only

        engine = open_read_only(url)
    else:
        engine = open_database(url)
    return engine, session_factory(engine)


def _writable(path: Path) -> bool:
    """Whether SQLite can open ``path`` to write (the file, and its folder for the WAL's files)."""
    import os

    return os.access(path, os.W_OK) and os.access(path.absolute().parent, os.W_OK)


def _check_run(sessions, run_id: int | None, url: str) -> None:  # noqa: ANN001
    """--run names a run of this database, else one sentence (exit 2), never an empty report."""
    if run_id is None:
        return
    from sqlalchemy import func, select

    from db import mask_url
    from db.schema import Run

    with sessions() as s:
        if s.get(Run, run_id) is not None:
            return
        last = s.scalar(select(func.max(Run.id)))
    have = f"its runs are 1 to {last}" if last else "it has no runs yet"
    raise ConfigError(f"--run {run_id}: no such run in {mask_url(url)} ({have}).")


def _image_root(url: str, a: argparse.Namespace) -> Path:
    from inspector.core.config import load_config
    from station import image_base

    return image_base(url, load_config(getattr(a, "config", None)))[0]


def _progress(label: str):  # noqa: ANN202
    last = [0.0]

    def show(n: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or n >= total:
            last[0] = now
            print(f"\r{label} {n}/{total}", end="\n" if n >= total else "", file=sys.stderr, flush=True)
    return show


def _check_period(a: argparse.Namespace) -> None:
    if a.since is not None and a.until is not None and a.until <= a.since:
        raise ConfigError(f"--until ({a.until.isoformat()}) must be after --since ({a.since.isoformat()}).")


def report(a: argparse.Namespace) -> int:
    from inspector.reports import ReportData, detections_path, format_for
    from station.reports import make_report

    _check_period(a)
    out = Path(a.out)
    fmt = format_for(out, a.format).name
    url = _db_url(a)
    engine, sessions = _open(url)
    started = time.monotonic()
    try:
        _check_run(sessions, a.run, url)
        _sign_in(a, sessions, "report")
        result = make_report(sessions, fmt, out, since=a.since, until=a.until, run_id=a.run,
                             image_root=_image_root(url, a), progress=_progress("rows"), day=_day(a))
        head = _chain_head(sessions)
    finally:
        engine.dispose()
    took = time.monotonic() - started
    if isinstance(result, ReportData):
        t = result.totals
        y = f"{t.yield_pct:.1f}%" if t.yield_pct is not None else "n/a"
        print(f"wrote {out}: {t.inspected} inspections, {t.passed} pass, {t.failed} fail, {t.review} review, "
              f"{t.not_inspected} not inspected; yield {y} ({took:.1f} s)")
    else:
        print(f"wrote {out} ({result} inspections) and {detections_path(out)} ({took:.1f} s)")
    print(head)
    return 0


def _day(a: argparse.Namespace):  # noqa: ANN202 - db.DayFilter, imported late like every db import here
    """--product, --lot, --shift and --station as a filter; a shift label is checked against the configuration's
    [shifts]."""
    from db import DayFilter
    from inspector.core.config import load_config
    from inspector.core.day import Shifts

    shift = a.shift
    if shift is not None:
        shift = Shifts(load_config(getattr(a, "config", None)).shifts).check_label(shift)
    return DayFilter(a.product or None, a.lot or None, shift, getattr(a, "station", None) or None)


def _sign_in(a: argparse.Namespace, sessions, action: str) -> None:  # noqa: ANN001
    """A QC action: signed in once the station has users (``inspector.core.auth``)."""
    from inspector.cli.signin import signed_in

    signed_in(a, sessions, action)


def _chain_head(sessions) -> str:  # noqa: ANN001
    """The audit chain's head, to be kept with the report and compared later ('audit verify' prints it too)."""
    from db import AuditRepo
    from db.repositories.audit import record_head

    with sessions() as s:
        n, h = AuditRepo.head(s)
        heads = AuditRepo.heads(s)
        record = record_head(s)
    lines = [f"audit chain head: entry {n}, sha256 {h}"] if n or not heads else []
    lines += [f"audit chain head of station {name}: entry {k}, sha256 {sha}" for name, k, sha in heads]
    lines.append(f"record head: sha256 {record} (the chain heads and every user, review, trust and promotion row)")
    return "\n".join(lines)


def audit_verify(a: argparse.Namespace) -> int:
    from db import AuditRepo

    engine, sessions = _open(_db_url(a))
    try:
        with sessions() as s, s.begin():
            rep = AuditRepo.verify(s)
        head = _chain_head(sessions)
    finally:
        engine.dispose()
    if rep.ok:
        print(f"audit log OK: {rep.entries} entries; inspections, reviews, users and trusted files sealed; users, "
              "reviews, trusted files and promotions match the entries that wrote them")
        for line in rep.stations + tuple(f"not checked: {n}" for n in rep.notes):
            print(f"  {line}")
        print(head)
        return 0
    print(f"audit log TAMPERED: {len(rep.problems)} problem(s) in {rep.entries} entries")
    for p in rep.problems:
        print(f"  - {p}")
    return EXIT_TAMPERED


def audit_adopt(a: argparse.Namespace) -> int:
    from db.head_record import adopt
    from db.writes import write
    from inspector.cli.signin import signed_in

    engine, sessions = _open(_db_url(a))
    try:
        actor = signed_in(a, sessions, "settings")
        was = write(sessions, lambda s: adopt(s, actor), "Adopting this database")
    finally:
        engine.dispose()
    print(f"adopted: this data folder now follows this database{f' (it said: {was})' if was else ''}")
    return 0


def export_dataset(a: argparse.Namespace) -> int:
    from station.reports import export_dataset as job

    _check_period(a)
    url = _db_url(a)
    engine, sessions = _open(url)
    try:
        _sign_in(a, sessions, "export")
        if a.kind == "anomaly":
            from station.reports import export_good_parts

            good = export_good_parts(sessions, Path(a.out), _image_root(url, a), product=a.product, since=a.since,
                                     until=a.until, progress=_progress("parts"))
            print(f"wrote {a.out}: {good.text()}")
            return 0
        summary = job(sessions, Path(a.out), _image_root(url, a), since=a.since, until=a.until,
                      reviewed_only=a.reviewed_only, progress=_progress("parts"))
    finally:
        engine.dispose()
    print(f"wrote {a.out}: {summary.text()}; classes: {', '.join(summary.classes) or '-'}")
    if summary.needs_box:
        print(f"note: {summary.needs_box} part(s) judged FAIL have no box; draw one in review (missed defect) "
              "to use them for training", file=sys.stderr)
    return 0
