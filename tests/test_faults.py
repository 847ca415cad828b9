"""Faults found from outside that lost parts (issue 25): file names of any bytes, a copied database, the small
items (signals at start-up, a camera index, a camera password, a run that does not exist, a missing folder, a
stale ``.part`` file, a cut stream, a read-only copy), and a record that blocks instead of failing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inspector.core.names import name_bytes, readable, shown
from inspector.sources.opening import FolderSource

POSIX = os.name == "posix"


def _cli(*args: str, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), **kw)


# --- 1. file names of any bytes ------------------------------------------------------------------------------

@pytest.mark.skipif(not POSIX, reason="a file name of arbitrary bytes exists on POSIX file systems only")
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_a_name_of_any_bytes_is_utf8_text_that_gives_its_bytes_back(raw):
    text = shown(os.fsdecode(raw))
    text.encode("utf-8")  # no surrogate left: a seal, SQLite and PostgreSQL take it
    assert name_bytes(text) == raw
    assert readable(text) == text  # the database's last guard leaves a shown name as it is


@pytest.mark.parametrize(("raw", "text"), [(b"part_01.jpg", "part_01.jpg"), (b"caf\xc3\xa9.jpg", "café.jpg"),
                                           (b"part\xff\xfe.jpg", "part\\xff\\xfe.jpg"),
                                           (b"a\nb.jpg", "a\\x0ab.jpg"), (b"back\\slash.jpg", "back\\\\slash.jpg")])
def test_readable_forms(raw, text):
    if not POSIX and raw != raw.decode("utf-8", "ignore").encode():
        pytest.skip("bytes that are not UTF-8 make no file name here")
    assert shown(os.fsdecode(raw)) == text


@pytest.mark.skipif(not POSIX, reason="a file name of arbitrary bytes exists on POSIX file systems only")
def test_a_folder_source_reads_a_non_utf8_name_as_a_part_with_its_bytes_kept(tmp_path, part_image):
    ok, data = cv2.imencode(".jpg", part_image)
    raw = os.fsencode(tmp_path) + b"/part\xff\xfe.jpg"
    with open(raw, "wb") as f:
        f.write(data.tobytes())
    frame = FolderSource(tmp_path).read()
    assert frame is not None and frame.ok and frame.error is None
    frame.name.encode("utf-8")
    assert "part\\xff\\xfe.jpg" in frame.name
    assert name_bytes(frame.name) == os.fsencode(Path(os.fsdecode(raw)).resolve())


@pytest.mark.skipif(not POSIX, reason="a file name of arbitrary bytes exists on POSIX file systems only")
def test_a_non_utf8_file_name_does_not_end_the_folder_run(tmp_path, part_image):
    """Before: the seal encoded the name, a traceback, exit 1, the rest of the folder not read."""
    folder = tmp_path / "parts"
    folder.mkdir()
    ok, data = cv2.imencode(".jpg", part_image)
    names = [b"a_first.jpg", b"m_\xff\xfe.jpg", b"m_\xc3(.png", b"z_last.jpg"]
    for n in names:
        with open(os.fsencode(folder) + b"/" + n, "wb") as f:
            f.write(data.tobytes() if n.endswith(b".jpg") else b"not a png")
    db = tmp_path / "n.db"
    r = _cli("run", "--source", str(folder), "--db", f"sqlite:///{db}", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stdout + r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 4, summary
    con = sqlite3.connect(db)
    stored = [row[0] for row in con.execute("SELECT frame_name FROM inspections ORDER BY seq")]
    con.close()
    assert sorted(name_bytes(s).rsplit(b"/", 1)[1] for s in stored) == sorted(names)
    assert "m_\\xff\\xfe.jpg" in r.stdout  # the readable form on screen
    v = _cli("audit", "verify", "--db", f"sqlite:///{db}")
    assert v.returncode == 0, v.stdout + v.stderr  # the seals cover the names as recorded
