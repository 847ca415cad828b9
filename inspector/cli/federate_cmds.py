"""``inspector federate serve`` and ``inspector federate join``: stations that fine-tune one model together,
each on its own parts, with only weights crossing the network (Flower; README "Stations that learn together")."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path


def _duration(text: str) -> float:
    from inspector.cli.model_cmds import _duration as parse

    return parse(text)


def _serve(a: argparse.Namespace) -> int:
    from inspector.federated.flower import RoundRecord, read_certificates, require_tls_off_loopback, serve
    from inspector.federated.result import global_start, write_model

    certificates = read_certificates(a.certificates) if a.certificates else None
    require_tls_off_loopback(a.address, certificates is not None, "--certificates CA CERT KEY")
    classes = [c.strip() for c in a.classes.split(",") if c.strip()] if a.classes else None
    start = global_start(a.base, a.imgsz, classes)

    def said(rec: RoundRecord) -> None:
        parts = ", ".join(f"{n} {f.get('parts', 0)} parts" for n, f in sorted(rec.fit.items()))
        val = ", ".join(f"{n} {v['map50']:.3f}" for n, v in sorted(rec.val.items()) if "map50" in v)
        print(f"round {rec.round}/{a.rounds}: {parts}" + (f"; val mAP50 {val}" if val else ""), flush=True)

    print(f"federation of {a.min_stations}+ station(s), {a.rounds} round(s) of {a.round_budget:.0f} s, from "
          f"{start.base} ({start.architecture}, {len(start.classes)} classes, {start.imgsz} px), at {a.address}",
          flush=True)
    fed = serve(start.arrays, architecture=start.architecture, classes=start.classes, imgsz=start.imgsz,
                rounds=a.rounds, min_stations=a.min_stations, round_budget_s=a.round_budget, address=a.address,
                certificates=certificates, batch=a.batch, on_round=said, prox=a.prox, server_lr=a.server_lr,
                server_momentum=a.server_momentum)
    cmd = "inspector " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    card = write_model(fed, start, Path(a.out), round_budget_s=a.round_budget, min_stations=a.min_stations,
                       command=cmd, export_onnx=not a.no_onnx)
    print(f"model written to {a.out}: {', '.join(card.file_names)}. Not trusted on any station: a signed-in QC or "
          f"admin user trusts it with 'inspector model add {Path(a.out) / card.file_names[0]} --user NAME', then "
          "compares and promotes it as any challenger.")
    return 0


def _station_parts(a: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """The folder of this station's parts (``--data``, or the reviewed parts exported from ``--db`` into the
    private ``work`` folder, as 'inspector export-dataset' writes them) and the station's name."""
    from inspector.core.config import load_config

    cfg = load_config(a.config)
    name = a.station or cfg.station_name
    if a.data:
        return Path(a.data), name
    from inspector.cli.signin import signed_in
    from station import default_db_url, image_base, open_db
    from station.reports import export_dataset

    url = a.db or default_db_url()
    engine, sessions = open_db(url)
    try:
        signed_in(a, sessions, "export")
        out = work / "parts"
        summary = export_dataset(sessions, out, image_base(url, cfg)[0], reviewed_only=a.reviewed_only)
    finally:
        engine.dispose()
    print(f"this station's parts: {summary.text()}", flush=True)
    return out, name


def _join(a: argparse.Namespace) -> int:
    import torch

    from inspector.federated.flower import StationClient, join, require_tls_off_loopback
    from inspector.training.train import default_cache_dir

    require_tls_off_loopback(a.server, bool(a.root_certificate), "--root-certificate CA")  # before any work
    root = Path(a.root_certificate).read_bytes() if a.root_certificate else None
    if a.threads:
        torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="inspector-federate-") as tmp:
        data, name = _station_parts(a, Path(tmp))
        client = StationClient(name, data, default_cache_dir(), validate=not a.no_validation)
        done = join(a.server, client, root, wait_s=a.wait)
    print(f"station {name}: trained {len(done)} round(s) on {done[-1]['parts'] if done else 0} parts; "
          "only weights and figures were sent", flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("federate", help="fine-tune one model with other stations, each on its own parts "
                       "(only weights leave a station)")
    fsub = f.add_subparsers(dest="federate_command", metavar="ACTION", required=True)
    s = fsub.add_parser("serve", help="coordinate a federation: average the stations' weights each round and "
                        "write the result as a new, untrusted model with its card")
    s.add_argument("--rounds", type=int, required=True, help="number of rounds")
    s.add_argument("--min-stations", type=int, required=True, help="stations each round waits for")
    s.add_argument("--round-budget", type=_duration, required=True, metavar="DURATION",
                   help="each station's training time per round, e.g. 2m, 90s")
    s.add_argument("--base", required=True, help="the model (.pt or its folder) the federation starts from")
    s.add_argument("--out", required=True, help="new folder for the federated model")
    s.add_argument("--address", default="127.0.0.1:8080", help="HOST:PORT to listen on (default 127.0.0.1:8080; "
                   "any other than loopback needs --certificates)")
    s.add_argument("--certificates", nargs=3, metavar=("CA", "CERT", "KEY"), default=None,
                   help="the plant's CA certificate, this server's certificate and its private key (PEM): TLS")
    s.add_argument("--imgsz", type=int, default=None, help="training size (default: the base's card)")
    s.add_argument("--classes", default=None, metavar="A,B,...", help="the defect classes to learn, when not the "
                   "base's: a new head for them on the base (the stations' boxes of other classes are left out)")
    s.add_argument("--batch", type=int, default=16, help="batch size on the stations")
    s.add_argument("--prox", type=float, default=0.0, metavar="MU", help="FedProx: the stations' proximal weight "
                   "(keeps each near the global model; default 0: plain FedAvg)")
    s.add_argument("--server-lr", type=float, default=1.0, help="FedAvgM: the server's step on the averaged change "
                   "(default 1: the plain average)")
    s.add_argument("--server-momentum", type=float, default=0.0, help="FedAvgM: the server's momentum (default 0)")
    s.add_argument("--no-onnx", action="store_true", help="write the weights and card without the ONNX export")
    s.set_defaults(func=_serve)

    j = fsub.add_parser("join", help="take part in a federation with this station's own parts")
    j.add_argument("--server", required=True, metavar="ADDR", help="HOST:PORT of 'inspector federate serve'")
    j.add_argument("--db", default=None, help="the station's database: its reviewed parts are what it trains on "
                   "(default: sqlite in the user's data folder)")
    j.add_argument("--data", default=None, help="train on this labelled data set folder instead of the database")
    j.add_argument("--reviewed-only", action="store_true", help="only parts that QC reviewed")
    j.add_argument("--config", default=None, help="configuration file (TOML): the station's name and image folder")
    j.add_argument("--station", default=None, help="the name the server records (default: [station] name)")
    j.add_argument("--user", default=None, help="the signed-in QC or admin user (exporting the parts is a QC action "
                   "once the station has users)")
    j.add_argument("--root-certificate", default=None, metavar="CA", help="the plant's CA certificate (PEM): TLS")
    j.add_argument("--threads", type=int, default=0, help="torch threads for training (default: every core)")
    j.add_argument("--wait", type=_duration, default=600.0, metavar="DURATION",
                   help="how long to wait for the server to come up (default 10m)")
    j.add_argument("--no-validation", action="store_true", help="do not report mAP50 on this station's held-out "
                   "parts each round")
    j.set_defaults(func=_join)
