"""What a station does in a round, on its own machine: its parts as a training set in the global model's
classes, the network rebuilt from a bundled architecture, the global weights loaded into it, a fine-tune for a
bounded time, and mAP50 on its own held-out parts. Nothing here talks to the network.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from inspector.core.errors import DatasetError, ModelError
from inspector.detection.offline import keep_data_local

log = logging.getLogger(__name__)

LR = 0.001  # AdamW, as Ultralytics picks for short runs; each round starts a fresh optimizer (plain FedAvg)
WEIGHT_DECAY = 5e-4


@dataclass(frozen=True)
class LocalData:
    """A station's parts as an Ultralytics data set, in the global model's class order (on this machine only)."""

    data_yaml: Path
    train_parts: int
    val_parts: int
    dropped_boxes: int = 0  # boxes of classes the global model does not know

    def __post_init__(self) -> None:
        if self.train_parts < 1:
            raise ValueError(f"expected at least one training part, got {self.train_parts}")


@dataclass(frozen=True)
class RoundResult:
    """What one round of local training did (figures only: no picture, no label, no file name)."""

    parts: int
    batches: int
    seconds: float
    loss: float


def local_data(data: Path | str, classes: Sequence[str], cache_dir: Path) -> LocalData:
    """The labelled parts in ``data`` (a YOLO or VOC folder, data.yaml: as ``inspector train`` reads) relabelled
    to ``classes`` (the global model's); boxes of other classes are dropped and counted. DatasetError when
    nothing is left to train on."""
    from inspector.training.datasets import load_dataset, to_ultralytics

    ds = load_dataset(data)
    index = {c: i for i, c in enumerate(classes)}
    dropped = 0
    splits = {}
    for name, images in ds.splits.items():
        kept = []
        for im in images:
            boxes = []
            for b in im.boxes:
                label = ds.classes[b.cls] if 0 <= b.cls < len(ds.classes) else ""
                if label in index:
                    boxes.append(replace(b, cls=index[label]))
                else:
                    dropped += 1
            kept.append(replace(im, boxes=tuple(boxes)))
        splits[name] = tuple(kept)
    if not splits.get("train"):
        raise DatasetError(f"{data}: no parts to train on (the training split is empty).")
    if dropped:
        log.warning("%d box(es) of classes the global model does not know are left out", dropped)
    remapped = replace(ds, classes=tuple(classes), splits=splits)
    yaml = to_ultralytics(remapped, cache_dir)
    return LocalData(yaml, len(splits["train"]), len(splits.get("val") or ()), dropped)


def build_network(architecture: str, classes: Sequence[str]):
    """A fresh network of a bundled architecture (``yolo11n``...) for ``classes``; nothing is read from a file."""
    keep_data_local()
    from ultralytics.nn.tasks import DetectionModel

    from inspector.detection.checkpoint import bundled_architecture

    arch = bundled_architecture(architecture)
    model = DetectionModel(cfg={**arch, "nc": len(classes)}, nc=len(classes), verbose=False)
    model.names = dict(enumerate(classes))
    return model


def arrays_of(model) -> list[np.ndarray]:
    """The network's state (weights and batch-norm statistics) as numpy arrays, in the state dict's order."""
    return [v.detach().cpu().numpy().copy() for v in model.state_dict().values()]


def load_arrays(model, arrays: Sequence[np.ndarray]) -> None:
    """Put ``arrays`` (as ``arrays_of`` gives them) into the network; ModelError when they do not fit it."""
    import torch

    state = model.state_dict()
    if len(arrays) != len(state):
        raise ModelError(f"the global weights hold {len(arrays)} tensors, this network {len(state)}: "
                         "the server and the station build different architectures.")
    new = {}
    for (k, v), a in zip(state.items(), arrays, strict=True):
        if tuple(a.shape) != tuple(v.shape):
            raise ModelError(f"the global weights do not fit this network ({k}: {tuple(a.shape)} against "
                             f"{tuple(v.shape)}).")
        new[k] = torch.as_tensor(np.asarray(a)).to(v.dtype)
    model.load_state_dict(new, strict=True)


def _hyp(imgsz: int, batch: int):
    from ultralytics.cfg import get_cfg

    return get_cfg(overrides={"imgsz": imgsz, "batch": batch, "task": "detect", "mode": "train", "plots": False,
                              "workers": 0, "device": "cpu", "verbose": False})


@functools.lru_cache(maxsize=4)
def _loader(data_yaml: str, imgsz: int, batch: int):
    """The training split's loader, built once per station and kept for the following rounds."""
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    hyp = _hyp(imgsz, batch)
    info = check_det_dataset(data_yaml)
    ds = build_yolo_dataset(hyp, info["train"], batch, info, mode="train", stride=32)
    return hyp, build_dataloader(ds, batch, workers=0, shuffle=True, pin_memory=False, device="cpu")


def fine_tune(model, data: LocalData, *, imgsz: int, budget_s: float, batch: int = 16, seed: int = 0,
              clock: Callable[[], float] = time.monotonic, keep: dict | None = None, prox: float = 0.0) -> RoundResult:
    """Train ``model`` in place on the station's training split until ``budget_s`` (on ``clock``) has passed,
    at least one batch (reading the split for the first time is not counted). ``clock`` is wall time by
    default; the benchmark passes CPU time. ``prox`` > 0 adds FedProx's proximal term, ``prox / 2`` times the
    squared distance of the weights from where the round started (the global model), to the loss."""
    import torch

    keep_data_local()
    torch.manual_seed(seed)
    hyp, loader = _loader(str(data.data_yaml), imgsz, batch)
    start = clock()  # the budget is training time: the loader is built once, before the first round's clock
    model.args = hyp
    model.criterion = None
    model.train()
    for n, p in model.named_parameters():
        p.requires_grad_(".dfl" not in n)  # the DFL's fixed projection stays fixed, as Ultralytics' trainer keeps it
    opt = (keep or {}).get("optimizer")
    if opt is None:
        decay = [p for n, p in model.named_parameters() if p.ndim > 1 and p.requires_grad]
        rest = [p for n, p in model.named_parameters() if p.ndim <= 1 and p.requires_grad]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                                 {"params": rest, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.999))
        if keep is not None:  # the station's optimizer goes on from round to round (its moments stay local)
            keep["optimizer"] = opt
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params] if prox > 0 else []
    batches, total = 0, 0.0
    it = iter(loader)
    while batches == 0 or clock() - start < budget_s:
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        b["img"] = b["img"].float() / 255
        loss, _items = model.loss(b)
        loss = task = loss.sum()
        if anchor:
            loss = task + prox / 2 * sum(((p - a) ** 2).sum() for p, a in zip(params, anchor, strict=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
        opt.step()
        batches += 1
        total += float(task.detach()) / max(1, len(b["img"]))
    model.eval()
    return RoundResult(data.train_parts, batches, round(clock() - start, 2), round(total / batches, 4))


def map50(model, data_yaml: Path, imgsz: int, split: str = "val", batch: int = 16) -> float:
    """mAP50 of (a copy of) ``model`` on a split of ``data_yaml``, by Ultralytics' validator."""
    from ultralytics.models.yolo.detect import DetectionValidator

    keep_data_local()
    v = DetectionValidator(args={"data": str(data_yaml), "imgsz": imgsz, "batch": batch, "device": "cpu",
                                 "plots": False, "verbose": False, "split": split, "half": False, "save_json": False})
    stats = v(model=copy.deepcopy(model).float().eval())
    return round(float(stats.get("metrics/mAP50(B)", 0.0)), 4)
