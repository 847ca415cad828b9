"""QC reports (PDF, HTML, CSV) and the review data-set export, rendered from plain values.

No database here: ``db.reporting`` and ``db.export`` produce the values, a composition root
(``inspector report``, the reports screen) hands them to these writers. Every writer writes its file
whole or not at all, and stops (``Cancelled``) when its ``cancel`` event is set.
"""

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

FORMATS = ("pdf", "html", "csv")


def write_pdf(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """See ``inspector.reports.pdf_report.write_pdf`` (imported on use: reportlab is slow to import)."""
    from inspector.reports.pdf_report import write_pdf as impl

    impl(*args, **kwargs)


def write_html(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    """See ``inspector.reports.html_report.write_html``."""
    from inspector.reports.html_report import write_html as impl

    impl(*args, **kwargs)


__all__ = ["COLUMNS", "DETECTION_COLUMNS", "FORMATS", "Box", "Cancelled", "DatasetSummary", "ExportRow", "Failure",
           "ModelUsed", "ParetoItem", "PartForTraining", "ReportData", "ReviewStep", "Totals", "YieldPoint",
           "detections_path", "write_csv", "write_html", "write_pdf", "write_yolo_dataset"]
