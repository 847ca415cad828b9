"""The review table over 2,500 inspections in two runs: each filter shows what an SQL query says, and the
keyset pages (100 rows) step forwards and back to the right rows."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QDateTime, Qt

from tests.conftest import QC, staff
from ui.review.service import Database
from ui.review.tab import PAGE_SIZE, ReviewTab

T0 = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.timezone.utc)
N = 2500
CLASSES = ("scratch", "dent", "stain", "crack")
SHA = "ef" * 32


def build(folder: Path) -> str:
    """2,500 parts (two runs; pairs share a timestamp, so the keyset's id tie-break matters), boxes, reviews."""
    from sqlalchemy import text

    from db import InspectionRepo, ModelRepo, ReviewRepo, RunRepo, open_database, session_factory
    from inspector.core.types import Detection, Detections, Inspection, Verdict

    url = f"sqlite:///{folder / 'table.db'}"
    engine = open_database(url)
    sessions = session_factory(engine)
    rng = np.random.default_rng(3)
    with sessions() as s, s.begin():
        mv = ModelRepo.get_or_create(s, "parts-t", "/m/parts-t.pt", SHA, list(CLASSES))
        runs = [RunRepo.start(s, f"folder:{k}", "{}", "default", mv.id, f"line-{k}", "part").id for k in (1, 2)]
    items: dict[int, list] = {runs[0]: [], runs[1]: []}
    for k in range(N):
        t = T0 + dt.timedelta(seconds=20 * (k // 2))
        r = rng.random()
        verdict = Verdict.PASS if r < 0.6 else Verdict.FAIL if r < 0.85 else Verdict.REVIEW if r < 0.97 \
            else Verdict.NOT_INSPECTED
        dets = None
        if verdict != Verdict.NOT_INSPECTED:
            boxes = [] if verdict == Verdict.PASS else [
                Detection(int(c), CLASSES[c], 0.3 + 0.6 * float(rng.random()), 10.0, 10.0, 50.0, 40.0)
                for c in rng.choice(len(CLASSES), size=int(rng.integers(1, 3)), replace=False)]
            dets = Detections(tuple(boxes), 320, 240, 4.0, SHA)
        insp = Inspection(k, "folder", verdict, ("why",), dets, t, 9.0, f"p{k:05d}.jpg", SHA)
        items[runs[0] if k < 1200 else runs[1]].append((insp, None))
    ids: list[int] = []
    with sessions() as s, s.begin():
        for run_id, batch in items.items():
            ids += InspectionRepo.add_many(s, run_id, batch)
    with sessions() as s, s.begin():
        staff(s)
        for n, iid in enumerate(ids[::13]):
            machine = s.execute(text("SELECT verdict FROM inspections WHERE id=:i"),
                                {"i": iid}).scalar()
            if n % 3 == 0 and machine != "REVIEW":  # a REVIEW part needs a decision, not a confirm
                ReviewRepo.add(s, iid, QC(), "confirm")
            else:
                to = "PASS" if machine != "PASS" else "FAIL"
                ReviewRepo.add(s, iid, QC(), "override", to, "checked")
                if n % 5 == 0:  # reviewed twice: the latest review counts
                    ReviewRepo.add(s, iid, QC("qc-ben"), "override", machine, "second look")
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def table_db(tmp_path_factory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("review-table")
    return build(folder), folder


def expected(path: Path, since=None, until=None, final=None, machine=None, label=None, run=None,
             reviewed=None) -> list[int]:
    conds, args = ["1=1"], []
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    if since is not None:
        conds.append("i.created_at >= ?")
        args.append(since.astimezone(dt.timezone.utc).strftime(fmt))
    if until is not None:
        conds.append("i.created_at < ?")
        args.append(until.astimezone(dt.timezone.utc).strftime(fmt))
    if final is not None:
        conds.append("coalesce((SELECT r.new_verdict FROM reviews r WHERE r.inspection_id = i.id ORDER BY r.id DESC "
                     "LIMIT 1), i.verdict) = ?")
        args.append(final)
    if machine is not None:
        conds.append("i.verdict = ?")
        args.append(machine)
    if label is not None:
        conds.append("EXISTS (SELECT 1 FROM detections d WHERE d.inspection_id = i.id AND d.label = ?)")
        args.append(label)
    if run is not None:
        conds.append("i.run_id = ?")
        args.append(run)
    if reviewed is not None:
        conds.append(("" if reviewed else "NOT ") + "EXISTS (SELECT 1 FROM reviews r WHERE r.inspection_id = i.id)")
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute(f"SELECT i.id FROM inspections i WHERE {' AND '.join(conds)} "
                                          "ORDER BY i.created_at DESC, i.id DESC", args)]
    finally:
        con.close()


@pytest.fixture
def tab(qtbot, table_db):
    url, folder = table_db
    t = ReviewTab(Database(url, folder))
    qtbot.addWidget(t)
    t.resize(1400, 800)
    t.show()
    t.activateWindow()
    qtbot.waitUntil(lambda: t.idle and t.model.rowCount() > 0 and t.filters.run.count() == 3, timeout=15_000)
    yield t
    t.shutdown()


def wait(qtbot, t: ReviewTab) -> None:
    qtbot.waitUntil(lambda: t.idle, timeout=15_000)


def every_id(qtbot, t: ReviewTab) -> list[int]:
    """The ids of every page, from the first, by the "Older" button."""
    ids = [r.id for r in t.model.rows]
    while t.has_next:
        t.older.click()
        wait(qtbot, t)
        ids += [r.id for r in t.model.rows]
    return ids


SINCE = T0 + dt.timedelta(minutes=40)
UNTIL = T0 + dt.timedelta(minutes=95)


@pytest.mark.parametrize("values", [
    {"final": "FAIL"},
    {"machine": "PASS", "final": "FAIL"},  # the model said PASS, QC said FAIL: escapes
    {"machine": "FAIL", "final": "PASS"},
    {"final": "NOT_INSPECTED"},
    {"label": "dent"},
    {"run": 2},
    {"reviewed": True},
    {"reviewed": False, "label": "scratch", "run": 1},
    {"final": "REVIEW", "label": "crack"},
    {"period": (SINCE, UNTIL)},
    {"period": (SINCE, UNTIL), "final": "PASS", "reviewed": True},
], ids=lambda v: "-".join(f"{k}={v[k] if k != 'period' else 'custom'}" for k in v))
def test_each_filter_shows_what_sql_says(qtbot, tab, table_db, values):
    f = tab.filters
    combos = {"final": f.final, "machine": f.machine, "label": f.label, "run": f.run, "reviewed": f.reviewed}
    sql_args = {}
    for name, value in values.items():
        if name == "period":
            since, until = value
            f.since.setDateTime(QDateTime.fromSecsSinceEpoch(int(since.timestamp())))
            f.until.setDateTime(QDateTime.fromSecsSinceEpoch(int(until.timestamp())))
            f.choose(f.period, "custom")
            sql_args.update(since=since, until=until)
        else:
            f.choose(combos[name], value)
            sql_args[name] = value
        wait(qtbot, tab)
    want = expected(table_db[1] / "table.db", **sql_args)
    assert 0 < len(want) < N
    assert tab.total == len(want)  # "rows 1–100 of N": the count matches what SQL says
    assert every_id(qtbot, tab) == want
    # back to "any": the whole table again
    for combo in combos.values():
        f.choose(combo, None)
    f.choose(f.period, None)
    wait(qtbot, tab)
    assert tab.page_index == 0 and tab.has_next and [r.id for r in tab.model.rows] == expected(
        table_db[1] / "table.db")[:PAGE_SIZE]


def test_keyset_pages_forwards_and_back(qtbot, tab, table_db):
    want = expected(table_db[1] / "table.db")
    assert len(want) == N
    page = lambda k: want[k * PAGE_SIZE:(k + 1) * PAGE_SIZE]  # noqa: E731
    assert [r.id for r in tab.model.rows] == page(0)
    assert not tab.newer.isEnabled() and tab.older.isEnabled()
    for k in (1, 2, 3):
        tab.older.click()
        wait(qtbot, tab)
        assert [r.id for r in tab.model.rows] == page(k)
    assert tab.page_label.text() == f"Page 4 · rows 301–400 of {N:,}"  # the total, counted once
    tab.newer.click()
    wait(qtbot, tab)
    assert [r.id for r in tab.model.rows] == page(2) and tab.page_index == 2
    # keys: ] is the next page, [ the previous; J on the last row goes on to the next page, Up on the first back
    qtbot.waitUntil(tab.isActiveWindow, timeout=5_000)
    qtbot.keyClick(tab.table, Qt.Key.Key_BracketRight)
    wait(qtbot, tab)
    qtbot.keyClick(tab.table, Qt.Key.Key_BracketLeft)
    wait(qtbot, tab)
    qtbot.keyClick(tab.table, Qt.Key.Key_BracketRight)
    wait(qtbot, tab)
    assert [r.id for r in tab.model.rows] == page(3)
    tab.select_row(PAGE_SIZE - 1)
    qtbot.keyClick(tab.table, Qt.Key.Key_J)
    wait(qtbot, tab)
    assert tab.page_index == 4 and tab.table.currentIndex().row() == 0 and tab.current_row().id == page(4)[0]
    qtbot.keyClick(tab.table, Qt.Key.Key_Up)
    wait(qtbot, tab)
    assert tab.page_index == 3 and tab.current_row().id == page(3)[-1]
    qtbot.waitUntil(lambda: tab.shown_current() is not None and tab.shown_current().row.id == page(3)[-1])
    # the last page: 2,500 rows are 25 full pages, and no "Older" after it
    while tab.has_next:
        tab.older.click()
        wait(qtbot, tab)
    assert tab.page_index == N // PAGE_SIZE - 1 and [r.id for r in tab.model.rows] == page(tab.page_index)
    assert not tab.older.isEnabled()
