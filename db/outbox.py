"""Store-and-forward: while the database server cannot be reached, a station keeps inspecting into a local
SQLite outbox and forwards the backlog, in order and exactly once, when the server answers again.

An entry is an inspection's rows (with the unique key made when it was written first) or a run's end. A forward
commits a chunk on the server, then deletes it here; if the acknowledgement of that commit is lost, the next
forward finds the keys already stored and skips them, so nothing is doubled. Images are written to the station's
image folder (a local disk) before the entry, exactly as for a direct write, and are never removed for a write
whose outcome is unknown.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.repositories.inspections import InspectionRepo, Rows
from db.repositories.runs import RunRepo
from inspector.core.errors import StorageError

log = logging.getLogger(__name__)

CHUNK = 200


def unreachable(exc: BaseException) -> bool:
    """True for a failure of the connection to a database server (down, restarting, network), where the
    outcome of a commit in flight is unknown; False for SQLite and for errors in the statement itself."""
    e: BaseException | None = exc
    while e is not None and not isinstance(e, SQLAlchemyError):
        e = e.__cause__
    if not isinstance(e, DBAPIError):
        return False
    if e.connection_invalidated:
        return True
    orig = getattr(e, "orig", None)
    module = type(orig).__module__ if orig is not None else ""
    if module.startswith("sqlite3"):
        return False
    name = type(orig).__name__
    text = str(orig).lower()
    return name in ("OperationalError", "InterfaceError") and any(
        s in text for s in ("connect", "server closed", "terminating connection", "connection", "shutting down",
                            "the database system is", "timeout", "broken pipe", "no route"))


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$dt" in value:
        return dt.datetime.fromisoformat(value["$dt"])
    return value


def _dumps(entry: Rows) -> str:
    row, boxes = entry
    return json.dumps({"row": {k: _encode(v) for k, v in row.items()},
                       "boxes": [{k: _encode(v) for k, v in b.items()} for b in boxes]})


def _loads(text: str) -> Rows:
    d = json.loads(text)
    return ({k: _decode(v) for k, v in d["row"].items()}, [{k: _decode(v) for k, v in b.items()} for b in d["boxes"]])


class Outbox:
    """The backlog of one station for one database, in a local SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # appends and the count
        self._sending = threading.Lock()  # one forward at a time; an append never waits for a hung server
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute("CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                            "kind TEXT NOT NULL, run_id INTEGER NOT NULL, payload TEXT NOT NULL)")
            self._size = self._count()
        except (OSError, sqlite3.Error) as e:
            raise StorageError(f"Cannot open the local outbox {self.path} ({e}); free some space or make its "
                               "folder writable.") from e

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        return con

    def _count(self) -> int:
        con = self._connect()
        try:
            return int(con.execute("SELECT count(*) FROM pending").fetchone()[0])
        finally:
            con.close()

    def size(self) -> int:
        """Entries waiting (inspections and run ends)."""
        return self._size

    def image_paths(self) -> set[str]:
        """The images the waiting inspections name (not orphans, though no row on the server names them yet)."""
        con = self._connect()
        try:
            rows = con.execute("SELECT payload FROM pending WHERE kind = 'inspection'").fetchall()
        finally:
            con.close()
        return {p for (text,) in rows if (p := _loads(text)[0].get("image_path"))}

    def put(self, run_id: int, entries: Sequence[Rows]) -> None:
        """Append inspections, durably, after everything already waiting."""
        self._append([("inspection", run_id, _dumps(e)) for e in entries])

    def put_end(self, run_id: int, reason: str, ended_at: dt.datetime) -> None:
        self._append([("end", run_id, json.dumps({"reason": reason, "ended_at": ended_at.isoformat()}))])

    def _append(self, rows: list[tuple[str, int, str]]) -> None:
        with self._lock:
            try:
                con = self._connect()
                try:
                    con.execute("BEGIN IMMEDIATE")
                    con.executemany("INSERT INTO pending (kind, run_id, payload) VALUES (?, ?, ?)", rows)
                    con.execute("COMMIT")
                finally:
                    con.close()
            except (OSError, sqlite3.Error) as e:
                raise StorageError(f"The database server cannot be reached and the local outbox {self.path} "
                                   f"cannot be written either ({e}); free some space there.") from e
            self._size += len(rows)

    def forward(self, sessions: sessionmaker[Session]) -> int:
        """Send everything waiting to the database, oldest first, each chunk in one transaction; returns how many
        entries went. Raises SQLAlchemyError when the server fails again (what went before stays sent)."""
        sent = 0
        with self._sending:
            while True:
                con = self._connect()
                try:
                    chunk = con.execute("SELECT id, kind, run_id, payload FROM pending ORDER BY id LIMIT ?",
                                        (CHUNK,)).fetchall()
                finally:
                    con.close()
                if not chunk:
                    break
                with sessions() as s, s.begin():
                    _send(s, chunk)
                con = self._connect()
                try:
                    con.execute("DELETE FROM pending WHERE id <= ?", (chunk[-1][0],))
                finally:
                    con.close()
                sent += len(chunk)
                with self._lock:
                    self._size = max(0, self._size - len(chunk))
        if sent:
            log.warning("forwarded %d waiting record(s) from the outbox %s", sent, self.path)
        return sent


def _send(session: Session, chunk: list[tuple[int, str, int, str]]) -> None:
    """One chunk, in order: inspections whose key is stored already are skipped (their commit went through)."""
    batch: list[Rows] = []

    def flush() -> None:
        if not batch:
            return
        have = InspectionRepo.existing_uids(session, [r["uid"] for r, _ in batch if r.get("uid")])
        todo = [e for e in batch if e[0].get("uid") not in have]
        if len(todo) < len(batch):
            log.info("outbox: %d record(s) were stored already (their acknowledgement was lost)",
                     len(batch) - len(todo))
        InspectionRepo.add_rows(session, todo)
        batch.clear()

    for _id, kind, run_id, payload in chunk:
        if kind == "inspection":
            batch.append(_loads(payload))
            continue
        flush()
        end = json.loads(payload)
        RunRepo.end(session, run_id, end["reason"], dt.datetime.fromisoformat(end["ended_at"]))
    flush()
