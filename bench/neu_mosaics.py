"""NEU-DET as a plant's camera sees steel strip: real 200x200 defect crops laid into large clean pictures.

The NEU-DET crops (../shared/datasets/neu-det) hold their defects large; a strip camera's 5 MP picture holds
them small. Each mosaic (2400x2000 by default) is clean strip background (low-frequency grey texture with
sensor noise, its grey level and spread taken from NEU's own pixels outside every box) with ``--crops`` real
crops pasted at random, non-overlapping places, their borders blended over 12 px so that the model does not
learn the crop's edge; their boxes move with them. Train mosaics are made only from splits/train.txt crops,
val mosaics only from splits/val.txt, each crop used once; ``--clean`` of the pictures hold no crop (good parts).

Writes a YOLO folder (images/, labels/, classes.txt, splits/train.txt and val.txt) outside the repository:

    python bench/neu_mosaics.py --out /tmp/neu-mosaics [--size 2400x2000] [--crops 6] [--clean 0.2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NEU = ROOT.parent / "shared" / "datasets" / "neu-det"
CLASSES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")
CROP = 200
FEATHER = 12


def _boxes(stem: str) -> list[tuple[int, float, float, float, float]]:
    root = ET.parse(NEU / "annotations" / f"{stem}.xml").getroot()
    out = []
    for o in root.iter("object"):
        b = o.find("bndbox")
        name = (o.findtext("name") or "").strip()
        if b is None or name not in CLASSES:
            continue
        x1, y1, x2, y2 = (float(b.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax"))
        out.append((CLASSES.index(name), x1, y1, x2, y2))
    return out


def _background(w: int, h: int, mean: float, std: float, rng: np.random.Generator) -> np.ndarray:
    low = cv2.resize(rng.normal(0, 1, (h // 50 + 2, w // 50 + 2)).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    streaks = cv2.resize(rng.normal(0, 1, (h, 1)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    g = mean + std * (0.25 * low + 0.15 * streaks) + rng.normal(0, std * 0.6, (h, w))
    return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _stats(stems: list[str]) -> tuple[float, float]:
    vals = []
    for s in stems[:200]:
        im = cv2.imread(str(NEU / "images" / f"{s}.jpg"), cv2.IMREAD_GRAYSCALE)
        mask = np.ones_like(im, bool)
        for _, x1, y1, x2, y2 in _boxes(s):
            mask[int(y1):int(y2), int(x1):int(x2)] = False
        if mask.any():
            vals.append(im[mask])
    v = np.concatenate(vals)
    return float(v.mean()), float(v.std())


def _paste(big: np.ndarray, crop: np.ndarray, x: int, y: int) -> None:
    alpha = np.ones((CROP, CROP), np.float32)
    ramp = np.linspace(0, 1, FEATHER, dtype=np.float32)
    alpha[:, :FEATHER] *= ramp
    alpha[:, -FEATHER:] *= ramp[::-1]
    alpha[:FEATHER, :] *= ramp[:, None]
    alpha[-FEATHER:, :] *= ramp[::-1, None]
    region = big[y:y + CROP, x:x + CROP].astype(np.float32)
    big[y:y + CROP, x:x + CROP] = (alpha[:, :, None] * crop + (1 - alpha[:, :, None]) * region).astype(np.uint8)


def _places(w: int, h: int, n: int, rng: random.Random) -> list[tuple[int, int]]:
    taken: list[tuple[int, int]] = []
    while len(taken) < n:
        x, y = rng.randrange(0, w - CROP), rng.randrange(0, h - CROP)
        if all(abs(x - a) >= CROP + 8 or abs(y - b) >= CROP + 8 for a, b in taken):
            taken.append((x, y))
    return taken


def write_split(split: str, stems: list[str], out: Path, size: tuple[int, int], per: int, clean: float,
                rng: random.Random, nrng: np.random.Generator, mean: float, std: float) -> dict[str, list[str]]:
    """Mosaics of one split; returns the NEU crops each mosaic holds."""
    w, h = size
    rng.shuffle(stems)
    groups = [stems[i:i + per] for i in range(0, len(stems), per)]
    n_clean = round(len(groups) * clean / (1 - clean)) if clean < 1 else 0
    names = []
    used: dict[str, list[str]] = {}
    for k, group in enumerate(groups + [[]] * n_clean):
        big = _background(w, h, mean, std, nrng)
        lines = []
        for stem, (x, y) in zip(group, _places(w, h, len(group), rng), strict=True):
            crop = cv2.imread(str(NEU / "images" / f"{stem}.jpg"))
            crop = cv2.resize(crop, (CROP, CROP)) if crop.shape[:2] != (CROP, CROP) else crop
            _paste(big, crop, x, y)
            for c, x1, y1, x2, y2 in _boxes(stem):
                cx, cy = x + (x1 + x2) / 2, y + (y1 + y2) / 2
                lines.append(f"{c} {cx / w:.6f} {cy / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
        name = f"{split}_{k:04d}"
        cv2.imwrite(str(out / "images" / f"{name}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (out / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        names.append(name)
        used[name] = list(group)
    return used


def main() -> int:
    global NEU
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="new folder outside the repository")
    ap.add_argument("--size", default="2400x2000")
    ap.add_argument("--crops", type=int, default=6, help="NEU crops per mosaic")
    ap.add_argument("--clean", type=float, default=0.2, help="share of mosaics without any crop")
    ap.add_argument("--limit", type=int, default=0, help="use at most this many crops of each split (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--neu", default=str(NEU), help="NEU-DET folder (default: ../shared/datasets/neu-det)")
    a = ap.parse_args()
    NEU = Path(a.neu)
    if not (NEU / "splits" / "train.txt").is_file():
        print(f"NEU-DET not found at {NEU}", file=sys.stderr)
        return 1
    out = Path(a.out)
    if out.resolve().is_relative_to(ROOT):
        print("--out must lie outside the repository (NEU-DET images are not to be copied into it)", file=sys.stderr)
        return 1
    w, _, h = a.size.partition("x")
    size = (int(w), int(h))
    for d in ("images", "labels", "splits"):
        (out / d).mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    rng, nrng = random.Random(a.seed), np.random.default_rng(a.seed)
    train = (NEU / "splits" / "train.txt").read_text().split()
    val = (NEU / "splits" / "val.txt").read_text().split()
    if a.limit:
        train, val = train[:a.limit], val[:a.limit]
    mean, std = _stats(train)
    crops = {}
    for split, stems in (("train", train), ("val", val)):
        used = write_split(split, list(stems), out, size, a.crops, a.clean, rng, nrng, mean, std)
        (out / "splits" / f"{split}.txt").write_text("\n".join(used) + "\n")
        crops.update(used)
        print(f"{split}: {len(used)} mosaics of {size[0]}x{size[1]} from {len(stems)} NEU {split} crops")
    (out / "crops.json").write_text(json.dumps(crops, indent=1))  # which NEU crops each mosaic holds
    return 0


if __name__ == "__main__":
    sys.exit(main())
