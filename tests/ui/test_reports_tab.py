"""The reports tab over a known QC database: the figures equal SQL counts, exports write (or, cancelled,
leave nothing), and the GUI thread never waits for them."""

from __future__ import annotations

import csv
import datetime as dt
import threading

import pytest
from PySide6.QtCore import QDateTime, QRunnable

from tests.conftest import signed
from tests.reports.conftest import T0, build_qc_db
from ui.reports.tab import ReportsTab, period
from ui.review.service import Database


@pytest.fixture(scope="module")
def qc(tmp_path_factory):
    return build_qc_db(tmp_path_factory.mktemp("reports-tab"), n=48)


@pytest.fixture
def tab(qtbot, qc):
    t = ReportsTab(Database(qc.url, qc.path.parent))
    qtbot.addWidget(t)
    t.resize(1400, 850)
    t.show()
    qtbot.waitUntil(lambda: t.idle and t.run.count() > 0, timeout=15_000)
    yield t
    t.shutdown()


def show_period(qtbot, t: ReportsTab, since: dt.datetime, until: dt.datetime) -> None:
    t.since.setDateTime(QDateTime.fromSecsSinceEpoch(int(since.timestamp())))
    t.until.setDateTime(QDateTime.fromSecsSinceEpoch(int(until.timestamp())))
    t.choose("custom")
    qtbot.waitUntil(lambda: t.idle and t.data is not None and t.data.totals.inspected > 0, timeout=15_000)


def tile(t: ReportsTab, key: str) -> str:
    return t.tiles[key].value.text()


def test_totals_equal_the_database(qtbot, qc, tab):
    show_period(qtbot, tab, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=5))
    final = qc.final_counts()
    n = qc.sql("SELECT count(*) FROM inspections")[0][0]
    assert tile(tab, "inspected") == f"{n:,}"
    for key, verdict in (("pass", "PASS"), ("fail", "FAIL"), ("review", "REVIEW"), ("not_inspected", "NOT_INSPECTED")):
        assert tile(tab, key) == f"{final[verdict]:,}", key
    judged = n - final["NOT_INSPECTED"]
    assert tile(tab, "yield") == f"{final['PASS'] / judged * 100:.1f} %"
    overrides = qc.sql("SELECT count(*) FROM reviews WHERE action = 'override'")[0][0]
    escapes = qc.sql("SELECT count(*) FROM inspections i WHERE i.verdict = 'PASS' AND (SELECT r.new_verdict FROM "
                     "reviews r WHERE r.inspection_id = i.id ORDER BY r.id DESC LIMIT 1) = 'FAIL'")[0][0]
    reviewed = qc.sql("SELECT count(DISTINCT inspection_id) FROM reviews")[0][0]
    assert (tile(tab, "overrides"), tile(tab, "escapes"), tile(tab, "reviewed")) == (str(overrides), str(escapes),
                                                                                     str(reviewed))
    # the charts hold the report's series: a bar per defect class and per hour
    labels = {lab for (lab,) in qc.sql("SELECT DISTINCT d.label FROM detections d JOIN inspections i ON "
                                       "i.id = d.inspection_id WHERE coalesce((SELECT r.new_verdict FROM reviews r "
                                       "WHERE r.inspection_id = i.id ORDER BY r.id DESC LIMIT 1), i.verdict) IN "
                                       "('FAIL', 'REVIEW')")}
    assert set(tab.pareto.series.names) == labels
    assert len(tab.yield_chart.series.bars) == 3  # 48 parts, 3.5 minutes apart: three hours
    # one run: the same figures; a period with nothing in it: zeros
    tab.choose("run")
    qtbot.waitUntil(lambda: tab.idle and tab.data.run_id is not None, timeout=15_000)
    assert tile(tab, "inspected") == f"{n:,}" and tile(tab, "fail") == f"{final['FAIL']:,}"
    tab.choose("24h")
    qtbot.waitUntil(lambda: tab.idle and tab.data.run_id is None, timeout=15_000)
    assert tile(tab, "inspected") == "0" and tab.pareto.series is None


def test_export_csv_writes_every_inspection(qtbot, qc, tab, tmp_path):
    show_period(qtbot, tab, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=5))
    out = tmp_path / "out" / "report.csv"
    tab.export("csv", out)
    assert tab.jobbar.running  # the GUI thread did not wait for it
    qtbot.waitUntil(lambda: not tab.jobbar.running, timeout=30_000)
    assert out.is_file(), tab.jobbar.text.text()
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) - 1 == qc.sql("SELECT count(*) FROM inspections")[0][0]
    assert "Wrote" in tab.jobbar.text.text() and tab.jobbar.open.isVisible() and tab.jobbar.folder == out.parent
    assert (out.parent / "report_detections.csv").is_file()


def test_export_pdf(qtbot, tab, tmp_path):
    show_period(qtbot, tab, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=5))
    out = tmp_path / "report.pdf"
    tab.export("pdf", out)
    qtbot.waitUntil(lambda: not tab.jobbar.running, timeout=60_000)
    assert out.read_bytes()[:5] == b"%PDF-", tab.jobbar.text.text()


class Gate(QRunnable):
    """Holds the export pool's one thread until released, so that Cancel comes before the export runs."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def run(self) -> None:
        self.release.wait(30)


def test_cancel_leaves_no_file(qtbot, tab, tmp_path):
    show_period(qtbot, tab, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=5))
    gate = Gate()
    tab.jobs.start(gate)
    out = tmp_path / "cancelled.csv"
    tab.export("csv", out)
    assert tab.jobbar.cancel.isEnabled()
    tab.jobbar.cancel.click()
    gate.release.set()
    qtbot.waitUntil(lambda: not tab.jobbar.running, timeout=30_000)
    assert "Cancelled" in tab.jobbar.text.text()
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one
    assert all(b.isEnabled() for b in tab.export_buttons.values())


@pytest.mark.parametrize("choice, since, until", [
    ("24h", dt.datetime(2026, 5, 3, 12, 30), None),
    ("today", dt.datetime(2026, 5, 4, 0, 0), None),
    ("yesterday", dt.datetime(2026, 5, 3, 0, 0), dt.datetime(2026, 5, 4, 0, 0)),
    ("7d", dt.datetime(2026, 4, 27, 12, 30), None),
    ("run", None, None),
])
def test_period_choices(choice, since, until):
    now = dt.datetime(2026, 5, 4, 12, 30).astimezone()
    got = period(choice, now, now, now)
    want = tuple(None if t is None else t.astimezone() for t in (since, until))
    assert got == want


def test_writing_a_report_file_needs_a_signed_in_qc_once_the_station_has_users(qtbot, tmp_path):
    """Issue 12.7 in the window: as on the command line, a report is a QC action."""
    from db import UserRepo, open_database, session_factory
    from inspector.core.auth import Role
    from tests.reports.conftest import build_qc_db
    from ui.reports.tab import ReportsTab
    from ui.review.service import Database

    qc = build_qc_db(tmp_path, n=12, seed=5)
    engine = open_database(qc.url)
    with session_factory(engine).begin() as s:
        UserRepo.add(s, None, "boss", "admin", "scrypt$test")
        UserRepo.add(s, signed("boss", Role.ADMIN), "anna", "qc", "scrypt$test")
    engine.dispose()
    tab = ReportsTab(Database(qc.url, tmp_path))
    qtbot.addWidget(tab)
    out = tmp_path / "r.csv"
    tab.export("csv", out)
    qtbot.waitUntil(lambda: not tab.jobbar.running, timeout=10_000)
    assert not out.exists()
    tab.actor = signed("anna", Role.QC)
    tab.export("csv", out)
    qtbot.waitUntil(lambda: not tab.jobbar.running, timeout=10_000)
    assert out.exists()
    tab.shutdown()
