"""Command line: one of the two composition roots (the other is ``ui/app.py``).

``inspector`` alone opens the window; ``inspector run`` inspects headless. Every error a user can
act on ends as one line on stderr and exit code 2; the traceback goes to the log file only.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path

from inspector.core.errors import InspectorError
from inspector.core.secrets import redact  # loaded before any signal handler can log (no import mid-log)

log = logging.getLogger("inspector")

EXIT_USER_ERROR = 2


def setup_logging(verbose: bool = False) -> Path | None:
    """Log file (with tracebacks) in the data folder; only warnings, one line each, on stderr. Both with
    passwords masked; the data folder owner-only (``secure_data_home``)."""
    from inspector.core.home import data_home, secure_data_home

    secure_data_home()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(_OneLine("%(levelname)s: %(message)s"))
    root.addHandler(console)
    path = None
    try:
        logs = data_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / "inspector.log"
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
        fh.setFormatter(_Masked("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        root.addHandler(fh)
    except OSError:
        pass
    return path


class _Masked(logging.Formatter):
    """No password in a log line (a camera's or a database's URL, a secret read from the environment)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _OneLine(_Masked):
    """No tracebacks on the console: the log file keeps them."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


def build_parser() -> argparse.ArgumentParser:
    from inspector.cli import model_cmds, run_cmd

    p = argparse.ArgumentParser(prog="inspector", description="Offline visual inspection for factory lines. "
                                "Without a command, opens the inspection window.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress on the console too")
    run_cmd.add_source_options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run_cmd.register(sub)
    model_cmds.register(sub)
    for extra in _optional_command_modules():
        extra.register(sub)
    return p


def _optional_command_modules() -> list:
    import importlib

    mods = []
    for name in ("report_cmds", "admin_cmds", "corpus_cmds", "data_cmds", "compare_cmds", "tune_cmd", "camera_cmds",
                 "station_cmds", "federate_cmds"):
        try:
            mods.append(importlib.import_module(f"inspector.cli.{name}"))
        except ModuleNotFoundError as e:
            if e.name != f"inspector.cli.{name}":
                raise
    return mods


EXIT_SIGNAL = {2: 130, 15: 143}  # SIGINT, SIGTERM: the shell's 128 + signal number


def _exit_now(signum, frame) -> None:  # noqa: ARG001
    """Ctrl+C or SIGTERM while the command line is read and its modules load: nothing is open, so leave at once."""
    import os

    os.write(2, b"interrupted while starting: nothing was recorded\n")
    os._exit(EXIT_SIGNAL.get(signum, 130))


def _interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt(signum)


def catch_stops(handler) -> list:
    """SIGINT and SIGTERM (where there is one) to ``handler``, whatever the parent left them as (a shell's
    background job inherits SIGINT ignored, which would lose a Ctrl+C sent to it); returns what was there."""
    import signal

    sigs = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    before = [(s, signal.getsignal(s)) for s in sigs]
    for s in sigs:
        signal.signal(s, handler)
    return before


def _restore(before: list) -> None:
    import signal

    for s, h in before:
        signal.signal(s, h if h is not None else signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    before = catch_stops(_exit_now)
    try:
        return _main(argv)
    finally:
        _restore(before)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    setup_logging(getattr(a, "verbose", False))
    catch_stops(_interrupt)  # a command that must close what it opened takes them over (``inspector run``)
    func = getattr(a, "func", None)
    try:
        if func is None:
            from inspector.cli.run_cmd import open_window

            return open_window(a)
        return func(a)
    except InspectorError as e:
        log.debug("user error", exc_info=True)
        logging.getLogger("inspector.core.errors").info("%s", e, exc_info=True)
        print(f"error: {redact(str(e))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as e:
        print("interrupted", file=sys.stderr)
        return EXIT_SIGNAL.get(e.args[0] if e.args and isinstance(e.args[0], int) else 2, 130)


if __name__ == "__main__":
    sys.exit(main())
