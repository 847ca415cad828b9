"""The QC report as one self-contained HTML file: inline CSS, charts as inline SVG, images as data URIs."""

from __future__ import annotations

import base64
import threading
from html import escape
from pathlib import Path

from inspector.core.clock import zone_text
from inspector.core.identity import short_file
from inspector.reports.data import (
    ParetoItem,
    ReportData,
    YieldPoint,
    bucket_labels,
    count_axis,
    fmt_pct,
    fmt_time,
    models_text,
    period_text,
)
from inspector.reports.gallery import annotated_jpeg
from inspector.reports.output import atomic_files, check

CSS = """
body{font-family:Helvetica,Arial,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
main{max-width:920px;margin:0 auto;background:#fff;padding:28px 40px 40px;box-shadow:0 0 8px #d9dee3}
.band{background:#243b53;color:#fff;font:bold 12px Helvetica,Arial,sans-serif;letter-spacing:.08em;padding:8px 40px}
h1{color:#243b53;font-size:26px;margin:8px 0 14px}h2{color:#243b53;font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #bcccdc;padding-bottom:3px}
table.meta td{padding:2px 14px 2px 0;font-size:13px;vertical-align:top}table.meta td:first-child{color:#616e7c;
font-weight:bold;width:120px}
.kpis{display:flex;border-top:3px solid #243b53;background:#f0f4f8}.kpi{flex:1;text-align:center;padding:8px 0 10px;
border-right:1px solid #bcccdc}.kpi:last-child{border-right:0}.kpi .k{font-size:11px;color:#616e7c}
.kpi .v{font-size:24px;font-weight:bold}.pass{color:#2f8f5b}.fail{color:#c0392b}
table.grid{border-collapse:collapse;font-size:12px;margin-top:6px}table.grid th{background:#f0f4f8;text-align:left;
border-bottom:1.5px solid #243b53;padding:3px 12px}table.grid td{border-bottom:1px solid #d9dee3;padding:3px 12px}
table.grid td.n,table.grid th.n{text-align:right}.small{font-size:11px;color:#616e7c}
.gallery{display:grid;grid-template-columns:repeat(3,1fr);gap:14px}.gallery figure{margin:0}
.gallery img{width:100%;border:1px solid #d9dee3}.gallery figcaption{font-size:11px;color:#616e7c;margin-top:3px}
.noimg{height:120px;display:flex;align-items:center;justify-content:center;background:#f0f4f8;color:#616e7c;
font-size:12px}.sign{display:flex;gap:30px;margin-top:14px}.sign div{flex:1;font-size:12px;color:#616e7c;
font-weight:bold}.sign span{display:block;border-bottom:1px solid #616e7c;height:34px}
@media print{body{background:#fff}main{box-shadow:none}}
"""


def _svg_bars(values: list[float], names: list[str], vmax: float, step: float, colours: list[str], width: int = 840,
              height: int = 230, right_axis: list[float] | None = None, unit: str = "") -> str:
    """Bars with a left value axis; ``right_axis`` draws a cumulative-percent line over them."""
    x0, y0, w, h = 50, 20, width - 100, height - 75
    n = max(1, len(values))
    slot = w / n
    bar = max(1.0, min(slot * 0.7, 48.0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} {height}" '
             f'font-family="Helvetica,Arial,sans-serif" font-size="10">']
    for k in range(round(vmax / step) + 1):
        v = step * k
        y = y0 + h - h * v / vmax
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#d9dee3"/>'
                     f'<text x="{x0 - 6}" y="{y + 3:.1f}" text-anchor="end" fill="#616e7c">{v:.0f}{unit}</text>')
    for i, (v, name) in enumerate(zip(values, names, strict=True)):
        bh = h * (v / vmax if vmax else 0)
        x = x0 + slot * i + (slot - bar) / 2
        parts.append(f'<rect x="{x:.1f}" y="{y0 + h - bh:.1f}" width="{bar:.1f}" height="{bh:.1f}" '
                     f'fill="{colours[i]}"><title>{escape(name)}: {v:.1f}{unit}</title></rect>')
        if name:
            cx = x0 + slot * (i + 0.5)
            parts.append(f'<text transform="translate({cx:.1f},{y0 + h + 12}) rotate(30)" '
                         f'fill="#1f2933">{escape(name)}</text>')
    parts.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#616e7c"/>')
    if right_axis is not None:
        pts = " ".join(f"{x0 + slot * (i + 0.5):.1f},{y0 + h - h * c / 100:.1f}" for i, c in enumerate(right_axis))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#d9822b" stroke-width="2"/>')
        for i, c in enumerate(right_axis):
            parts.append(f'<circle cx="{x0 + slot * (i + 0.5):.1f}" cy="{y0 + h - h * c / 100:.1f}" r="3" '
                         f'fill="#d9822b"><title>cumulative {c:.1f}%</title></circle>')
        for k in range(5):
            y = y0 + h - h * k / 4
            parts.append(f'<text x="{x0 + w + 6}" y="{y + 3:.1f}" fill="#d9822b">{25 * k}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def pareto_svg(items: tuple[ParetoItem, ...]) -> str:
    counts = [float(p.count) for p in items]
    top, step = count_axis(max(counts) * 1.08 if counts else 1.0)
    return _svg_bars(counts, [p.label for p in items], top, step, ["#3e6fb0"] * len(items),
                     right_axis=[p.cumulative_pct for p in items])


def yield_svg(points: tuple[YieldPoint, ...], hours: int) -> str:
    values = [p.totals.yield_pct or 0.0 for p in points]
    names = bucket_labels(points)
    colours = ["#2f8f5b" if v >= 95 else "#d9822b" if v >= 80 else "#c0392b" for v in values]
    return _svg_bars(values, names, 100.0, 25.0, colours, unit="%")


def _gallery(d: ReportData, image_root: Path | None, cancel: threading.Event | None) -> str:
    if not d.worst:
        return "<p>No part was judged FAIL in this period.</p>"
    figs = []
    for f in d.worst:
        check(cancel)
        jpg = annotated_jpeg(f, image_root, max_side=360, quality=75)
        pic = (f'<img alt="inspection {f.inspection_id}" src="data:image/jpeg;base64,'
               f'{base64.b64encode(jpg).decode()}">' if jpg else '<div class="noimg">image not stored</div>')
        top = max(f.boxes, key=lambda b: b.confidence) if f.boxes else None
        what = f"{escape(top.label)} {top.confidence:.2f}" if top else "-"
        figs.append(f"<figure>{pic}<figcaption><b>{escape(f.name)}</b> &middot; {what}<br>"
                    f"{fmt_time(f.created_at, True)} &middot; <span title=\"{escape(f.frame_name)}\">"
                    f"{escape(short_file(f.frame_name))}</span></figcaption></figure>")
    return f'<div class="gallery">{"".join(figs)}</div>'


def render_html(d: ReportData, image_root: Path | None = None, cancel: threading.Event | None = None) -> str:
    t = d.totals
    meta = [("Period", period_text(d)), ("Station", ", ".join(d.stations) or "-"), ("Model version", models_text(d)),
            ("Runs", ", ".join(map(str, d.runs)) or "-"), *((("Scope", d.scope),) if d.scope else ()),
            ("Generated", f"{fmt_time(d.generated_at)} {zone_text(d.generated_at)}")]
    kpis = [("Inspected", str(t.inspected), ""), ("Pass", str(t.passed), "pass"), ("Fail", str(t.failed), "fail"),
            ("Review", str(t.review), ""), ("Not inspected", str(t.not_inspected), ""),
            ("Yield", fmt_pct(t.yield_pct), "")]
    body = ['<div class="band">INSPECTOR &nbsp;|&nbsp; QC REPORT</div><main>', "<h1>Quality Inspection Report</h1>",
            '<table class="meta">', *(f"<tr><td>{k}</td><td>{escape(v)}</td></tr>" for k, v in meta), "</table>",
            '<h2>Summary</h2><div class="kpis" id="totals">',
            *(f'<div class="kpi"><div class="k">{k}</div><div class="v {c}" data-key="{k.lower()}">{v}</div></div>'
              for k, v, c in kpis), "</div>",
            '<table class="grid"><tr><th>Parts reviewed by QC</th><th>Overrides</th>'
            "<th>Escapes found in review (machine PASS, QC FAIL)</th></tr>"
            f'<tr><td class="n">{d.reviewed}</td><td class="n">{d.overrides}</td><td class="n">{d.escapes}</td></tr>'
            "</table>",
            '<p class="small">Counts are final verdicts, after QC review. '
            "Yield = pass / (inspected - not inspected).</p>",
            "<h2>Defect Pareto (parts judged FAIL or REVIEW)</h2>"]
    if d.pareto:
        total = sum(p.count for p in d.pareto)
        body += [pareto_svg(d.pareto), '<table class="grid"><tr><th>Defect class</th><th class="n">Boxes</th>'
                 '<th class="n">Share</th><th class="n">Cumulative</th></tr>',
                 *(f'<tr><td>{escape(p.label)}</td><td class="n">{p.count}</td><td class="n">'
                   f'{fmt_pct(p.count / total * 100)}</td><td class="n">{fmt_pct(p.cumulative_pct)}</td></tr>'
                   for p in d.pareto), "</table>"]
    else:
        body.append("<p>No defects were found on failed or review parts in this period.</p>")
    if d.by_station:  # a plant's stations (issue 30)
        body += ['<h2>By station</h2><table class="grid"><tr><th>Station</th><th class="n">Inspected</th>'
                 '<th class="n">Pass</th><th class="n">Fail</th><th class="n">Review</th><th class="n">Not insp.</th>'
                 '<th class="n">Yield</th><th>Top defects</th></tr>',
                 *(f'<tr><td>{escape(f.station)}</td><td class="n">{f.totals.inspected}</td><td class="n">'
                   f'{f.totals.passed}</td><td class="n">{f.totals.failed}</td><td class="n">{f.totals.review}</td>'
                   f'<td class="n">{f.totals.not_inspected}</td><td class="n">{fmt_pct(f.totals.yield_pct)}</td><td>'
                   f'{escape(", ".join(f"{p.label} {p.count}" for p in f.pareto[:3]) or "-")}</td></tr>'
                   for f in d.by_station), "</table>"]
    body.append(f"<h2>Yield per {escape(d.bucket_name)}</h2>")
    body.append(yield_svg(d.yield_series, d.bucket_hours) if d.yield_series else "<p>No inspections.</p>")
    body += ["<h2>Worst failures (highest model confidence)</h2>", _gallery(d, image_root, cancel),
             '<h2>Sign-off</h2><div class="sign"><div>Reviewed by<span></span></div>'
             '<div style="flex:.5">Date<span></span></div><div>Signature<span></span></div></div></main>']
    title = f"Quality Inspection Report {period_text(d)}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write_html(d: ReportData, out: Path, image_root: Path | None = None,
               cancel: threading.Event | None = None) -> None:
    text = render_html(d, image_root, cancel)
    check(cancel)
    with atomic_files(Path(out)) as (tmp,):
        tmp.write_text(text, encoding="utf-8")
