"""One plant, many stations (issue 30): N stations (processes, each ``inspector run`` with its own data folder, key
and ``[station] name``) judging a folder in a loop against one PostgreSQL server, the server stopped for
``--outage`` seconds in the middle.

Prints, from one run:

- parts/s of each station in the plant against the same station alone (the first station, run alone first);
- the outbox peak (records waiting on the stations' disks at once) and the catch-up time (server back to every
  outbox empty);
- rows lost and doubled per station (must both be 0), from ``count(*)`` and ``count(distinct (run_id, seq))``;
- ``inspector audit verify`` from an empty data folder (public keys only), with each station's chain line;
- the review page's p95 on the plant's table (newest 50, all stations and one station).

Starts its own PostgreSQL server (initdb and pg_ctl in a temporary folder, as the acceptance check does; as root the
server runs as the ``postgres`` user). A bench script for a Linux test machine, not product code.

    python bench/plant_sim.py --stations 5 [--parts 400] [--outage 60] [--source FOLDER] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_BIN = Path(os.environ.get("INSPECTOR_TEST_PG_BIN") or sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])


class Server:
    """A private PostgreSQL server in ``folder`` on a free port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # the postgres user writes here
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/plant"
        self._pg("initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self._pg("psql", "-h", "127.0.0.1", "-p", str(self.port), "-d", "postgres", "-qc", "create database plant")

    def _pg(self, tool: str, *args: str, check: bool = True) -> None:
        cmd = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"{tool} failed: {r.stderr.strip() or r.stdout.strip()}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._pg("pg_ctl", "-D", str(self.folder / "data"), "-o", opts, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop", check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "INSPECTOR_HOME": str(home), "PYTHONPATH": str(ROOT), "YOLO_OFFLINE": "1",
            "QT_QPA_PLATFORM": "offscreen"}


def _inspector(*args: str, home: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector", *args], env=_env(home), capture_output=True, text=True,
                          **kw)


def _start_station(name: str, home: Path, folder: Path, source: str, url: str, parts: int) -> subprocess.Popen:
    cfg = folder / f"{name}.toml"
    cfg.write_text(f'[station]\nname = "{name}"\n')
    log = open(folder / f"{name}.out", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "inspector", "run", "--source", source, "--loop", "--max-frames",
                             str(parts), "--config", str(cfg), "--db", url, "--quiet", "--json"],
                            env=_env(home), stdout=log, stderr=subprocess.STDOUT)


def _summary(folder: Path, name: str) -> dict:
    for line in reversed((folder / f"{name}.out").read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"station {name} printed no summary: {(folder / f'{name}.out').read_text()[-500:]}")


def _backlog(home: Path) -> int:
    n = 0
    for box in home.glob("**/outbox.sqlite"):
        try:
            con = sqlite3.connect(f"file:{box}?mode=ro", uri=True, timeout=1)
            n += con.execute("SELECT count(*) FROM pending").fetchone()[0]
            con.close()
        except sqlite3.Error:
            pass
    return n


def _rows(url: str, names: list[str]) -> dict[str, tuple[int, int]]:
    from sqlalchemy import create_engine, text

    eng = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    out = {}
    with eng.connect() as conn:
        for n in names:
            out[n] = tuple(conn.execute(text(
                "SELECT count(*), count(DISTINCT (i.run_id, i.seq)) FROM inspections i JOIN runs r ON r.id = i.run_id "
                "WHERE r.station = :n"), {"n": n}).one())
    eng.dispose()
    return out


def _page_p95(url: str, station: str | None, repeat: int = 30) -> float:
    from db import DayFilter, InspectionFilter, InspectionRepo, open_database, session_factory

    engine = open_database(url)
    sessions = session_factory(engine)
    f = InspectionFilter(day=DayFilter(station=station)) if station else InspectionFilter()
    times = []
    with sessions() as s:
        InspectionRepo.page(s, f, 50)
        for _ in range(repeat):
            t = time.perf_counter()
            InspectionRepo.page(s, f, 50)
            times.append((time.perf_counter() - t) * 1000)
    engine.dispose()
    return round(statistics.quantiles(times, n=20)[-1], 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=5)
    ap.add_argument("--parts", type=int, default=400, help="parts each station judges")
    ap.add_argument("--outage", type=float, default=60.0, help="seconds the server is stopped, mid-run")
    ap.add_argument("--source", default=None, help="image folder (default: 100 synthetic parts made here)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="plant-sim-"))
    tmp.chmod(0o755)
    server = Server(tmp / "pg")
    fig: dict = {"stations": a.stations, "parts": a.parts, "outage_s": a.outage}
    try:
        source = a.source
        if source is None:
            r = _inspector("synth", "--out", str(tmp / "parts"), "--count", "100", "--seed", "31337", home=tmp / "h0")
            if r.returncode:
                raise RuntimeError(f"inspector synth failed: {r.stderr[-300:]}")
            source = str(next((tmp / "parts").glob("**/images")))
        names = [f"s{i + 1}" for i in range(a.stations)]
        homes = {n: tmp / f"h-{n}" for n in names}
        for n in names:
            k = _inspector("station", "key", home=homes[n], check=True).stdout.strip().splitlines()[-1]
            _inspector("station", "add", n, "--key", k, "--db", server.url, home=tmp / "h0", check=True)
        # the first station alone (its own data folder; a station of its own name, so its rows are counted apart)
        alone_home = tmp / "h-alone"
        k = _inspector("station", "key", home=alone_home, check=True).stdout.strip().splitlines()[-1]
        _inspector("station", "add", "alone", "--key", k, "--db", server.url, home=tmp / "h0", check=True)
        print(f"one station alone: {a.parts} parts ...", flush=True)
        p = _start_station("alone", alone_home, tmp, source, server.url, a.parts)
        p.wait()
        fig["alone_parts_s"] = _summary(tmp, "alone")["fps"]
        print(f"  {fig['alone_parts_s']} parts/s", flush=True)

        print(f"{a.stations} stations at once, the server stopped for {a.outage:.0f} s mid-run ...", flush=True)
        procs = {n: _start_station(n, homes[n], tmp, source, server.url, a.parts) for n in names}
        peak = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], sum(_backlog(homes[n]) for n in names))
                time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # the outage once every station writes (rows on the server from all of them), a third of the way in
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            rows = _rows(server.url, names)
            if all(c >= a.parts // 3 for c, _ in rows.values()) or any(p.poll() is not None for p in procs.values()):
                break
            time.sleep(1)
        server.stop()
        stopped_at = time.monotonic()
        time.sleep(a.outage)
        server.start()
        back = time.monotonic()
        fig["outage_measured_s"] = round(back - stopped_at, 1)
        caught_up = None
        while caught_up is None or any(p.poll() is None for p in procs.values()):
            if caught_up is None and sum(_backlog(homes[n]) for n in names) == 0:
                caught_up = time.monotonic() - back
            time.sleep(0.5)
        done.set()
        watcher.join()
        codes = {n: p.returncode for n, p in procs.items()}
        fig["exit_codes"] = codes
        fig["outbox_peak"] = peak[0]
        fig["catch_up_s"] = round(caught_up or 0.0, 1)
        summaries = {n: _summary(tmp, n) for n in names}
        fig["parts_s"] = {n: summaries[n]["fps"] for n in names}
        rows = _rows(server.url, names)
        fig["lost"] = {n: a.parts - d for n, (c, d) in rows.items()}
        fig["doubled"] = {n: c - d for n, (c, d) in rows.items()}
        v = _inspector("audit", "verify", "--db", server.url, home=tmp / "h-verify")
        fig["audit_verify"] = "OK" if v.returncode == 0 else "FAILED"
        fig["audit_lines"] = [ln.strip() for ln in v.stdout.splitlines() if ln.strip().startswith("station ")
                              or "TAMPERED" in ln or ln.strip().startswith("- ")]
        fig["review_page_p95_ms"] = _page_p95(server.url, None)
        fig["review_page_station_p95_ms"] = _page_p95(server.url, names[0])
        fig["plant_rows"] = sum(c for c, _ in rows.values())
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for n in fig.get("parts_s", {}):
        print(f"  {n}: {fig['parts_s'][n]} parts/s (alone {fig['alone_parts_s']}), lost {fig['lost'][n]}, "
              f"doubled {fig['doubled'][n]}, exit {fig['exit_codes'][n]}")
    print(f"  outbox peak {fig.get('outbox_peak')} records; catch-up {fig.get('catch_up_s')} s after the server "
          f"came back (stopped {fig.get('outage_measured_s')} s)")
    print(f"  audit verify from an empty data folder: {fig.get('audit_verify')}")
    for line in fig.get("audit_lines", []):
        print(f"    {line}")
    print(f"  review page p95 on {fig.get('plant_rows')} plant rows: {fig.get('review_page_p95_ms')} ms (all), "
          f"{fig.get('review_page_station_p95_ms')} ms (one station)")
    ok = (fig.get("audit_verify") == "OK" and not any(fig.get("lost", {1: 1}).values())
          and not any(fig.get("doubled", {}).values()))
    print(f"lost 0, doubled 0, every chain verifies: {'yes' if ok else 'NO'}")
    if a.json:
        print(json.dumps(fig))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
