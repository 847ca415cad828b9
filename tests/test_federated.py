"""Federated fine-tuning (issue 31): a real Flower server and two real stations on loopback, in their own
processes, two rounds; the model card it leaves, and the rule that nothing but weights leaves a station,
checked on the bytes the stations actually sent (a relay between each station and the server keeps them)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspector.cli import main
from inspector.core.errors import ConfigError
from inspector.federated.flower import is_loopback, require_tls_off_loopback
from tests.netspy.relay import Relay

ROOT = Path(__file__).resolve().parents[1]
NETSPY = Path(__file__).resolve().parent / "netspy"
BASE = ROOT / "models" / "parts-v2"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF"  # how every picture file starts (OpenCV writes JFIF)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("address,tls,refused", [
    ("127.0.0.1:8080", False, False), ("localhost:8080", False, False), ("[::1]:8080", False, False),
    ("10.1.2.3:8080", False, True), ("0.0.0.0:8080", False, True), ("plant-server:8080", False, True),
    ("10.1.2.3:8080", True, False),
])
def test_weights_cross_machines_only_over_tls(address, tls, refused):
    if refused:
        with pytest.raises(ConfigError, match="must use TLS"):
            require_tls_off_loopback(address, tls, "--certificates CA CERT KEY")
    else:
        require_tls_off_loopback(address, tls, "--certificates CA CERT KEY")


@pytest.mark.parametrize("address", ["8080", "host:", ":8080", "host:99999", "host:port"])
def test_an_address_is_host_and_port(address):
    with pytest.raises(ConfigError, match="HOST:PORT"):
        is_loopback(address)


def test_serve_refuses_a_plant_address_without_certificates(tmp_path, capsys):
    rc = main(["federate", "serve", "--rounds", "1", "--min-stations", "1", "--round-budget", "5s", "--base",
               str(BASE), "--out", str(tmp_path / "m"), "--address", "0.0.0.0:8080"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "must use TLS" in err and "--certificates" in err
    assert not (tmp_path / "m").exists()


def test_join_refuses_a_plant_server_without_the_ca(tmp_path, capsys):
    rc = main(["federate", "join", "--server", "10.1.2.3:8080", "--data", str(tmp_path), "--wait", "1s"])
    assert rc == 2 and "--root-certificate" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the server ended early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the server did not come up")


@pytest.fixture(scope="module")
def stations(tmp_path_factory) -> dict[str, Path]:
    """Two stations' own parts: different generated sets (a handful of pictures each)."""
    from inspector.sources.synth import write_dataset

    out = {}
    for name, seed in (("east", 11), ("west", 12)):
        out[name] = tmp_path_factory.mktemp(name)
        write_dataset(out[name], 16, seed=seed)
    return out


@pytest.mark.slow
def test_two_stations_two_rounds_send_weights_and_no_picture(tmp_path, stations):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(NETSPY), str(ROOT)]),
           "NETSPY_LOG": str(tmp_path / "net.log"), "INSPECTOR_HOME": str(tmp_path / "home")}
    port = _free_port()
    out = tmp_path / "federated"
    cmd = [sys.executable, "-m", "inspector"]
    server = subprocess.Popen([*cmd, "federate", "serve", "--rounds", "2", "--min-stations", "2", "--round-budget",
                               "3s", "--base", str(BASE), "--out", str(out), "--imgsz", "64", "--batch", "8",
                               "--address", f"127.0.0.1:{port}", "--no-onnx"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    relays, joins = {}, {}
    try:
        _wait_port(port, server)
        for name, data in stations.items():
            relays[name] = Relay(("127.0.0.1", port))
            joins[name] = subprocess.Popen([*cmd, "federate", "join", "--server", relays[name].address, "--data",
                                            str(data), "--station", name, "--threads", "1"],
                                           env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           text=True)
        said = {name: p.communicate(timeout=240)[0] for name, p in joins.items()}
        server_said = server.communicate(timeout=120)[0]
    finally:
        for p in [server, *joins.values()]:
            if p.poll() is None:
                p.kill()
        for r in relays.values():
            r.close()
    assert server.returncode == 0, server_said[-3000:]
    for name, p in joins.items():
        assert p.returncode == 0, said[name][-3000:]
        assert f"station {name}: trained 2 round(s)" in said[name]
    assert "round 2/2" in server_said and "Not trusted" in server_said

    # the card: rounds, stations and the parts each contributed, the file's hash; no picture named
    card_text = (out / "card.json").read_text()
    card = json.loads(card_text)
    fed = card["federated"]
    assert fed["rounds"] == 2 and [r["round"] for r in fed["per_round"]] == [1, 2]
    train_parts = {n: sum(1 for _ in (d / "images").iterdir()) for n, d in stations.items()}
    assert set(fed["stations"]) == {"east", "west"}
    for name, s in fed["stations"].items():
        assert s["rounds"] == 2 and 0 < s["parts"] < train_parts[name]  # the train split: the rest validates
    assert all("val_map50" in v for r in fed["per_round"] for v in r["stations"].values())
    from inspector.detection.registry import ModelRegistry, sha256_file

    pt = out / "federated.pt"
    assert card["files"]["federated.pt"]["sha256"] == sha256_file(pt)
    pictures = [p for d in stations.values() for p in (d / "images").iterdir()]
    assert pictures and not any(p.stem in card_text or p.name in card_text for p in pictures)
    with pytest.raises(Exception, match="not"):  # written, not trusted: no station loads it until QC trusts it
        ModelRegistry().check(pt)

    # the traffic: weights went up each round, and not one picture, file name or image signature
    assert all(p.read_bytes().startswith(JPEG) for p in pictures)  # so the signature would be seen if sent
    weights = card["files"]["federated.pt"]["bytes"]  # half precision on disk; float32 on the wire
    for name, relay in relays.items():
        sent, got = bytes(relay.sent), bytes(relay.received)
        assert len(sent) > 2 * 1.5 * weights, f"{name} sent {len(sent)} bytes"
        print(f"{name}: {len(sent)} bytes sent, {len(got)} received in 2 rounds")
        for stream in (sent, got):
            assert JPEG not in stream and PNG not in stream
            for p in pictures:
                data = p.read_bytes()
                assert p.stem.encode() not in stream
                assert data[len(data) // 2:len(data) // 2 + 64] not in stream
    net = tmp_path / "net.log"
    assert not net.exists() or not net.read_text(), net.read_text()  # nothing but loopback


def test_a_station_trains_in_the_global_models_classes(tmp_path, stations):
    """Its boxes are relabelled by name to the global order; a class the model does not know is left out."""
    from inspector.federated.local import local_data
    from inspector.training.datasets import load_dataset

    own = load_dataset(stations["east"])
    boxes = sum(len(im.boxes) for ims in own.splits.values() for im in ims)
    known = tuple(reversed(own.classes[1:]))  # another order, and the first class unknown
    data = local_data(stations["east"], known, tmp_path / "cache")
    dropped = sum(1 for ims in own.splits.values() for im in ims for b in im.boxes if b.cls == 0)
    assert dropped and data.dropped_boxes == dropped
    assert data.train_parts == len(own.splits["train"]) and data.val_parts == len(own.splits["val"])
    relabelled = load_dataset(data.data_yaml)
    assert relabelled.classes == known
    assert sum(len(im.boxes) for ims in relabelled.splits.values() for im in ims) == boxes - dropped


def test_a_new_head_on_a_base_keeps_every_tensor_that_fits():
    import numpy as np

    from inspector.federated.result import global_start

    same = global_start(BASE)
    assert same.classes == ("scratch", "dent", "stain", "crack", "chip") and same.architecture == "yolo11n"
    new = global_start(BASE, 64, ["a", "b"])
    assert new.classes == ("a", "b") and new.imgsz == 64 and len(new.arrays) == len(same.arrays)
    kept = sum(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(new.arrays, same.arrays, strict=True))
    changed = [a.shape for a, b in zip(new.arrays, same.arrays, strict=True) if a.shape != b.shape]
    assert changed and kept == len(same.arrays) - len(changed)  # the class head is new, the rest is the base's


def test_a_station_joins_with_its_own_recorded_parts(tmp_path, stations, monkeypatch):
    """``join --db``: the parts the station judged, exported as 'export-dataset' writes them into a private
    folder; once the station has users, only a signed-in QC or admin may take them."""
    import argparse

    from inspector.cli.federate_cmds import _station_parts
    from inspector.core.errors import PermissionDenied
    from inspector.federated.local import local_data

    url = f"sqlite:///{tmp_path / 'station.db'}"
    assert main(["run", "--source", str(stations["west"] / "images"), "--max-frames", "8", "--db", url,
                 "--quiet"]) == 0
    a = argparse.Namespace(config=None, station="west", data=None, db=url, user=None, reviewed_only=False)
    folder, name = _station_parts(a, tmp_path / "private")
    assert name == "west" and folder.parent == tmp_path / "private"
    assert len(list((folder / "images").iterdir())) == 8
    data = local_data(folder, ("scratch", "dent", "stain", "crack", "chip"), tmp_path / "cache")
    assert data.train_parts + data.val_parts == 8

    monkeypatch.setenv("INSPECTOR_PASSWORD", "a long enough password 1")
    monkeypatch.setenv("INSPECTOR_NEW_PASSWORD", "a long enough password 1")
    assert main(["user", "add", "boss", "--role", "admin", "--db", url]) == 0
    with pytest.raises(PermissionDenied, match="--user"):
        _station_parts(a, tmp_path / "again")


def _plant_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A plant's CA and a server certificate it signed for 127.0.0.1 (PEM files), made here."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plant CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    files = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return files


@pytest.mark.slow
def test_a_federation_over_the_plants_tls(tmp_path, stations):
    """The server with the plant's certificate, a station trusting the plant's CA: one round over TLS."""
    ca, cert, key = _plant_certificates(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_HOME": str(tmp_path / "home")}
    port = _free_port()
    cmd = [sys.executable, "-m", "inspector", "federate"]
    server = subprocess.Popen([*cmd, "serve", "--rounds", "1", "--min-stations", "1", "--round-budget", "2s",
                               "--base", str(BASE), "--out", str(tmp_path / "m"), "--imgsz", "64", "--batch", "8",
                               "--address", f"127.0.0.1:{port}", "--no-onnx", "--certificates", str(ca), str(cert),
                               str(key)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_port(port, server)
        station = subprocess.run([*cmd, "join", "--server", f"127.0.0.1:{port}", "--data", str(stations["east"]),
                                  "--station", "east", "--root-certificate", str(ca), "--threads", "1",
                                  "--no-validation"], env=env, capture_output=True, text=True, timeout=240)
        said = server.communicate(timeout=120)[0]
    finally:
        if server.poll() is None:
            server.kill()
    assert station.returncode == 0, station.stdout[-2000:] + station.stderr[-2000:]
    assert server.returncode == 0, said[-3000:]
    assert json.loads((tmp_path / "m" / "card.json").read_text())["federated"]["stations"]["east"]["rounds"] == 1


def test_the_models_tab_shows_the_rounds_and_each_stations_validation():
    from inspector.detection.card import ModelCard
    from station.models import KnownModel
    from ui.models.tab import card_text

    fed = {"rounds": 2, "round_budget_s": 120.0, "strategy": "FedAvg", "stations": {
        "east": {"parts": 40, "rounds": 2}, "west": {"parts": 25, "rounds": 2}}, "per_round": [
        {"round": 1, "stations": {"east": {"parts": 40, "val_map50": 0.41}, "west": {"parts": 25, "val_map50": 0.305}}},
        {"round": 2, "stations": {"east": {"parts": 40, "val_map50": 0.52}, "west": {"parts": 25}}}]}
    card = ModelCard.from_dict({"name": "fed", "classes": ["scratch"], "federated": fed})
    text = card_text(KnownModel("ab" * 32, None, "fed", "anna", card))
    assert "Federated: 2 rounds of 120.0 s" in text and "east (40 parts, 2 rounds), west (25 parts, 2 rounds)" in text
    assert "east 0.410, west 0.305" in text and "Round 2:" in text and "east 0.520" in text
    plain = card_text(KnownModel("cd" * 32, None, "one", "anna", ModelCard.from_dict({"name": "one"})))
    assert "Federated" not in plain


def test_the_server_step_moves_trained_weights_and_averages_statistics():
    """FedAvgM: trained weights move ``server_lr`` times the averaged change (plus momentum from the round
    before); batch-norm statistics and counters take the plain average (a variance is never extrapolated)."""
    import numpy as np
    from flwr.common import ndarrays_to_parameters

    from inspector.federated.flower import RecordingFedAvg

    start = [np.zeros(3, np.float32), np.ones(3, np.float32), np.array(5, np.int64)]
    s = RecordingFedAvg(server_lr=2.0, server_momentum=0.5, trainable=[True, False, False],
                        initial_parameters=ndarrays_to_parameters(start))
    first = s._server_step([np.full(3, 0.1, np.float32), np.full(3, 0.5, np.float32), np.array(9, np.int64)])
    assert np.allclose(first[0], 0.2) and np.allclose(first[1], 0.5) and int(first[2]) == 9
    s._current = first
    second = s._server_step([np.full(3, 0.3, np.float32), np.full(3, 0.4, np.float32), np.array(12, np.int64)])
    # v = 0.5 * 0.1 + (0.3 - 0.2) = 0.15; w = 0.2 + 2 * 0.15 = 0.5
    assert np.allclose(second[0], 0.5) and np.allclose(second[1], 0.4) and int(second[2]) == 12
    assert second[0].dtype == np.float32


def test_serve_refuses_a_bad_server_step_or_proximal_weight():
    from inspector.federated.flower import serve

    for kw in ({"prox": -1.0}, {"server_lr": 0.0}, {"server_momentum": 1.0}):
        with pytest.raises(ConfigError, match="expected prox"):
            serve([], architecture="yolo11n", classes=["a"], imgsz=64, rounds=1, min_stations=1, round_budget_s=1,
                  address="127.0.0.1:1", **kw)


def test_the_proximal_term_holds_a_station_near_the_global_weights_and_the_dfl_stays_fixed(tmp_path, stations):
    """FedProx: with a strong proximal weight the same batches move the weights less; the DFL's fixed
    projection is never trained (as in Ultralytics' own trainer)."""
    import numpy as np

    from inspector.federated.local import arrays_of, build_network, fine_tune, load_arrays, local_data
    from inspector.federated.result import global_start

    start = global_start(BASE, 64)
    data = local_data(stations["east"], start.classes, tmp_path / "cache")
    keys = list(build_network(start.architecture, start.classes).state_dict())
    moved = {}
    for prox in (0.0, 1e4):
        net = build_network(start.architecture, start.classes)
        load_arrays(net, start.arrays)
        ticks = iter(range(100))  # a clock that advances one second per look: exactly four batches
        r = fine_tune(net, data, imgsz=64, budget_s=4, batch=8, seed=1, clock=ticks.__next__, prox=prox)
        assert r.batches == 4
        after = arrays_of(net)
        moved[prox] = sum(float(np.abs(a.astype(np.float64) - b).sum()) for k, a, b in
                          zip(keys, after, start.arrays, strict=True) if k.endswith("weight"))
        dfl = [a for k, a in zip(keys, after, strict=True) if ".dfl." in k]
        assert dfl and all(np.array_equal(a, b) for k, a, b in zip(keys, after, start.arrays, strict=True)
                           if ".dfl." in k)
    assert 0 < moved[1e4] < 0.5 * moved[0.0], moved
