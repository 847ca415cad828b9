"""The report's two charts as reportlab drawings: a defect Pareto (bars + cumulative line) and yield over time."""

from __future__ import annotations

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, String
from reportlab.lib import colors

from inspector.reports.data import ParetoItem, YieldPoint, bucket_labels, count_axis

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
BAR = colors.HexColor("#3e6fb0")
LINE = colors.HexColor("#d9822b")
GRID = colors.HexColor("#d9dee3")
GOOD = colors.HexColor("#2f8f5b")
BAD = colors.HexColor("#c0392b")


def _chart(width: float, height: float, values: list[float], names: list[str], value_max: float | None,
           step: float | None) -> tuple[Drawing, VerticalBarChart]:
    d = Drawing(width, height)
    bc = VerticalBarChart()
    bc.x, bc.y = 42, 38
    bc.width, bc.height = width - 90, height - 58
    bc.data = [values]
    bc.strokeColor = None
    bc.bars[0].fillColor = BAR
    bc.bars[0].strokeColor = None
    # reportlab scales barWidth and groupSpacing to fill each category: keep bars at most ~36 pt wide
    frac = min(0.75, 36 / (bc.width / max(1, len(values))))
    bc.barWidth, bc.barSpacing = 10, 0
    bc.groupSpacing = 10 * (1 - frac) / frac
    va = bc.valueAxis
    va.valueMin = 0
    if value_max is not None:
        va.valueMax = value_max
    if step is not None:
        va.valueStep = step
    va.labels.fontName, va.labels.fontSize, va.labels.fillColor = "Helvetica", 7, MUTED
    va.strokeColor = MUTED
    va.visibleGrid = True
    va.gridStrokeColor = GRID
    va.gridStrokeWidth = 0.5
    ca = bc.categoryAxis
    ca.categoryNames = names
    ca.labels.fontName, ca.labels.fontSize, ca.labels.fillColor = "Helvetica", 7, INK
    ca.strokeColor = MUTED
    ca.tickDown = 2
    d.add(bc)
    return d, bc


def pareto_drawing(items: tuple[ParetoItem, ...], width: float, height: float = 190) -> Drawing:
    """Bars: boxes per defect class, most frequent first; line: cumulative share (right axis, %)."""
    counts = [float(p.count) for p in items]
    top, step = count_axis(max(counts) * 1.08 if counts else 1.0)
    d, bc = _chart(width, height, counts, [p.label for p in items], top, step)
    bc.barLabelFormat = "%d"
    bc.barLabels.fontName, bc.barLabels.fontSize, bc.barLabels.fillColor = "Helvetica", 7, INK
    bc.barLabels.nudge = 6
    if len(items) > 6:
        bc.categoryAxis.labels.angle = 30
        bc.categoryAxis.labels.boxAnchor = "ne"
    n = max(1, len(items))
    slot = bc.width / n
    pts: list[float] = []
    for i, p in enumerate(items):
        pts += [bc.x + slot * (i + 0.5), bc.y + bc.height * p.cumulative_pct / 100.0]
    if pts:
        d.add(PolyLine(pts, strokeColor=LINE, strokeWidth=1.6))
        for i in range(0, len(pts), 2):
            d.add(Circle(pts[i], pts[i + 1], 2.2, fillColor=LINE, strokeColor=colors.white, strokeWidth=0.5))
    right = bc.x + bc.width
    d.add(Line(right, bc.y, right, bc.y + bc.height, strokeColor=LINE, strokeWidth=0.8))
    for pct in (0, 25, 50, 75, 100):
        y = bc.y + bc.height * pct / 100
        d.add(Line(right, y, right + 3, y, strokeColor=LINE, strokeWidth=0.8))
        d.add(String(right + 5, y - 2.5, f"{pct}%", fontName="Helvetica", fontSize=7, fillColor=LINE))
    d.add(String(bc.x - 34, bc.y + bc.height + 8, "boxes", fontName="Helvetica", fontSize=7, fillColor=MUTED))
    d.add(String(right - 20, bc.y + bc.height + 8, "cumulative", fontName="Helvetica", fontSize=7, fillColor=LINE))
    return d


def yield_drawing(points: tuple[YieldPoint, ...], hours: int, width: float, height: float = 180) -> Drawing:
    """Yield per hour or shift as bars (0-100%); buckets with nothing judged are left empty."""
    values = [p.totals.yield_pct if p.totals.yield_pct is not None else 0.0 for p in points]
    names = bucket_labels(points)
    d, bc = _chart(width, height, values, names, 100, 20)
    for i, v in enumerate(values):
        bc.bars[(0, i)].fillColor = GOOD if v >= 95 else (LINE if v >= 80 else BAD)
    bc.categoryAxis.labels.angle = 30
    bc.categoryAxis.labels.boxAnchor = "ne"
    bc.categoryAxis.labels.dy = -2
    d.add(String(bc.x - 34, bc.y + bc.height + 8, "yield %", fontName="Helvetica", fontSize=7, fillColor=MUTED))
    lx = bc.x + bc.width - 150
    for k, (c, t) in enumerate(((GOOD, ">= 95%"), (LINE, "80-95%"), (BAD, "< 80%"))):
        x = lx + k * 52
        d.add(Line(x, bc.y + bc.height + 10, x + 10, bc.y + bc.height + 10, strokeColor=c, strokeWidth=5))
        d.add(String(x + 13, bc.y + bc.height + 7.5, t, fontName="Helvetica", fontSize=7, fillColor=MUTED))
    return d
