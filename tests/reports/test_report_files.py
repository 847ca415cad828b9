"""``inspector report`` end to end: the PDF's text, the CSV and the HTML state the database's figures."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from db import open_database, session_factory
from inspector.cli import main
from inspector.reports import COLUMNS, Cancelled, detections_path, write_csv
from inspector.reports.data import ExportRow
from station.reports import make_report


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                              text=True).stdout
    from pypdf import PdfReader

    return "\n".join(p.extract_text() for p in PdfReader(path).pages)


def report(qc_db, tmp_path: Path, fmt: str, *extra: str) -> Path:
    out = tmp_path / f"report.{fmt}"
    assert main(["report", "--db", qc_db.url, "--format", fmt, "--out", str(out), *extra]) == 0
    assert out.stat().st_size > 0
    return out


def test_pdf_states_the_totals(qc_db, tmp_path):
    want = qc_db.final_counts()
    total = sum(want.values())
    text = pdf_text(report(qc_db, tmp_path, "pdf"))
    words = set(re.findall(r"[\w.%-]+", text))
    yield_pct = f"{100 * want['PASS'] / (total - want['NOT_INSPECTED']):.1f}%"
    for figure in (str(total), str(want["PASS"]), str(want["FAIL"]), yield_pct):
        assert figure in words, f"{figure} not in the PDF text"
    # the row of totals reads in the order of its headings
    assert re.search(rf"\b{total}\s+{want['PASS']}\s+{want['FAIL']}\s+{want['REVIEW']}\s+{want['NOT_INSPECTED']}\s+"
                     rf"{re.escape(yield_pct)}", text)
    for heading in ("Quality Inspection Report", "line-2", "parts-test", "Defect Pareto", "Yield per hour",
                    "Worst failures", "Reviewed by", "Signature"):
        assert heading in text


def test_pdf_embeds_the_worst_failures(qc_db, tmp_path):
    from pypdf import PdfReader

    pdf = PdfReader(report(qc_db, tmp_path, "pdf"))
    images = sum(len(p.images) for p in pdf.pages)
    assert images == 12


def test_csv_round_trips(qc_db, tmp_path):
    out = report(qc_db, tmp_path, "csv")
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads it as UTF-8
    with open(out, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    [(n,)] = qc_db.sql("SELECT count(*) FROM inspections")
    assert len(rows) == n and tuple(rows[0]) == COLUMNS
    by_id = {int(r["inspection_id"]): r for r in rows}
    final = dict(qc_db.sql("SELECT i.id, coalesce((SELECT r.new_verdict FROM reviews r WHERE r.inspection_id = i.id"
                           " ORDER BY r.id DESC LIMIT 1), i.verdict) FROM inspections i"))
    assert {i: r["final_verdict"] for i, r in by_id.items()} == final
    overridden = qc_db.ids[qc_db.reviewed_seqs[2]]  # machine FAIL, QC PASS
    assert (by_id[overridden]["machine_verdict"], by_id[overridden]["final_verdict"],
            by_id[overridden]["reviewed"]) == ("FAIL", "PASS", "yes")
    assert sum(r["reviewed"] == "yes" for r in rows) == len(qc_db.reviewed_seqs)
    assert [int(r["inspection_id"]) for r in rows] == sorted(by_id)  # oldest first
    assert rows[0]["time"].startswith("2026-03-02T06:00:00") and rows[0]["time"].endswith("+00:00")
    with open(detections_path(out), newline="", encoding="utf-8-sig") as f:
        dets = list(csv.DictReader(f))
    [(n_det,)] = qc_db.sql("SELECT count(*) FROM detections")
    [(n_drawn,)] = qc_db.sql("SELECT count(*) FROM reviews WHERE action = 'missed_defect'")
    assert len([d for d in dets if d["qc"] != "drawn"]) == n_det  # every box the model drew, as reviewed
    assert len([d for d in dets if d["qc"] == "drawn"]) == n_drawn > 0  # and those QC drew


def test_html_states_the_same_totals(qc_db, tmp_path):
    html = report(qc_db, tmp_path, "html").read_text(encoding="utf-8")
    want = qc_db.final_counts()
    shown = dict(re.findall(r'data-key="([a-z ]+)">([^<]+)<', html))
    assert shown["inspected"] == str(sum(want.values()))
    assert (shown["pass"], shown["fail"], shown["review"], shown["not inspected"]) == (
        str(want["PASS"]), str(want["FAIL"]), str(want["REVIEW"]), str(want["NOT_INSPECTED"]))
    assert "<svg" in html and html.count("data:image/jpeg;base64,") == 12
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # self-contained: nothing fetched


def test_pdf_and_html_agree(qc_db, tmp_path):
    text = pdf_text(report(qc_db, tmp_path, "pdf"))
    html = report(qc_db, tmp_path, "html").read_text(encoding="utf-8")
    y = re.search(r'data-key="yield">([^<]+)<', html).group(1)
    assert y in text


def test_format_from_suffix_and_a_run(qc_db, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--db", qc_db.url, "--run", "1", "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "48 inspections" in capsys.readouterr().out


def test_a_time_that_is_not_iso_is_refused(qc_db, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", "--db", qc_db.url, "--out", str(tmp_path / "r.pdf"), "--since", "yesterday"])
    assert e.value.code == 2 and "ISO" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()


def test_an_empty_period_is_refused(qc_db, tmp_path, capsys):
    assert main(["report", "--db", qc_db.url, "--out", str(tmp_path / "r.pdf"), "--since", "2026-03-03",
                 "--until", "2026-03-02"]) == 2
    assert "must be after" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()


def test_a_missing_database_is_not_created(tmp_path, capsys):
    db = tmp_path / "nothing.db"
    assert main(["report", "--db", f"sqlite:///{db}", "--out", str(tmp_path / "r.pdf")]) == 2
    assert "No database" in capsys.readouterr().err and not db.exists()


@pytest.mark.parametrize("fmt", ["pdf", "html", "csv"])
def test_cancel_leaves_no_file(qc_db, tmp_path, fmt):
    cancel = threading.Event()
    cancel.set()
    engine = open_database(qc_db.url)
    out = tmp_path / f"r.{fmt}"
    with pytest.raises(Cancelled):
        make_report(session_factory(engine), fmt, out, image_root=qc_db.path.parent, cancel=cancel)
    engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_in_the_middle_of_a_csv_leaves_no_file(tmp_path):
    import datetime as dt

    def rows():
        for i in range(25_000):
            if i == 15_000:
                raise KeyboardInterrupt
            yield ExportRow(i, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), 1, "s", "src", "f", "PASS", "PASS",
                            False, ("ok",), 1.0, "", None, ())

    seen = []
    with pytest.raises(KeyboardInterrupt):
        write_csv(tmp_path / "big.csv", rows(), 25_000, lambda n, t: seen.append((n, t)))
    assert seen == [(10_000, 25_000)]  # progress was shown before the interrupt
    assert list(tmp_path.iterdir()) == []


def test_cancel_during_a_long_csv(tmp_path):
    import datetime as dt

    cancel = threading.Event()

    def rows():
        for i in range(30_000):
            if i == 12_000:
                cancel.set()  # as the UI's Cancel button would, from another thread
            yield ExportRow(i, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), 1, "s", "src", "=cmd()", "PASS",
                            "PASS", False, ("ok",), 1.0, "", None, ())

    with pytest.raises(Cancelled):
        write_csv(tmp_path / "big.csv", rows(), 30_000, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_formula_like_text_is_quoted(tmp_path):
    import datetime as dt

    row = ExportRow(1, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), 1, "line", "src", "=HYPERLINK(1)", "PASS",
                    "PASS", False, ("ok",), 1.0, "", None, ())
    write_csv(tmp_path / "x.csv", [row])
    with open(tmp_path / "x.csv", newline="", encoding="utf-8-sig") as f:
        [r] = list(csv.DictReader(f))
    assert r["frame"] == "'=HYPERLINK(1)"
