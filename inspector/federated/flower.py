"""The link between stations, through Flower: the only module that imports ``flwr``.

``serve`` runs a Flower server (``flwr.server.start_server``, in this process: no SuperLink to deploy) with a
FedAvg strategy weighted by each station's number of parts, recording what each station reported per round.
``join`` runs one station's client (``NumPyClient``): each round it loads the global weights, fine-tunes on its
own parts for the round's budget and sends back the state tensors, its number of parts and a few figures. No
picture, label or file name is ever put in a message. Flower's telemetry is switched off before it is imported.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inspector.core.errors import ConfigError
from inspector.federated.local import (
    LocalData,
    arrays_of,
    build_network,
    fine_tune,
    load_arrays,
    local_data,
    map50,
)

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"  # data stays local: Flower would otherwise report usage events

import flwr  # noqa: E402
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays  # noqa: E402
from flwr.server.strategy import FedAvg  # noqa: E402

log = logging.getLogger(__name__)


class _Quiet(logging.Filter):
    """Flower's own console lines at INFO and its notes on the legacy API it is driven through stay out of sight."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "DEPRECATED FEATURE" not in record.getMessage()


for _h in logging.getLogger("flwr").handlers:
    _h.addFilter(_Quiet())

CONNECT_WAIT_S = 600.0  # how long a station waits for the server to come up


def is_loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` (``[v6]:PORT`` too) names this machine's loopback."""
    host = split_address(address)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port); ConfigError for anything else."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"expected an address as HOST:PORT (such as 127.0.0.1:8080), got {address!r}.")
    return host, int(port)


def require_tls_off_loopback(address: str, tls: bool, option: str) -> None:
    """Weights travel between machines only over TLS: refuse a non-loopback address without certificates."""
    if not tls and not is_loopback(address):
        raise ConfigError(f"{address} is not this machine's loopback: the link between stations must use TLS with "
                          f"the plant's certificates ({option}), or run on 127.0.0.1 for a test.")


@dataclass(frozen=True)
class RoundRecord:
    """One round as the server saw it: per station, the parts it trained on and its figures."""

    round: int
    fit: dict[str, dict] = field(default_factory=dict)  # station -> {"parts", "seconds", "batches", "loss"}
    val: dict[str, dict] = field(default_factory=dict)  # station -> {"parts", "map50"} (global model, own parts)


def server_steps(server_lr: float, server_momentum: float) -> bool:
    """Whether the server takes a FedAvgM step (step 1 and no momentum is the plain average)."""
    return (float(server_lr), float(server_momentum)) != (1.0, 0.0)


class RecordingFedAvg(FedAvg):
    """FedAvg weighted by parts that keeps the latest global weights and what each station reported."""

    def __init__(self, on_round: Callable[[RoundRecord], None] | None = None, *, server_lr: float = 1.0,
                 server_momentum: float = 0.0, trainable: Sequence[bool] | None = None, **kw) -> None:
        super().__init__(**kw)
        self.rounds: dict[int, RoundRecord] = {}
        self.latest: list[np.ndarray] | None = None
        self._on_round = on_round
        # FedAvgM (server learning rate and momentum) on the trained weights; the batch-norm statistics and
        # counters are plain averages (a running variance must stay what the stations measured)
        self.server_lr, self.server_momentum = float(server_lr), float(server_momentum)
        self.steps = server_steps(self.server_lr, self.server_momentum)
        if self.steps and trainable is None:
            raise ValueError("a server step needs to know which tensors are trained weights (trainable)")
        self._trainable = list(trainable) if trainable is not None else None
        init = kw.get("initial_parameters")
        self._current = parameters_to_ndarrays(init) if init is not None else None
        self._velocity: list[np.ndarray] | None = None

    def _record(self, rnd: int) -> RoundRecord:
        return self.rounds.setdefault(rnd, RoundRecord(rnd))

    def aggregate_fit(self, server_round, results, failures):
        rec = self._record(server_round)
        for _, res in results:
            m = dict(res.metrics or {})
            name = str(m.pop("station", "?"))
            rec.fit[name] = {"parts": int(res.num_examples), **m}
        if failures:
            log.warning("round %d: %d station(s) failed to train", server_round, len(failures))
        params, metrics = super().aggregate_fit(server_round, results, failures)
        if params is not None:
            arrays = parameters_to_ndarrays(params)
            if self.steps and self._current is not None:
                arrays = self._server_step(arrays)
                params = ndarrays_to_parameters(arrays)
            self.latest = self._current = arrays
        return params, metrics

    def _server_step(self, averaged: list[np.ndarray]) -> list[np.ndarray]:
        """w + lr * v, v = momentum * v + (average - w), on the trained weights; buffers take the average."""
        cur, trainable = self._current, self._trainable
        assert cur is not None and trainable is not None
        if self._velocity is None:
            self._velocity = [np.zeros_like(a) if t else None for a, t in zip(averaged, trainable, strict=True)]
        out = []
        for i, (a, w, t) in enumerate(zip(averaged, cur, trainable, strict=True)):
            if not t:
                out.append(a)
                continue
            v = self.server_momentum * self._velocity[i] + (a - w)
            self._velocity[i] = v
            out.append((w + self.server_lr * v).astype(a.dtype, copy=False))
        return out

    def aggregate_evaluate(self, server_round, results, failures):
        rec = self._record(server_round)
        for _, res in results:
            m = dict(res.metrics or {})
            name = str(m.pop("station", "?"))
            rec.val[name] = {"parts": int(res.num_examples), **m}
        # stations without held-out parts answer with none: nothing to average then
        out = super().aggregate_evaluate(server_round, results, failures) \
            if sum(res.num_examples for _, res in results) else (None, {})
        if self._on_round is not None:
            self._on_round(rec)
        return out


def _per_station(results) -> dict:
    """No plant-wide mean of the figures: each station's are kept apart (``RecordingFedAvg.rounds``)."""
    return {}


@dataclass(frozen=True)
class Federation:
    """What the server ran: the plan, the rounds as recorded, and the final global weights."""

    rounds: tuple[RoundRecord, ...]
    arrays: tuple[np.ndarray, ...]
    seconds: float
    strategy: str = "FedAvg weighted by each station's number of parts"


def serve(initial: Sequence[np.ndarray], *, architecture: str, classes: Sequence[str], imgsz: int, rounds: int,
          min_stations: int, round_budget_s: float, address: str,
          certificates: tuple[bytes, bytes, bytes] | None = None, batch: int = 16,
          on_round: Callable[[RoundRecord], None] | None = None, prox: float = 0.0, server_lr: float = 1.0,
          server_momentum: float = 0.0) -> Federation:
    """Run ``rounds`` rounds with at least ``min_stations`` stations each, starting from ``initial``.

    ``prox`` > 0: the stations train with FedProx's proximal term; ``server_lr``/``server_momentum`` other than
    1/0: the server moves the global weights by FedAvgM's rule instead of to the plain average.
    Blocks until the last round; call it from the main thread (Flower handles SIGINT and SIGTERM there)."""
    require_tls_off_loopback(address, certificates is not None, "--certificates CA CERT KEY")
    if rounds < 1 or min_stations < 1 or round_budget_s <= 0:
        raise ConfigError(f"expected at least one round, one station and a positive budget, got {rounds} round(s), "
                          f"{min_stations} station(s), {round_budget_s} s.")
    if prox < 0 or server_lr <= 0 or not 0 <= server_momentum < 1:
        raise ConfigError(f"expected prox >= 0, a positive server learning rate and a server momentum in [0, 1), "
                          f"got {prox}, {server_lr}, {server_momentum}.")
    plan = {"architecture": architecture, "classes": json.dumps(list(classes)), "imgsz": int(imgsz),
            "budget_s": float(round_budget_s), "batch": int(batch), "prox": float(prox)}
    trainable = None
    if server_steps(server_lr, server_momentum):  # which state tensors are weights (not batch-norm statistics)
        net = build_network(architecture, classes)
        params = {id(p) for p in net.parameters()}
        trainable = [id(v) in params for v in net.state_dict(keep_vars=True).values()]
    strategy = RecordingFedAvg(
        on_round=on_round, server_lr=server_lr, server_momentum=server_momentum, trainable=trainable,
        fraction_fit=1.0, fraction_evaluate=1.0, min_fit_clients=min_stations,
        min_evaluate_clients=min_stations, min_available_clients=min_stations, accept_failures=True,
        initial_parameters=ndarrays_to_parameters(list(initial)),
        on_fit_config_fn=lambda r: {**plan, "round": r}, on_evaluate_config_fn=lambda r: {**plan, "round": r},
        fit_metrics_aggregation_fn=_per_station, evaluate_metrics_aggregation_fn=_per_station)
    started = time.time()
    # a station that hangs must not hold the plant's federation for ever: a round may take a few budgets
    timeout = 3 * round_budget_s + 300
    flwr.server.start_server(server_address=address, strategy=strategy, certificates=certificates,
                             config=flwr.server.ServerConfig(num_rounds=rounds, round_timeout=timeout))
    if strategy.latest is None:
        raise ConfigError("no round finished: no station trained (see the stations' logs).")
    how = Federation.strategy
    if prox:
        how += f"; FedProx on the stations (proximal weight {prox:g})"
    if strategy.steps:
        how += f"; FedAvgM on the server (step {server_lr:g}, momentum {server_momentum:g})"
    return Federation(tuple(strategy.rounds[r] for r in sorted(strategy.rounds)), tuple(strategy.latest),
                      round(time.time() - started, 1), how)


class StationClient(flwr.client.NumPyClient):
    """One station in the federation: trains on its own parts, answers with weights and figures only."""

    def __init__(self, station: str, source: Path, cache_dir: Path, clock: Callable[[], float] = time.monotonic,
                 validate: bool = True) -> None:
        self.station, self.source, self.cache_dir, self.clock, self.validate = station, source, cache_dir, clock, \
            validate
        self.model = None
        self._data: LocalData | None = None
        # the station's optimizer (AdamW's moments) goes on from round to round, on this station only: measured
        # in bench/federated.py, mAP50 0.224, 0.184, 0.154 against 0.150 with a fresh optimizer each round (README)
        self._kept: dict = {}
        self.done: list[dict] = []

    def _network(self, config) -> object:
        """The network the server's plan names, built once; the station's parts relabelled to its classes."""
        if self.model is None:
            classes = json.loads(str(config["classes"]))
            self._data = local_data(self.source, classes, self.cache_dir)
            self.model = build_network(str(config["architecture"]), classes)
        return self.model

    @property
    def data(self) -> LocalData:
        assert self._data is not None, "the data are prepared with the network, at the first round"
        return self._data

    def get_parameters(self, config):
        return arrays_of(self.model) if self.model is not None else []  # the server always sends its weights

    def fit(self, parameters, config):
        model = self._network(config)
        load_arrays(model, parameters)
        r = fine_tune(model, self.data, imgsz=int(config["imgsz"]), budget_s=float(config["budget_s"]),
                      batch=int(config.get("batch", 16)), seed=int(config.get("round", 0)), clock=self.clock,
                      keep=self._kept, prox=float(config.get("prox", 0.0)))
        self.done.append({"round": int(config.get("round", 0)), "parts": r.parts, "seconds": r.seconds})
        log.info("round %s: trained %d batches on %d parts in %.1f s", config.get("round"), r.batches, r.parts,
                 r.seconds)
        return arrays_of(model), r.parts, {"station": self.station, "seconds": r.seconds, "batches": r.batches,
                                            "loss": r.loss}

    def evaluate(self, parameters, config):
        model = self._network(config)
        if not self.validate or not self.data.val_parts:
            return 0.0, 0, {"station": self.station}
        load_arrays(model, parameters)
        m = map50(model, self.data.data_yaml, int(config["imgsz"]))
        return 1.0 - m, self.data.val_parts, {"station": self.station, "map50": m}


def wait_for(address: str, wait_s: float) -> None:
    """Until the server accepts connections (a station may start first); ConfigError after ``wait_s``."""
    host, port = split_address(address)
    end = time.monotonic() + wait_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=5):
                return
        except OSError as e:
            if time.monotonic() > end:
                raise ConfigError(f"no federation server answers at {address} ({e}); start "
                                  "'inspector federate serve' there first.") from None
            time.sleep(1.0)


def join(address: str, client: StationClient, root_certificate: bytes | None = None,
         wait_s: float = CONNECT_WAIT_S) -> list[dict]:
    """Take part in the federation at ``address`` until the server ends it; returns the rounds trained."""
    require_tls_off_loopback(address, root_certificate is not None, "--root-certificate CA")
    from flwr.compat.client.app import start_client

    wait_for(address, wait_s)
    start_client(server_address=address, client=client.to_client(), insecure=root_certificate is None,
                 root_certificates=root_certificate)
    return list(client.done)


def read_certificates(paths: Sequence[Path | str]) -> tuple[bytes, bytes, bytes]:
    """The CA certificate, the server's certificate and its private key (PEM files), as Flower takes them."""
    try:
        ca, cert, key = (Path(p).read_bytes() for p in paths)
    except OSError as e:
        raise ConfigError(f"cannot read a certificate file: {e}") from None
    return ca, cert, key
