"""QC reports (PDF, HTML, CSV) and the review data-set export, rendered from plain values.

No database here: ``db.reporting`` and ``db.export`` produce the values, ``station.reports`` (called by
``inspector report`` and the reports screen) hands them to these writers. Every writer writes its file
whole or not at all, and stops (``Cancelled``) when its ``cancel`` event is set.
"""

from dataclasses import dataclass
from pathlib import Path

from inspector.reports.csv_report import COLUMNS, DETECTION_COLUMNS, detections_path, write_csv
from inspector.reports.data import (
    Box,
    ExportRow,
    Failure,
    ModelUsed,
    ParetoItem,
    ReportData,
    Totals,
    YieldPoint,
)
from inspector.reports.dataset import DatasetSummary, PartForTraining, ReviewStep, write_yolo_dataset
from inspector.reports.output import Cancelled


@dataclass(frozen=True)
class ReportFormat:
    """One report format: its name (``--format``), the file suffixes it is known by, what a person reads."""

    name: str
    suffixes: tuple[str, ...]
    label: str
    rows: bool  # True: one row per inspection (CSV); False: a drawn report from ``ReportData``


# The one table the command line's choices, the Reports tab's buttons and ``station.reports`` share.
FORMATS: dict[str, ReportFormat] = {f.name: f for f in (
    ReportFormat("pdf", (".pdf",), "PDF", rows=False),
    ReportFormat("html", (".html", ".htm"), "HTML", rows=False),
    ReportFormat("csv", (".csv",), "CSV", rows=True),
)}


def format_for(path: Path, asked: str | None = None) -> ReportFormat:
    """The format asked for, else the one the file's suffix names, else PDF."""
    if asked is not None:
        if asked not in FORMATS:
            raise ValueError(f"expected a report format among {sorted(FORMATS)}, got {asked!r}")
        return FORMATS[asked]
    suffix = path.suffix.lower()
    return next((f for f in FORMATS.values() if suffix in f.suffixes), FORMATS["pdf"])


def write_pdf(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """See ``inspector.reports.pdf_report.write_pdf`` (imported on use: reportlab is slow to import)."""
    from inspector.reports.pdf_report import write_pdf as impl

    impl(*args, **kwargs)


def write_html(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """See ``inspector.reports.html_report.write_html``."""
    from inspector.reports.html_report import write_html as impl

    impl(*args, **kwargs)


__all__ = ["COLUMNS", "DETECTION_COLUMNS", "FORMATS", "Box", "Cancelled", "DatasetSummary", "ExportRow",
           "Failure", "ReportFormat", "format_for", "ModelUsed", "ParetoItem", "PartForTraining", "ReportData",
           "ReviewStep", "Totals", "YieldPoint",
           "detections_path", "write_csv", "write_html", "write_pdf", "write_yolo_dataset"]
