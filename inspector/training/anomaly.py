"""Anomaly mode: learn what a good part looks like from pictures of good parts alone.

A PatchCore-style memory bank: mid-level patch features of the shipped surface base (``surfaces-v1``,
layers 4 and 6 of its backbone, nothing downloaded) of the picture at a fixed mean brightness, standardised
and reduced by PCA, a greedy coreset of them kept as the bank; a patch's anomaly is its distance to the
nearest bank entry, the map is smoothed and the picture's score is the map's maximum away from its outermost
cells (``MARGIN``). The threshold is a quantile of the scores of held-out good pictures (the
false-reject rate asked for), never fitted on defects; scores are mapped so that the threshold is 0.5.

The whole scoring (uint8 BGR picture in; features, nearest-neighbour distance, smoothing and the mapping;
score and heat map out) is one ONNX graph with the bank as a constant, so the station, ``evaluate`` and
``compare`` run the very numbers training measured (``parity`` checks it).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from inspector.core.errors import ConfigError, ModelError
from inspector.detection.card import ModelCard, write_card
from inspector.detection.registry import ModelRegistry, sha256_file, shipped_models_dir

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
SIZE = 256  # the model's input (pictures are resized to it whole: a part fills its picture)
TAPS = (4, 6)  # backbone layers whose features describe a patch (stride 8 and 16)
DIM = 16  # PCA dimensions kept of the standardised features
BANK = 16384  # coreset size
CHUNK = 512  # bank entries searched at a time
SAMPLE = 160_000  # patches the coreset is chosen from
BRIGHTNESS = 110.0 / 255.0  # each picture's mean brightness is scaled to this before the features
MARGIN = 2  # cells along each side of the map that are not scored (the part's own edge and the resize's border)
HELD_OUT = 0.2  # share of the good pictures kept apart to set the threshold
MIN_PICTURES = 10
BASE = "surfaces-v1"


# pictures ------------------------------------------------------------------------------------------
def read_pictures(data: Path | str) -> list[Path]:
    """The pictures of good parts: every image under a folder, or the lines of a list file (``path`` or
    ``path<TAB>kind``, relative to the list, to its folder's parent or absolute)."""
    data = Path(data)
    if data.is_dir():
        pics = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                      and not _is_mask(p))
    elif data.is_file():
        rels = [ln.split("\t")[0].strip() for ln in data.read_text(errors="replace").splitlines()]
        rels = [r for r in rels if r and not r.startswith("#")]
        if not rels:
            raise ConfigError(f"{data} lists no pictures.")
        root = _list_root(data, rels[0])
        pics = [root / r for r in rels]
        missing = [p for p in pics if not p.is_file()]
        if missing:
            raise ConfigError(f"{data}: {len(missing)} listed pictures are missing (first: {missing[0]}).")
    else:
        raise ConfigError(f"--data {data}: no such folder or list of pictures.")
    if len(pics) < MIN_PICTURES:
        raise ConfigError(f"{data}: {len(pics)} pictures of good parts; anomaly training needs at least "
                          f"{MIN_PICTURES} (a few hundred is better).")
    return pics


def _is_mask(p: Path) -> bool:
    """A defect mask beside its picture (``NAME.png`` next to ``NAME.jpg``) is not a picture of a part."""
    return p.suffix.lower() == ".png" and any(p.with_suffix(e).exists() for e in (".jpg", ".jpeg", ".bmp"))


def _list_root(listing: Path, first: str) -> Path:
    if Path(first).is_absolute():
        return Path("/")
    for root in (listing.parent, listing.parent.parent, Path.cwd()):
        if (root / first).is_file():
            return root
    raise ConfigError(f"{listing}: cannot find its first picture {first} beside the list or in its data set.")


def load_picture(path: Path) -> np.ndarray:
    """A picture as BGR uint8 HxWx3 (grey pictures become three equal channels)."""
    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise ConfigError(f"cannot read picture {path}.")
    return im


def model_input(image: np.ndarray, size: int) -> np.ndarray:
    """The picture as the model takes it: resized whole to size x size, uint8 BGR, NHWC with N = 1."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)[None]


# the model -----------------------------------------------------------------------------------------
def _net(layers, taps: Sequence[int], mean, proj, bank, centre: float, spread: float, size: int,
         margin: int = MARGIN):
    """The scoring network as a torch module (built here so that torch is imported only for training)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    class AnomalyNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = layers
            self.taps = tuple(taps)
            self.size = size
            w = torch.as_tensor(proj, dtype=torch.float32)  # (C, D)
            self.register_buffer("proj_w", w.T.contiguous()[:, :, None, None])
            self.register_buffer("proj_b", -(torch.as_tensor(mean, dtype=torch.float32) @ w))
            b = torch.as_tensor(bank, dtype=torch.float32)  # (N, D)
            self.register_buffer("bank_m2", (-2.0 * b).T.contiguous())
            self.register_buffer("bank_sq", (b * b).sum(1))
            k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
            self.register_buffer("blur", ((k[:, None] * k[None, :]) / 256.0)[None, None])
            self.margin = margin
            self.centre, self.spread = float(centre), float(spread)

        def patches(self, x):
            """(N, D, h, w) reduced patch features of uint8 BGR NHWC pictures."""
            return F.conv2d(self.features(x), self.proj_w, self.proj_b)

        def features(self, x):
            """(N, C, h, w) patch features (the taps, locally averaged, at the first tap's stride)."""
            x = x.to(torch.float32).permute(0, 3, 1, 2).flip(1) / 255.0
            # the same brightness for every picture (lighting drifts between shots and lines; a defect is local)
            x = (x * (BRIGHTNESS / x.mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3))).clamp(0.0, 1.0)
            feats = []
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i in self.taps:
                    feats.append(F.avg_pool2d(x, 3, 1, 1))
                if i >= max(self.taps):
                    break
            hw = feats[0].shape[-2:]
            return torch.cat([g if g.shape[-2:] == hw else F.interpolate(g, size=hw, mode="bilinear",
                                                                          align_corners=False) for g in feats], 1)

        def raw_map(self, x):
            """(N, 1, h, w) smoothed distance of each patch to its nearest normal patch."""
            return self.raw_from_features(self.features(x))

        def raw_from_features(self, feats):
            """The outermost ``margin`` cells are not scored (their distance is 0: the map keeps the picture's
            shape), nor searched: the bank is searched for the inner cells only."""
            m = self.margin
            if m:
                feats = feats[..., m:feats.shape[-2] - m, m:feats.shape[-1] - m]
            f = F.conv2d(feats, self.proj_w, self.proj_b)
            n, d, h, w = f.shape
            q = f.flatten(2).transpose(1, 2)  # (N, h*w, D)
            # |q - b|^2 = |q|^2 + min over b of (|b|^2 - 2 q.b), the bank in slices whose distances stay in the
            # CPU's cache (one matrix of every cell against the whole bank is memory-bound: 3x slower)
            near = None
            for i in range(0, self.bank_m2.shape[1], CHUNK):
                part = (q @ self.bank_m2[:, i:i + CHUNK] + self.bank_sq[i:i + CHUNK]).amin(2, keepdim=True)
                near = part if near is None else torch.minimum(near, part)
            d2 = (q * q).sum(2, keepdim=True) + near
            dist = d2.clamp_min(0.0).sqrt().reshape(n, 1, h, w)
            smooth = F.conv2d(F.pad(dist, (2, 2, 2, 2), mode="replicate"), self.blur)
            return F.pad(smooth, (m, m, m, m)) if m else smooth

        def forward(self, x):
            m = torch.sigmoid((self.raw_map(x) - self.centre) / self.spread)
            return m.flatten(1).amax(1), m

    return AnomalyNet().eval()


def load_backbone(base: Path, registry: ModelRegistry | None = None):
    """The first layers of the shipped surface base's backbone (fused, eval mode) up to the last tap."""
    import tempfile

    from inspector.detection.checkpoint import rebuild, vet
    from inspector.detection.offline import keep_data_local

    keep_data_local()
    vet(registry or ModelRegistry(), base)
    from ultralytics import YOLO

    # never the file itself: its tensors in a network built here (the gate every loader goes through)
    with tempfile.TemporaryDirectory(prefix="inspector-anomaly-") as tmp:
        model = YOLO(str(rebuild(Path(base), Path(tmp) / Path(base).name))).model.float().fuse().eval()
    layers = model.model[:max(TAPS) + 1]
    for p in layers.parameters():
        p.requires_grad_(False)
    return layers


def default_base() -> Path:
    return shipped_models_dir() / BASE / f"{BASE}.pt"


def _features(net, pictures: Sequence[Path], size: int, deadline: float, say: Callable[[str], None],
              batch: int = 8, dtype=np.float16) -> np.ndarray:
    """Patch features (N, C, h, w) of as many pictures as the deadline allows (PCA comes later)."""
    import torch

    out, t0 = [], time.monotonic()
    with torch.inference_mode():
        for i in range(0, len(pictures), batch):
            if out and time.monotonic() > deadline:
                say(f"time budget: features of {i} of {len(pictures)} pictures taken, the rest left out")
                break
            x = torch.from_numpy(np.concatenate([model_input(load_picture(p), size) for p in pictures[i:i + batch]]))
            out.append(net.features(x).numpy().astype(dtype))
            if i == 0:
                say(f"features: {len(pictures[i:i + batch]) / max(time.monotonic() - t0, 1e-6):.1f} pictures/s")
    return np.concatenate(out)


def coreset(x: np.ndarray, n: int, seed: int = 0, deadline: float = math.inf, least: int = 256) -> np.ndarray:
    """Indices of ``n`` rows of ``x`` chosen greedily so that every row is near one of them (k-center); fewer
    (but at least ``least``) when ``time.monotonic()`` passes ``deadline``."""
    if n >= len(x):
        return np.arange(len(x))
    z = np.ascontiguousarray(x, dtype=np.float32)
    sq = (z * z).sum(1)
    sel = [int(np.random.default_rng(seed).integers(len(z)))]
    d = sq - 2.0 * (z @ z[sel[0]]) + sq[sel[0]]
    for k in range(n - 1):
        if k >= least and k % 64 == 0 and time.monotonic() > deadline:
            break
        i = int(np.argmax(d))
        sel.append(i)
        np.minimum(d, sq - 2.0 * (z @ z[i]) + sq[i], out=d)
    return np.array(sel)


def fit(pictures: Sequence[Path], *, base: Path | None = None, size: int = SIZE, dim: int = DIM,
        bank_size: int = BANK, false_reject: float = 0.02, time_budget_s: float | None = None,
        registry: ModelRegistry | None = None, say: Callable[[str], None] = log.info, seed: int = 0):
    """(net, facts): the scoring network fitted on good pictures, and what the card records."""
    import torch

    t_start = time.monotonic()
    budget = time_budget_s or 3600.0
    if not 0.0 < false_reject < 0.5:
        raise ConfigError(f"--false-reject {false_reject}: must be a rate between 0 and 0.5, e.g. 0.02.")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pictures))
    n_cal = max(5, int(round(len(pictures) * HELD_OUT)))
    cal = [pictures[i] for i in sorted(order[:n_cal])]
    learn = [pictures[i] for i in sorted(order[n_cal:])]
    base = base or default_base()
    layers = load_backbone(base, registry)
    probe = _net(layers, TAPS, np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1)), 0.0, 1.0, size)
    # the held-out pictures' features first (all of them: they set the threshold), then as many of the others as
    # the budget allows; the coreset and the export share the rest
    cal_feats = _features(probe, cal, size, math.inf, say, dtype=np.float32)
    feats = _features(probe, learn, size, t_start + 0.6 * budget, say)
    n_learnt = len(feats)
    c = feats.shape[1]
    patches = feats.transpose(0, 2, 3, 1).reshape(-1, c)
    del feats
    sample = patches[rng.choice(len(patches), min(len(patches), SAMPLE), replace=False)].astype(np.float32)
    del patches
    mean = sample.mean(0)
    sd = sample.std(0) + 1e-6  # each channel on the same footing before the components are chosen
    z = (sample - mean) / sd
    del sample
    _, _, vt = np.linalg.svd(z[::4], full_matrices=False)
    reduced = (z @ vt[:dim].T).astype(np.float32)
    del z
    proj = (vt[:dim] / sd).T.astype(np.float32)  # (x - mean) @ proj == ((x - mean) / sd) @ components
    t0 = time.monotonic()
    bank = reduced[coreset(reduced, bank_size, seed, deadline=t_start + 0.85 * budget)]
    say(f"memory bank: {len(bank)} of {len(reduced)} patches ({time.monotonic() - t0:.0f} s)")
    net = _net(layers, TAPS, mean, proj, bank, 0.0, 1.0, size)
    with torch.inference_mode():
        raw = np.concatenate([net.raw_from_features(torch.from_numpy(cal_feats[i:i + 16])).flatten(1).amax(1).numpy()
                              for i in range(0, len(cal_feats), 16)]).astype(np.float64)
    threshold = float(np.quantile(raw, 1.0 - false_reject, method="higher"))
    median = float(np.median(raw))
    # scores 0.5 at the threshold, about 0.05 at the held-out median: the default review band stays quiet
    spread = max((threshold - median) / math.log(19.0), 1e-6)
    net.centre, net.spread = threshold, spread
    facts = {"pictures": len(pictures), "learnt_from": n_learnt, "held_out": len(cal), "bank": int(len(bank)),
             "features": {"base": base.name, "base_sha256": sha256_file(base), "layers": list(TAPS),
                          "channels": int(c), "pca": dim, "brightness": round(BRIGHTNESS, 4),
                          "margin_cells": MARGIN},
             "threshold": {"score": 0.5, "false_reject_quantile": false_reject, "raw_distance": round(threshold, 6),
                           "centre": threshold, "spread": spread, "held_out_median": round(median, 6),
                           "held_out_pictures": len(cal),
                           "scores_at": _scores_at(raw, threshold, spread)}}
    return net, facts


def _scores_at(raw: np.ndarray, centre: float, spread: float) -> dict[str, float]:
    """The score threshold that gives each false-reject rate on the held-out good pictures."""
    out = {}
    for frr in (0.005, 0.01, 0.02, 0.05, 0.1):
        q = float(np.quantile(raw, 1.0 - frr, method="higher"))
        out[f"{frr:g}"] = round(1.0 / (1.0 + math.exp(-(q - centre) / spread)), 4)
    return out


# export --------------------------------------------------------------------------------------------
def export_onnx(net, path: Path) -> Path:
    """The whole scoring as one ONNX graph: input ``image`` uint8 (1, S, S, 3) BGR; outputs ``score`` (1,)
    and ``heatmap`` (1, 1, h, w), both in [0, 1]."""
    import onnx
    import torch

    x = torch.zeros((1, net.size, net.size, 3), dtype=torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constant shapes: the input size is fixed
        torch.onnx.export(net, (x,), str(tmp), input_names=["image"], output_names=["score", "heatmap"],
                          opset_version=17, dynamo=False, do_constant_folding=True)
    model = onnx.load(str(tmp))
    for k, v in {"inspector_task": "anomaly", "names": "{0: 'anomaly'}", "imgsz": str(net.size),
                 "centre": repr(net.centre), "spread": repr(net.spread)}.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(model, str(path))
    tmp.unlink(missing_ok=True)
    return path


def parity(net, onnx_path: Path, pictures: Sequence[Path]) -> float:
    """The largest difference between the training-time model's score and the exported one's."""
    import torch

    from inspector.detection.anomaly import AnomalyDetector

    det = AnomalyDetector(onnx_path, "", backend="onnxruntime", threads=1)
    worst = 0.0
    with torch.inference_mode():
        for p in pictures:
            im = load_picture(p)
            ref = float(net(torch.from_numpy(model_input(im, net.size)))[0][0])
            worst = max(worst, abs(ref - det.score(im)[0]))
    return worst


def train_anomaly(data: Path | str, out: Path | str, *, time_budget_s: float | None = None,
                  base: Path | None = None, false_reject: float = 0.02, command: str = "",
                  registry: ModelRegistry | None = None, say: Callable[[str], None] = log.info) -> ModelCard:
    """Learn normal from ``data`` (a folder or a list of pictures of good parts), write ``out/NAME.onnx`` and
    its card; returns the card."""
    t0 = time.monotonic()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is not empty: give a new folder for the anomaly model.")
    pictures = read_pictures(data)
    say(f"learning normal from {len(pictures)} pictures of good parts")
    net, facts = fit(pictures, base=base, false_reject=false_reject, time_budget_s=time_budget_s,
                     registry=registry, say=say)
    name = out.name or "anomaly"
    onnx_path = export_onnx(net, out / f"{name}.onnx")
    worst = parity(net, onnx_path, pictures[:8])
    say(f"export parity on 8 pictures: largest score difference {worst:.2e}")
    if worst > 1e-3:
        raise ModelError(f"the exported anomaly model scores {worst:.4f} away from the trained one (at most "
                         "0.001): not written as a model.")
    seconds = time.monotonic() - t0
    card = {"name": name, "task": "anomaly", "architecture": f"patch memory bank on {BASE}",
            "classes": ["anomaly"], "imgsz": net.size, "base": BASE, "data": str(data),
            "data_note": "pictures of good parts only: no defect, no label",
            "epochs_planned": 1, "epochs_done": 1, "interrupted": False, "train_seconds": round(seconds, 1),
            "command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "anomaly": {**facts, "export_parity": worst}, "time_budget_s": time_budget_s,
            "files": {onnx_path.name: {"sha256": sha256_file(onnx_path), "bytes": onnx_path.stat().st_size}}}
    return write_card(out, card)
