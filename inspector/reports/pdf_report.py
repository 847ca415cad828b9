"""The QC report as PDF (reportlab, built-in Helvetica): header, totals, Pareto, yield, worst failures, sign-off."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from inspector.core.clock import zone_text
from inspector.core.identity import short_file
from inspector.reports.data import ReportData, fmt_pct, fmt_time, models_text, period_text
from inspector.reports.gallery import annotated_jpeg
from inspector.reports.output import atomic_files, check
from inspector.reports.pdf_charts import BAD, GOOD, INK, MUTED, pareto_drawing, yield_drawing

ACCENT = colors.HexColor("#243b53")
PALE = colors.HexColor("#f0f4f8")
RULE = colors.HexColor("#bcccdc")
MARGIN = 16 * mm
WIDTH = A4[0] - 2 * MARGIN - 12  # the frame keeps 6 pt of padding on each side

_S = {
    "title": ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=19, leading=23, textColor=ACCENT),
    "h2": ParagraphStyle("h2", fontName="Helvetica-Bold", fontSize=12, leading=15, textColor=ACCENT,
                         spaceBefore=10, spaceAfter=5),
    "body": ParagraphStyle("body", fontName="Helvetica", fontSize=9, leading=12, textColor=INK),
    "small": ParagraphStyle("small", fontName="Helvetica", fontSize=7.5, leading=9.5, textColor=MUTED),
    "cell": ParagraphStyle("cell", fontName="Helvetica", fontSize=8.5, leading=11, textColor=INK, alignment=TA_LEFT),
    "key": ParagraphStyle("key", fontName="Helvetica-Bold", fontSize=8.5, leading=11, textColor=MUTED),
}


def _p(text: str, style: str = "body") -> Paragraph:
    return Paragraph(text, _S[style])


def _header(d: ReportData) -> list:
    runs = ", ".join(str(r) for r in d.runs) or "-"
    rows = [("Period", period_text(d)), ("Station", ", ".join(d.stations) or "-"),
            ("Model version", models_text(d)), ("Run" if len(d.runs) == 1 else "Runs", runs),
            *((("Scope", d.scope),) if d.scope else ()),
            ("Generated", f"{fmt_time(d.generated_at)} {zone_text(d.generated_at)}")]
    t = Table([[_p(k, "key"), _p(escape(v), "cell")] for k, v in rows], colWidths=[32 * mm, WIDTH - 32 * mm])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                           ("TOPPADDING", (0, 0), (-1, -1), 2), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return [_p("Quality Inspection Report", "title"), Spacer(1, 3 * mm), t, Spacer(1, 2 * mm)]


def _totals(d: ReportData) -> list:
    t = d.totals
    heads = ["Inspected", "Pass", "Fail", "Review", "Not inspected", "Yield"]
    vals = [str(t.inspected), str(t.passed), str(t.failed), str(t.review), str(t.not_inspected), fmt_pct(t.yield_pct)]
    kpi = Table([heads, vals], colWidths=[WIDTH / 6] * 6)
    kpi.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica", 8), ("TEXTCOLOR", (0, 0), (-1, 0), MUTED),
        ("FONT", (0, 1), (-1, 1), "Helvetica-Bold", 16), ("TEXTCOLOR", (0, 1), (-1, 1), INK),
        ("TEXTCOLOR", (1, 1), (1, 1), GOOD), ("TEXTCOLOR", (2, 1), (2, 1), BAD),
        ("ALIGN", (0, 0), (-1, -1), "CENTER"), ("BACKGROUND", (0, 0), (-1, -1), PALE),
        ("LINEABOVE", (0, 0), (-1, 0), 2, ACCENT), ("BOTTOMPADDING", (0, 1), (-1, 1), 8),
        ("TOPPADDING", (0, 0), (-1, 0), 6), ("LINEAFTER", (0, 0), (-2, -1), 0.5, RULE),
    ]))
    rv = Table([["Parts reviewed by QC", "Overrides", "Escapes found in review (machine PASS, QC FAIL)"],
                [str(d.reviewed), str(d.overrides), str(d.escapes)]],
               colWidths=[WIDTH * 0.3, WIDTH * 0.2, WIDTH * 0.5])
    rv.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica", 8), ("TEXTCOLOR", (0, 0), (-1, 0), MUTED),
        ("FONT", (0, 1), (-1, 1), "Helvetica-Bold", 11), ("ALIGN", (0, 0), (-1, -1), "CENTER"),
        ("LINEBELOW", (0, 1), (-1, 1), 0.5, RULE), ("TEXTCOLOR", (2, 1), (2, 1), BAD if d.escapes else INK),
    ]))
    note = _p("Counts are final verdicts, after QC review. Yield = pass / (inspected - not inspected).", "small")
    return [_p("Summary", "h2"), kpi, Spacer(1, 3 * mm), rv, Spacer(1, 1.5 * mm), note]


def _pareto(d: ReportData) -> list:
    head = _p("Defect Pareto (parts judged FAIL or REVIEW)", "h2")
    if not d.pareto:
        return [head, _p("No defects were found on failed or review parts in this period.")]
    rows = [["Defect class", "Boxes", "Share", "Cumulative"]]
    total = sum(p.count for p in d.pareto)
    rows += [[p.label, str(p.count), fmt_pct(p.count / total * 100), fmt_pct(p.cumulative_pct)] for p in d.pareto]
    t = Table(rows, colWidths=[50 * mm, 25 * mm, 25 * mm, 25 * mm], hAlign="LEFT")
    t.setStyle(_grid_style())
    return [KeepTogether([head, pareto_drawing(d.pareto, WIDTH)]), Spacer(1, 2 * mm), t]


def _stations(d: ReportData) -> list:
    """Yield and the top defects per station, when the report covers a plant's stations (issue 30)."""
    if not d.by_station:
        return []
    rows = [["Station", "Inspected", "Pass", "Fail", "Review", "Not insp.", "Yield", "Top defects"]]
    for f in d.by_station:
        t = f.totals
        top = ", ".join(f"{p.label} {p.count}" for p in f.pareto[:3]) or "-"
        rows.append([f.station, str(t.inspected), str(t.passed), str(t.failed), str(t.review), str(t.not_inspected),
                     fmt_pct(t.yield_pct), top])
    table = Table(rows, colWidths=[28 * mm, 18 * mm, 14 * mm, 14 * mm, 14 * mm, 16 * mm, 16 * mm, 50 * mm],
                  hAlign="LEFT")
    table.setStyle(_grid_style())
    note = _p("The plant's figures are the summary and Pareto above; each station's part of them here.", "small")
    return [KeepTogether([_p("By station", "h2"), table, note])]


def _grid_style() -> TableStyle:
    return TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8), ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK), ("BACKGROUND", (0, 0), (-1, 0), PALE),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT), ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ])


def _yield(d: ReportData) -> list:
    head = _p(f"Yield per {d.bucket_name}", "h2")
    if not d.yield_series:
        return [head, _p("No inspections in this period.")]
    judged = [p for p in d.yield_series if p.totals.judged]
    worst = min(judged, key=lambda p: p.totals.yield_pct or 0.0) if judged else None
    note = ""
    if worst is not None:
        note = (f"Lowest: {fmt_pct(worst.totals.yield_pct)} in the {d.bucket_name} from {fmt_time(worst.start)} "
                f"({worst.totals.failed} fail, {worst.totals.review} review of {worst.totals.inspected}).")
    return [KeepTogether([head, yield_drawing(d.yield_series, d.bucket_hours, WIDTH), _p(note, "small")])]


def _gallery(d: ReportData, image_root: Path | None, cancel: threading.Event | None) -> list:
    head = _p("Worst failures (highest model confidence)", "h2")
    if not d.worst:
        return [head, _p("No part was judged FAIL in this period.")]
    cols, cell_w = 3, WIDTH / 3
    cells: list[object] = []
    for f in d.worst:
        check(cancel)
        jpg = annotated_jpeg(f, image_root)
        if jpg is not None:
            img = Image(io.BytesIO(jpg))
            scale = min((cell_w - 4 * mm) / img.imageWidth, 45 * mm / img.imageHeight)
            img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
            pic = img
        else:
            pic = _p("<i>image not stored</i>", "small")
        top = max(f.boxes, key=lambda b: b.confidence) if f.boxes else None
        what = f"{escape(top.label)} {top.confidence:.2f}" if top else "-"
        cap = _p(f"<b>{escape(f.name)}</b> &middot; {what}<br/>{fmt_time(f.created_at, True)} &middot; "
                 f"{escape(short_file(f.frame_name))}", "small")
        cells.append([pic, cap])
    rows = [cells[i:i + cols] for i in range(0, len(cells), cols)]
    rows[-1] += [""] * (cols - len(rows[-1]))
    t = Table(rows, colWidths=[cell_w] * cols)
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    return [head, t]


def _signoff() -> list:
    line = "_" * 34
    t = Table([["Reviewed by", "Date", "Signature"], [line, "_" * 18, line]],
              colWidths=[WIDTH * 0.4, WIDTH * 0.2, WIDTH * 0.4])
    t.setStyle(TableStyle([("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9), ("TEXTCOLOR", (0, 0), (-1, 0), MUTED),
                           ("FONT", (0, 1), (-1, 1), "Helvetica", 9), ("TEXTCOLOR", (0, 1), (-1, 1), RULE),
                           ("TOPPADDING", (0, 1), (-1, 1), 18), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return [KeepTogether([_p("Sign-off", "h2"), t])]


def _page(canvas, doc) -> None:  # noqa: ANN001 - reportlab's callback
    canvas.saveState()
    w, h = A4
    canvas.setFillColor(ACCENT)
    canvas.rect(0, h - 7 * mm, w, 7 * mm, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont("Helvetica-Bold", 8)
    canvas.drawString(MARGIN, h - 4.7 * mm, "INSPECTOR  |  QC REPORT")
    canvas.setStrokeColor(RULE)
    canvas.line(MARGIN, 11 * mm, w - MARGIN, 11 * mm)
    canvas.setFillColor(MUTED)
    canvas.setFont("Helvetica", 7)
    canvas.drawString(MARGIN, 7 * mm, doc.footer)
    canvas.drawRightString(w - MARGIN, 7 * mm, f"Page {doc.page}")
    canvas.restoreState()


def write_pdf(data: ReportData, out: Path, image_root: Path | None = None,
              cancel: threading.Event | None = None) -> None:
    """Write the report to ``out`` (whole or not at all). ``image_root``: the folder image paths are relative to."""
    story = _header(data) + _totals(data) + _pareto(data) + _stations(data) + _yield(data)
    story += _gallery(data, image_root, cancel) + _signoff()
    check(cancel)
    with atomic_files(Path(out)) as (tmp,):
        doc = SimpleDocTemplate(str(tmp), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=14 * mm,
                                bottomMargin=16 * mm, title="Quality Inspection Report", author="Inspector",
                                subject=period_text(data))
        doc.footer = (f"Period {period_text(data)}  |  generated "
                      f"{fmt_time(data.generated_at)} {zone_text(data.generated_at)}")
        doc.build(story, onFirstPage=_page, onLaterPages=_page)
