"""Review and reporting at scale: a 1,000,000-inspection SQLite database, the review table's pages and a
report over 100,000 inspections.

Builds the database in a temporary folder with Core executemany in large batches (a deterministic
mix: ~90% PASS, 6% FAIL, 3% REVIEW, 1% NOT_INSPECTED over 60 days; boxes on FAIL and REVIEW parts;
~1% of parts reviewed), then measures, each as the 95th percentile of repeated queries (one warm-up):

- the newest page (``InspectionRepo.page``, no filter, 50 rows);
- filtered pages: FAIL with a scratch in the last 7 days, and "the model said PASS, QC said FAIL";
- a report (PDF, HTML, CSV) over the newest 100,000 inspections (a --since window).

Targets: pages < 100 ms, the report < 10 s. ``--json`` ends with one JSON line of the figures.

    python bench/review_scale.py [--rows 1000000] [--report-rows 100000] [--repeat 30] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inspector.core.privacy import guard_process  # noqa: E402 - the project root is on sys.path first

# isort: split
from sqlalchemy import insert  # noqa: E402

from db import InspectionFilter, InspectionRepo, open_database, session_factory  # noqa: E402
from db.schema import DetectionRecord, InspectionRecord, ModelVersion, Review, Run  # noqa: E402
from db.seal import review_fields, seal_values  # noqa: E402
from inspector.core.integrity import station_key  # noqa: E402
from station.reports import make_report  # noqa: E402

LABELS = (("scratch", 0.40), ("dent", 0.25), ("stain", 0.15), ("crack", 0.12), ("chip", 0.08))
SHA = "5e" * 32
DAYS = 60
BATCH = 20_000
END = dt.datetime(2026, 11, 28, 18, 0)  # naive UTC, as stored


def p95(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))]


def _images(folder: Path, n: int = 6) -> list[str]:
    """A few real part images for the report's gallery (paths relative to the database folder)."""
    import cv2
    import numpy as np

    from inspector.sources.synth import render_part

    rng = np.random.default_rng(1)
    out = []
    (folder / "bench-images").mkdir(exist_ok=True)
    for k in range(n):
        rel = f"bench-images/fail_{k}.jpg"
        cv2.imwrite(str(folder / rel), render_part(rng, defective=True).image)
        out.append(rel)
    return out


def build(url: str, folder: Path, rows: int, seed: int = 7) -> dict[str, float]:
    """Fill the database; returns timings and counts."""
    t0 = time.perf_counter()
    engine = open_database(url)
    images = _images(folder)
    rnd = random.Random(seed)
    labels = [x for x, _ in LABELS]
    weights = [w for _, w in LABELS]
    step = dt.timedelta(seconds=DAYS * 86400 / rows)
    start = END - step * rows
    n_det = n_rev = 0
    det_id = rev_id = 0
    k = station_key()  # reviews sealed as the station seals them: an unsealed review counts nowhere (issue 24)
    conn = engine.connect()
    conn.connection.driver_connection.execute("PRAGMA synchronous = OFF")  # the build only: the measures only read
    with conn, conn.begin():
        conn.execute(insert(ModelVersion.__table__), [{"id": 1, "name": "parts-v1", "path": "models/parts-v1",
                                                        "sha256": SHA, "classes": json.dumps(labels),
                                                        "created_at": start}])
        conn.execute(insert(Run.__table__), [{"id": d + 1, "source": "camera:0", "recipe": "{}",
                                              "recipe_name": "default", "model_id": 1, "station": "line-1",
                                              "mode": "part", "started_at": start + dt.timedelta(days=d),
                                              "ended_at": start + dt.timedelta(days=d + 1), "end_reason": "finished"}
                                             for d in range(DAYS)])
        per_run = max(1, rows // DAYS)
        for lo in range(0, rows, BATCH):
            insp, dets, revs = [], [], []
            for i in range(lo, min(rows, lo + BATCH)):
                r = rnd.random()
                v = "PASS" if r < 0.90 else "FAIL" if r < 0.96 else "REVIEW" if r < 0.99 else "NOT_INSPECTED"
                t = start + step * i
                iid = i + 1
                img = images[i % len(images)] if v == "FAIL" else None
                insp.append({"id": iid, "run_id": min(DAYS, i // per_run + 1), "seq": i % per_run, "created_at": t,
                             "verdict": v, "reasons": '["bench"]', "latency_ms": 8.0 + (i % 7),
                             "image_path": img, "frame_name": f"f{i:07d}.jpg", "model_sha256": SHA})
                if v in ("FAIL", "REVIEW"):
                    lo_c, hi_c = (0.5, 0.98) if v == "FAIL" else (0.25, 0.5)
                    for _ in range(1 + (rnd.random() < 0.3)):
                        det_id += 1
                        x, y = rnd.uniform(20, 220), rnd.uniform(20, 220)
                        dets.append({"id": det_id, "inspection_id": iid, "created_at": t,
                                     "cls": 0, "label": rnd.choices(labels, weights)[0],
                                     "confidence": rnd.uniform(lo_c, hi_c), "x1": x, "y1": y, "x2": x + 40,
                                     "y2": y + 30})
                reviewed = (v in ("FAIL", "REVIEW") and rnd.random() < 0.12) or (v == "PASS" and rnd.random() < 0.002)
                if reviewed:
                    new = {"PASS": "FAIL", "FAIL": rnd.choice(("FAIL", "PASS")),
                           "REVIEW": rnd.choice(("FAIL", "PASS"))}[v]
                    action = "confirm" if new == v else "override"
                    rev_id += 1
                    revs.append({"id": rev_id, "inspection_id": iid, "inspection_created_at": t, "reviewer": "qc",
                                 "created_at": t + dt.timedelta(hours=1), "action": action, "old_verdict": v,
                                 "new_verdict": new, "reason": "bench", "detail": "{}"})
                    revs[-1]["mac"] = seal_values(k, review_fields, revs[-1])
            conn.execute(insert(InspectionRecord.__table__), insp)
            if dets:
                conn.execute(insert(DetectionRecord.__table__), dets)
            if revs:
                conn.execute(insert(Review.__table__), revs)
            n_det += len(dets)
            n_rev += len(revs)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    took = time.perf_counter() - t0
    return {"build_s": round(took, 1), "rows_per_s": round((rows + n_det + n_rev) / took), "detections": n_det,
            "reviews": n_rev}


def timed(fn, repeat: int) -> list[float]:  # noqa: ANN001
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure_pages(sessions, repeat: int) -> dict[str, float]:  # noqa: ANN001
    def page(f: InspectionFilter | None):  # noqa: ANN202
        def run() -> None:
            with sessions() as s:
                rows = InspectionRepo.page(s, f, 50)
                assert rows is not None
        return run

    week = InspectionFilter(verdict="FAIL", label="scratch", since=END - dt.timedelta(days=7))
    escaped = InspectionFilter(machine_verdict="PASS", final_verdict="FAIL")
    figures = {"page": timed(page(None), repeat), "fail_scratch_7d": timed(page(week), repeat),
               "pass_then_fail": timed(page(escaped), repeat)}
    with sessions() as s:
        n_week = len(InspectionRepo.page(s, week, 50))
        n_esc = len(InspectionRepo.page(s, escaped, 50))
    out = {f"{k}_ms_p95": round(p95(v), 1) for k, v in figures.items()}
    out.update({f"{k}_ms_p50": round(statistics.median(v), 1) for k, v in figures.items()})
    out["filtered_page_ms_p95"] = max(out["fail_scratch_7d_ms_p95"], out["pass_then_fail_ms_p95"])
    out["filtered_rows"] = n_week + n_esc
    return out


def measure_report(sessions, folder: Path, report_rows: int) -> dict[str, float]:  # noqa: ANN001
    with sessions() as s:
        t = s.execute(InspectionRecord.__table__.select().with_only_columns(InspectionRecord.__table__.c.created_at)
                      .order_by(InspectionRecord.__table__.c.created_at.desc()).offset(report_rows - 1).limit(1)
                      ).scalar()
    since = t.replace(tzinfo=dt.timezone.utc) if t is not None else None
    out: dict[str, float] = {}
    for fmt in ("pdf", "html", "csv"):
        t0 = time.perf_counter()
        res = make_report(sessions, fmt, folder / f"report.{fmt}", since=since, image_root=folder)
        out[f"report_{fmt}_s"] = round(time.perf_counter() - t0, 2)
        if fmt == "pdf":
            out["report_inspections"] = res.totals.inspected  # type: ignore[union-attr]
    out["report_100k_s"] = max(out["report_pdf_s"], out["report_html_s"], out["report_csv_s"])
    out["report_all_formats_s"] = round(out["report_pdf_s"] + out["report_html_s"] + out["report_csv_s"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    guard_process()  # the offline guard: nothing this benchmark runs may call out
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="inspections in the database")
    ap.add_argument("--report-rows", type=int, default=100_000, help="inspections the report covers")
    ap.add_argument("--repeat", type=int, default=30, help="timed queries per page kind")
    ap.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    ap.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    a = ap.parse_args(argv)
    if a.rows < 1 or a.report_rows < 1:
        ap.error("--rows and --report-rows must be at least 1")
    with tempfile.TemporaryDirectory(prefix="review-scale-") as tmp:
        folder = a.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'bench.db'}"
        print(f"building {a.rows} inspections in {folder} ...", flush=True)
        fig: dict[str, float] = {"rows": a.rows, **build(url, folder, a.rows)}
        print(f"  built in {fig['build_s']} s ({fig['rows_per_s']:.0f} rows/s; {fig['detections']} detections, "
              f"{fig['reviews']} reviews)", flush=True)
        engine = open_database(url)
        sessions = session_factory(engine)
        fig.update(measure_pages(sessions, a.repeat))
        print(f"  newest page:   p95 {fig['page_ms_p95']} ms (p50 {fig['page_ms_p50']})")
        print(f"  FAIL+scratch, last 7 days: p95 {fig['fail_scratch_7d_ms_p95']} ms; "
              f"model PASS -> QC FAIL: p95 {fig['pass_then_fail_ms_p95']} ms", flush=True)
        fig.update(measure_report(sessions, folder, min(a.report_rows, a.rows)))
        engine.dispose()
        print(f"  report over {fig['report_inspections']} inspections: PDF {fig['report_pdf_s']} s, "
              f"HTML {fig['report_html_s']} s, CSV {fig['report_csv_s']} s")
        ok = fig["page_ms_p95"] < 100 and fig["filtered_page_ms_p95"] < 100 and fig["report_100k_s"] < 10
        print(f"targets (pages < 100 ms, report < 10 s): {'met' if ok else 'MISSED'}")
    if a.json:
        print(json.dumps(fig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
