"""Reports and the training export, built from the record: the queries of ``db`` in, the writers of
``inspector.reports`` out. Both fronts (``inspector report``, the Reports and Review screens) call these."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.export import (
    count_inspections,
    count_training_parts,
    iter_export_rows,
    iter_training_parts,
    training_classes,
)
from db.reporting import report_data
from db.repositories.queries import DayFilter
from inspector.reports import (
    DatasetSummary,
    ReportData,
    format_for,
    write_csv,
    write_html,
    write_pdf,
    write_yolo_dataset,
)
from inspector.reports.dataset import GoodPartsSummary, write_good_pictures

Progress = Callable[[int, int], None]


def make_report(sessions: sessionmaker[Session], fmt: str, out: Path, *, since: dt.datetime | None = None,
                until: dt.datetime | None = None, run_id: int | None = None, image_root: Path | None = None,
                progress: Progress | None = None, cancel: threading.Event | None = None,
                day: DayFilter | None = None) -> ReportData | int:
    """Write one report (``fmt`` pdf, html or csv) to ``out``, whole or not at all.

    Returns the ReportData drawn (pdf, html) or the number of CSV rows. ``cancel`` stops it with
    ``inspector.reports.Cancelled`` and no file left behind.
    """
    kind = format_for(out, fmt)
    with sessions() as s, s.begin():
        if kind.rows:
            total = count_inspections(s, since, until, run_id, day)
            n, _ = write_csv(out, iter_export_rows(s, since, until, run_id, day=day), total, progress, cancel)
            return n
        data = report_data(s, since, until, run_id, day=day)
    (write_pdf if kind.name == "pdf" else write_html)(data, out, image_root, cancel)
    return data


def export_dataset(sessions: sessionmaker[Session], out: Path, image_root: Path, *, since: dt.datetime | None = None,
                   until: dt.datetime | None = None, reviewed_only: bool = False, progress: Progress | None = None,
                   cancel: threading.Event | None = None) -> DatasetSummary:
    """Write the reviewed parts of the period as a YOLO data set in ``out`` (a new or empty folder)."""
    with sessions() as s, s.begin():
        classes = training_classes(s, since, until)
        total = count_training_parts(s, since, until, reviewed_only)
        parts = iter_training_parts(s, since, until, reviewed_only)
        return write_yolo_dataset(out, parts, classes, image_root, total, progress, cancel)


def export_good_parts(sessions: sessionmaker[Session], out: Path, image_root: Path, *, product: str | None = None,
                      since: dt.datetime | None = None, until: dt.datetime | None = None,
                      progress: Progress | None = None, cancel: threading.Event | None = None) -> GoodPartsSummary:
    """Copy the pictures of the parts QC confirmed good (of ``product`` when given) into ``out``: the normal
    pictures an anomaly model learns from (``inspector train --kind anomaly --data OUT``)."""
    with sessions() as s, s.begin():
        total = count_training_parts(s, since, until, True, product)
        parts = iter_training_parts(s, since, until, True, product=product)
        return write_good_pictures(out, parts, image_root, total, progress, cancel)
