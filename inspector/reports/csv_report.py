"""CSV export: one row per inspection, and one row per detection in ``<name>_detections.csv`` beside it.

UTF-8 with a byte-order mark and CRLF line ends, so Excel opens it with the right characters; times
in ISO 8601 (UTC). The reviewer's marks are in both: who decided what, why and when, and each box as
reviewed. Rows are streamed: memory stays flat however many there are.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterable
from pathlib import Path

from inspector.reports.data import ExportRow
from inspector.reports.output import Progress, atomic_files, check

COLUMNS = ("inspection_id", "time", "run_id", "station", "source", "frame", "machine_verdict", "final_verdict",
           "reviewed", "reasons", "latency_ms", "model_sha256", "image_path", "defects", "reviewer", "decision",
           "review_reason", "review_time", "product", "lot", "work_order", "shift")
DETECTION_COLUMNS = ("inspection_id", "time", "frame", "final_verdict", "label", "confidence", "x1", "y1", "x2", "y2",
                     "qc")  # qc: "" as the model found it, "false" (QC rejected it), "drawn" (QC added it)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY = 10_000


def detections_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_detections{out.suffix or '.csv'}")


def text(value: str | None) -> str:
    """Free text for a spreadsheet: a leading =, +, - or @ would run as a formula in Excel, so it is quoted."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA) else value


def inspection_line(r: ExportRow) -> list[object]:
    return [r.inspection_id, r.created_at.isoformat(), r.run_id, text(r.station), text(r.source), text(r.frame_name),
            r.machine_verdict, r.final_verdict, "yes" if r.reviewed else "no", text("; ".join(r.reasons)),
            f"{r.latency_ms:.2f}", r.model_sha256, text(r.image_path), r.defects, text(r.reviewer), r.decision,
            text(r.review_reason), r.reviewed_at.isoformat() if r.reviewed_at is not None else "",
            text(r.product), text(r.lot), text(r.work_order), r.shift]


def detection_lines(r: ExportRow) -> list[list[object]]:
    """The boxes as reviewed: the model's (marked "false" where QC rejected them) and those QC drew."""
    when, frame = r.created_at.isoformat(), text(r.frame_name)
    marks = r.box_marks or ("",) * len(r.boxes)
    lines: list[list[object]] = [[r.inspection_id, when, frame, r.final_verdict, b.label, f"{b.confidence:.4f}",
                                  f"{b.x1:.1f}", f"{b.y1:.1f}", f"{b.x2:.1f}", f"{b.y2:.1f}", mark]
                                 for b, mark in zip(r.boxes, marks, strict=True)]
    lines += [[r.inspection_id, when, frame, r.final_verdict, b.label, "", f"{b.x1:.1f}", f"{b.y1:.1f}",
               f"{b.x2:.1f}", f"{b.y2:.1f}", "drawn"] for b in r.drawn]
    return lines


def write_csv(out: Path, rows: Iterable[ExportRow], total: int | None = None, progress: Progress | None = None,
              cancel: threading.Event | None = None) -> tuple[int, int]:
    """Write both CSV files from ``rows`` (any order); returns (inspections, detections) written."""
    out = Path(out)
    n = n_boxes = 0
    with atomic_files(out, detections_path(out)) as (main_tmp, det_tmp), \
            open(main_tmp, "w", newline="", encoding="utf-8-sig") as fm, \
            open(det_tmp, "w", newline="", encoding="utf-8-sig") as fd:
        main, dets = csv.writer(fm), csv.writer(fd)
        main.writerow(COLUMNS)
        dets.writerow(DETECTION_COLUMNS)
        for r in rows:
            main.writerow(inspection_line(r))
            if r.boxes or r.drawn:
                lines = detection_lines(r)
                dets.writerows(lines)
                n_boxes += len(lines)
            n += 1
            if n % PROGRESS_EVERY == 0:
                check(cancel)
                if progress is not None:
                    progress(n, total or n)
        check(cancel)
        fm.flush()
        fd.flush()
    if progress is not None:
        progress(n, total or n)
    return n, n_boxes
