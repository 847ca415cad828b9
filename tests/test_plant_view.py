"""The plant view (issue 30): each station reports its outbox backlog, run and model into ``station_status`` while
it runs and when its run ends; ``inspector station list`` and the window's Plant tab show every station's report
with its age, so a station cut off from the server shows as such instead of as an empty backlog."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import trust_models

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"


def _open(url: str):
    from station import open_db

    return open_db(url)


def test_a_station_report_overwrites_its_row_and_keeps_the_runs_peak(tmp_path):
    from db.repositories.stations import StationRepo
    from db.writes import write

    engine, sessions = _open(f"sqlite:///{tmp_path / 'plant.db'}")
    try:
        for backlog, run in ((120, 7), (40, 7), (0, 7), (5, 8)):
            write(sessions, lambda s, b=backlog, r=run: StationRepo.report(s, "s1", b, r, "parts-v2/parts-v2.onnx"),
                  "report")
        with sessions() as s:
            (row,) = StationRepo.statuses(s)
        assert (row.station, row.backlog, row.peak, row.run_id, row.state) == ("s1", 5, 5, 8, "running")
        write(sessions, lambda s: StationRepo.report(s, "s1", 0, 8, "m", "ended"), "report")
        with sessions() as s:
            assert StationRepo.statuses(s)[0].state == "ended"
            with pytest.raises(ValueError, match="backlog of 0 or more"):
                StationRepo.report(s, "s1", -1, 8, "m")
    finally:
        engine.dispose()


def test_the_reporter_writes_what_the_outbox_holds_every_few_seconds(tmp_path):
    from db.repositories.stations import StationRepo
    from station.plant import StatusReporter

    engine, sessions = _open(f"sqlite:///{tmp_path / 'plant.db'}")
    backlog = [300]
    rep = StatusReporter(sessions, "s2", 3, lambda: backlog[0], lambda: "parts-v2/parts-v2.onnx", every_s=0.05)
    rep.start()
    try:
        def now():
            with sessions() as s:
                return {r.station: r for r in StationRepo.statuses(s)}.get("s2")
        end = time.monotonic() + 30
        while (now() is None or now().backlog != 300) and time.monotonic() < end:
            time.sleep(0.02)
        backlog[0] = 12  # forwarding after an outage
        while now().backlog != 12 and time.monotonic() < end:
            time.sleep(0.02)
        assert (now().backlog, now().peak, now().model) == (12, 300, "parts-v2/parts-v2.onnx")
    finally:
        rep.stop()
        engine.dispose()
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    away = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}")  # a server that cannot be reached
    rep.sessions = sessionmaker(away)
    assert rep.report("ended") is False  # not written, no exception: the line goes on
    away.dispose()


@pytest.mark.model
def test_a_running_station_reports_its_backlog_and_its_end_and_station_list_shows_it(tmp_path):
    from db.repositories.stations import StationRepo
    from inspector.core.config import config_from_dict
    from station import Station, StationSpec

    url = f"sqlite:///{tmp_path / 'st.db'}"
    trust_models(url)
    st = Station(StationSpec(str(SAMPLES), url, config_from_dict({"station": {"name": "line-4"}}), max_frames=20))
    st.reporter.every_s = 0.05
    st.start()
    st.runner.join(120)
    st.finish("finished")
    engine, sessions = _open(url)
    try:
        with sessions() as s:
            (row,) = StationRepo.statuses(s)
    finally:
        engine.dispose()
    assert (row.station, row.backlog, row.run_id, row.state) == ("line-4", 0, st.run_id, "ended")
    assert row.model == "parts-v2/parts-v2.onnx"
    assert (dt.datetime.now(dt.timezone.utc) - row.reported_at).total_seconds() < 60


def test_station_list_prints_each_stations_backlog_and_the_age_of_its_report(tmp_path):
    from db.repositories.stations import StationRepo
    from db.writes import write
    from inspector.core.signing import StationSigner  # noqa: F401 - the package is there (a key is made below)

    url = f"sqlite:///{tmp_path / 'plant.db'}"
    engine, sessions = _open(url)
    write(sessions, lambda s: StationRepo.add(s, None, "s1", "ab" * 32), "add")
    write(sessions, lambda s: StationRepo.report(s, "s1", 42, 3, "parts-v2/parts-v2.onnx"), "report")
    engine.dispose()
    r = subprocess.run([sys.executable, "-m", "inspector.cli", "station", "list", "--db", url], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("s1 "))
    assert "outbox 42 (peak 42, run 3) reported" in line and "s ago" in line
