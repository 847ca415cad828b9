"""Plant commands (issue 30): ``inspector station key`` (this station's Ed25519 key pair, made on first use) and
``inspector station add NAME --key FILE --db URL`` (register a station's public key in the plant's database),
``inspector station list`` (stations, keys, the model each runs) and ``inspector station alarms [--station S]``.

Who may add a station: on a database with no users (a new plant), whoever runs the command, as for every first
step of a fresh install; once users exist, a signed-in admin (``--user``, password asked for or from
INSPECTOR_PASSWORD).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from inspector.cli.signin import db_user, open_sessions, signed_in
from inspector.core.errors import ConfigError


def _key(a: argparse.Namespace) -> int:
    from inspector.core.signing import ensure_key_pair, fingerprint, private_path, read_public

    pub = ensure_key_pair()
    print(f"private key {private_path()} (owner-only; never leaves this PC)")
    print(f"fingerprint {fingerprint(read_public(pub))}")
    print(pub)  # the last line: the public key file to register with 'inspector station add NAME --key FILE'
    return 0


def _add(a: argparse.Namespace) -> int:
    from db.repositories.stations import StationRepo
    from db.writes import write
    from inspector.core.signing import read_public

    public = read_public(Path(a.key))
    engine, sessions = open_sessions(a)
    try:
        actor = signed_in(a, sessions, "stations")
        try:
            st, new = write(sessions, lambda s: StationRepo.add(s, actor, a.name, public), f"Adding station {a.name}")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        print(f"station {st.name} {'added' if new else 'was registered already'}: key {st.fingerprint}")
        return 0
    finally:
        engine.dispose()


def _list(a: argparse.Namespace) -> int:
    from db.repositories.stations import StationRepo

    engine, sessions = open_sessions(a)
    try:
        with sessions() as s:
            models = StationRepo.models(s)
            reports = {r.station: r for r in StationRepo.statuses(s)}
            for st in StationRepo.list(s):
                how, model = models.get(st.name, ("", ""))
                runs = {"run": f"runs {model}", "take": f"runs {model}", "refused": f"REFUSED {model}"}.get(how, "-")
                print(f"{st.name:<20} key {st.fingerprint}  {st.entries:>6} audit entries  {runs}  added by "
                      f"{st.added_by}  {backlog_text(reports.get(st.name))}")
        return 0
    finally:
        engine.dispose()


def backlog_text(r, now=None) -> str:
    """A station's outbox backlog as it last reported it (issue 30), with the report's age."""
    import datetime as dt

    if r is None:
        return "outbox: no report"
    age = ((now or dt.datetime.now(dt.timezone.utc)) - r.reported_at).total_seconds()
    state = "run ended" if r.state == "ended" else f"run {r.run_id}"
    return f"outbox {r.backlog} (peak {r.peak}, {state}) reported {max(0, round(age))} s ago"


def _alarms(a: argparse.Namespace) -> int:
    from db.repositories.alarms import AlarmRepo

    engine, sessions = open_sessions(a)
    try:
        with sessions() as s:
            found = AlarmRepo.list(s, a.station, a.open, a.limit)
    finally:
        engine.dispose()
    for x in found:
        ack = f"acknowledged by {x.acked_by}" if x.acked_by else "OPEN"
        print(f"{x.id:>6} {x.raised_at:%Y-%m-%d %H:%M} {x.station:<16} {x.rule:<14} {ack:<28} {x.message}")
    if not found:
        print("no alarms" + (f" on station {a.station}" if a.station else ""))
    return 0


def register(sub) -> None:  # noqa: ANN001 - argparse's private subparsers type
    p = sub.add_parser("station", help="the plant's stations: this station's signing key, registering stations")
    ssub = p.add_subparsers(dest="station_command", metavar="ACTION", required=True)
    k = ssub.add_parser("key", help="this station's Ed25519 key pair (made on first use); prints the public key "
                                    "file's path last")
    k.set_defaults(func=_key)
    add = ssub.add_parser("add", help="register a station's public key in the plant's database (an admin once "
                                      "users exist)")
    add.add_argument("name", help="the station's name, as its [station] name")
    add.add_argument("--key", required=True, help="the station's public key file ('inspector station key' prints it)")
    db_user(add, "admin")
    add.set_defaults(func=_add)
    ls = ssub.add_parser("list", help="the registered stations, their key fingerprints, the model each runs and its "
                                      "outbox backlog as last reported")
    ls.add_argument("--db", default=None, help="the plant's database (default: sqlite in the user's data folder)")
    ls.set_defaults(func=_list)
    al = ssub.add_parser("alarms", help="alarms of the plant's stations, newest first (--station: one station)")
    al.add_argument("--db", default=None, help="the plant's database (default: sqlite in the user's data folder)")
    al.add_argument("--station", default=None, help="only this station's alarms")
    al.add_argument("--open", action="store_true", help="only alarms not acknowledged yet")
    al.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    al.set_defaults(func=_alarms)
