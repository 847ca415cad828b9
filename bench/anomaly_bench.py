"""Anomaly methods on the magnetic tiles: image AUROC and recall at a normal-only threshold.

Features from the shipped surface base (models/surfaces-v1, nothing downloaded); compares a PatchCore-style
memory bank (coreset + nearest-neighbour distance) with one Gaussian over all patches (Mahalanobis).
  python bench/anomaly_bench.py --data ../shared/datasets/magnetic-tile [--size 256] [--bank 4096]
Prints one line per method. Features are cached under --cache between runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def load(data: Path, rel: str, size: int) -> np.ndarray:
    im = cv2.imread(str(data / rel), cv2.IMREAD_COLOR)
    return cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)


def backbone(base: Path):
    import tempfile

    from ultralytics import YOLO

    from inspector.detection.checkpoint import rebuild

    with tempfile.TemporaryDirectory(prefix="anomaly-bench-") as tmp:  # the gate: tensors into our own network
        return YOLO(str(rebuild(base, Path(tmp) / base.name))).model.model[:7].eval().float()


def features(net, ims: list[np.ndarray], layers: tuple[int, ...]) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(ims), 16):
            x = torch.from_numpy(np.stack(ims[i:i + 16])[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
            feats = {}
            for j, layer in enumerate(net):
                x = layer(x)
                if j in layers:
                    feats[j] = x
            hw = feats[layers[0]].shape[-2:]
            fs = [F.avg_pool2d(feats[k], 3, 1, 1) for k in layers]
            fs = [f if f.shape[-2:] == hw else F.interpolate(f, size=hw, mode="bilinear", align_corners=False)
                  for f in fs]
            out.append(torch.cat(fs, 1).numpy().astype(np.float16))
    return np.concatenate(out)


def coreset(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((x.shape[1], 32)).astype(np.float32) / np.sqrt(32)
    z = torch.from_numpy(x @ proj)
    sel = [int(rng.integers(len(x)))]
    d = ((z - z[sel[0]]) ** 2).sum(1)
    for _ in range(n - 1):
        i = int(torch.argmax(d))
        sel.append(i)
        d = torch.minimum(d, ((z - z[i]) ** 2).sum(1))
    return x[np.array(sel)]


def smooth_max(m: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1, 4, 6, 4, 1], dtype=torch.float32)
    k = (k[:, None] * k[None, :]) / 256
    m = F.conv2d(m, k[None, None], padding=2)
    return m


def auroc(neg: np.ndarray, pos: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/datasets/magnetic-tile"))
    ap.add_argument("--base", type=Path, default=Path("models/surfaces-v1/surfaces-v1.pt"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--layers", default="4,6")
    ap.add_argument("--bank", type=int, default=4096)
    ap.add_argument("--frr", type=float, default=0.02)
    ap.add_argument("--dim", type=int, default=64, help="PCA dimensions of the patch features (0: all)")
    ap.add_argument("--methods", default="patchcore,gaussian")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/anomaly-bench"))
    a = ap.parse_args()
    layers = tuple(int(v) for v in a.layers.split(","))
    train = [s.strip() for s in (a.data / "splits/train_normal.txt").read_text().splitlines() if s.strip()]
    test = [s.split("\t") for s in (a.data / "splits/test.txt").read_text().splitlines() if s.strip()]
    a.cache.mkdir(parents=True, exist_ok=True)
    key = a.cache / f"{a.base.stem}-{a.size}-{a.layers.replace(',', '_')}.npz"
    t0 = time.time()
    if key.exists():
        z = np.load(key)
        ftr, fte = z["tr"], z["te"]
    else:
        net = backbone(a.base)
        ftr = features(net, [load(a.data, p, a.size) for p in train], layers)
        fte = features(net, [load(a.data, p, a.size) for p, _ in test], layers)
        np.savez(key, tr=ftr, te=fte)
    print(f"features {ftr.shape} {fte.shape} in {time.time() - t0:.0f} s")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train))
    n_cal = len(train) // 5
    cal, fit = order[:n_cal], order[n_cal:]
    c = ftr.shape[1]
    P = ftr[fit].transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float32)
    P = P[rng.choice(len(P), min(len(P), 100_000), replace=False)]
    if a.dim:
        mu0 = P.mean(0)
        _, _, vt = np.linalg.svd(P[::4] - mu0, full_matrices=False)
        W = vt[:a.dim].T.astype(np.float32)
        P = (P - mu0) @ W
        proj = lambda f: np.einsum("nchw,cd->ndhw", f.astype(np.float32) - mu0[None, :, None, None], W)  # noqa: E731
        ftr, fte = proj(ftr), proj(fte)
        c = a.dim
    kinds = np.array([k for _, k in test])

    def report(name: str, score_fn, secs: float) -> None:
        s_cal = score_fn(ftr[cal])
        s_te = score_fn(fte)
        neg, pos = s_te[kinds == "normal"], s_te[kinds != "normal"]
        thr = float(np.quantile(s_cal, 1 - a.frr, method="higher"))
        per = {k: round(float((s_te[kinds == k] > thr).mean()), 3) for k in sorted(set(kinds) - {"normal"})}
        print(f"{name}: image AUROC {auroc(neg, pos):.4f}; at the {a.frr:.0%} threshold from {len(cal)} held-out "
              f"normal: FRR {(neg > thr).mean():.3f}, recall {(pos > thr).mean():.3f} {per}; fit {secs:.0f} s")

    # PatchCore-style memory bank
    t0 = time.time()
    bank = torch.from_numpy(coreset(P, a.bank))
    bn = (bank ** 2).sum(1)
    t_pc = time.time() - t0

    def pc_score(f: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(f), 32):
            x = torch.from_numpy(f[i:i + 32].astype(np.float32))
            n, cc, h, w = x.shape
            q = x.permute(0, 2, 3, 1).reshape(-1, cc)
            d = ((q ** 2).sum(1, keepdim=True) - 2 * q @ bank.T + bn).clamp_min(0).min(1).values.sqrt()
            out.append(smooth_max(d.reshape(n, 1, h, w)).amax((1, 2, 3)).numpy())
        return np.concatenate(out)

    if "patchcore" in a.methods:
        report(f"patchcore bank {a.bank} dim {c}", pc_score, t_pc)
    # one Gaussian over every patch (Mahalanobis)
    t0 = time.time()
    mu = P.mean(0)
    cov = np.cov((P - mu).T) + 0.01 * np.eye(c)
    inv = torch.from_numpy(np.linalg.inv(cov).astype(np.float32))
    mu_t = torch.from_numpy(mu)
    t_g = time.time() - t0

    def g_score(f: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(f), 32):
            x = torch.from_numpy(f[i:i + 32].astype(np.float32))
            n, cc, h, w = x.shape
            q = x.permute(0, 2, 3, 1).reshape(-1, cc) - mu_t
            d = ((q @ inv) * q).sum(1).clamp_min(0).sqrt()
            out.append(smooth_max(d.reshape(n, 1, h, w)).amax((1, 2, 3)).numpy())
        return np.concatenate(out)

    if "gaussian" in a.methods:
        report(f"gaussian (mahalanobis) dim {c}", g_score, t_g)


if __name__ == "__main__":
    main()
