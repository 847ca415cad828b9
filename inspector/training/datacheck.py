"""``inspector data check``: what a QC engineer should know about a data set before training on it.

Images and boxes per class and split, box sizes against the image size, exact duplicates (same
bytes) and near-duplicates (8x8 difference hash) within and across splits, empty and corrupt
labels, unreadable images, class imbalance; as a dict (JSON), as text and as a PNG drawn with
OpenCV (no fonts to download).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inspector.core.images import save_png
from inspector.sources.images import decode_image
from inspector.training.datasets import Dataset, LabelledImage, load_dataset
from inspector.training.plan import DEFAULT_IMGSZ, MIN_DEFECT_PX, advise_imgsz

log = logging.getLogger(__name__)

# near-duplicates: 32x32 high-passed thumbnails that correlate at NEAR_CORRELATION or more (a resized,
# re-encoded or brightened copy stays above 0.98; different NEU-DET pictures stay under 0.92). Up to
# ALL_PAIRS_MAX images every pair is compared; above it only pairs whose 8x8 difference hashes (64 bits)
# are within NEAR_BITS (flat textures' dHashes are unstable, so this can miss some).
NEAR_CORRELATION = 0.93
NEAR_BITS = 8
ALL_PAIRS_MAX = 8000
IMBALANCE_RATIO = 5.0  # commonest / rarest class (boxes in train) above this is worth a warning
MIN_BOXES = 20  # a class with fewer train boxes than this will barely be learned
# box short side as a share of the image's long side: edges of the histogram's bins
SIZE_EDGES = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 10.0)


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its right neighbour (on a 9x8 thumbnail)."""
    import cv2

    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """32x32, high-passed, zero mean, unit norm: two views of one picture correlate near 1, other pictures
    (even of the same texture, under the same lighting) do not."""
    import cv2

    t = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    t = (t - cv2.GaussianBlur(t, (0, 0), 2)).flatten()
    t -= t.mean()
    n = float(np.linalg.norm(t))
    return t / n if n > 1e-6 else t


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(len(x), 8), axis=1).sum(1)


def _near_pairs(thumbs: list[np.ndarray], hashes: list[int]) -> list[tuple[int, int, float]]:
    """(i, j, correlation) for every pair i < j of near-duplicate pictures."""
    if len(thumbs) < 2:
        return []
    t = np.stack(thumbs)
    h = np.array(hashes, dtype=np.uint64)
    out = []
    for i in range(len(t) - 1):
        rest = np.arange(i + 1, len(t))
        if len(t) > ALL_PAIRS_MAX:
            rest = rest[_popcount(h[i + 1:] ^ h[i]) <= NEAR_BITS]
        c = t[rest] @ t[i]
        out += [(i, int(j), round(float(v), 3)) for j, v in zip(rest, c, strict=True) if v >= NEAR_CORRELATION]
    return out


def _size_bin(rel: float) -> int:
    for i in range(len(SIZE_EDGES) - 1):
        if rel < SIZE_EDGES[i + 1]:
            return i
    return len(SIZE_EDGES) - 2


def _bin_labels(imgsz: int) -> list[str]:
    lab = []
    for lo, hi in zip(SIZE_EDGES[:-1], SIZE_EDGES[1:], strict=True):
        if hi > 1:
            lab.append(f">{lo:.0%} (>{lo * imgsz:.0f} px)")
        else:
            lab.append(f"{lo:.0%}-{hi:.0%} ({lo * imgsz:.0f}-{hi * imgsz:.0f} px)")
    return lab


def _sizes(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pictures' long sides, boxes' short sides, boxes' long sides) in camera pixels."""
    ims = [im for split in ds.splits.values() for im in split]
    sides = [(b.x2 - b.x1, b.y2 - b.y1) for im in ims for b in im.boxes]
    return (np.array([max(im.width, im.height) for im in ims], float), np.array([min(s) for s in sides], float),
            np.array([max(s) for s in sides], float))


def _scale(pictures: np.ndarray, short: np.ndarray, long_: np.ndarray) -> dict:
    if not len(pictures) or not len(short):
        return {}
    return {"picture_long_side_px": float(np.median(pictures)), "box_short_px_p10": float(np.quantile(short, 0.1)),
            "box_short_px_median": float(np.median(short)), "box_long_px_p95": float(np.quantile(long_, 0.95))}


def camera_scale(ds: Dataset) -> dict:
    """Picture and box sizes in camera pixels, whatever the model's input: the pictures' median long side, the
    boxes' short sides (10th percentile, median) and the 95th percentile of their long sides; {} without boxes.
    ``inspector train`` records it in the card, for ``tile_size = "auto"`` (``detection.tiling.auto_tiling``)."""
    return _scale(*_sizes(ds))


def camera_px(ds: Dataset, imgsz: int, tile: int = 0) -> dict:
    """Box sizes in camera pixels against the model's input and a tile: what a defect becomes when the whole
    picture is shrunk to ``imgsz``, and the tile (at the model's own scale) and overlap that keep it whole."""
    pictures, short, long_ = _sizes(ds)
    scale = _scale(pictures, short, long_)
    if not scale:
        return {}
    side, big, median_short = scale["picture_long_side_px"], scale["box_long_px_p95"], scale["box_short_px_median"]
    shrink = max(1.0, side / imgsz)
    overlap = int(min(imgsz // 2, -(-big // 32) * 32))
    out = {"picture_long_side_px": round(side), "shrink_untiled": round(shrink, 2),
           "box_short_px": {"p10": round(scale["box_short_px_p10"], 1), "median": round(median_short, 1)},
           "box_long_px_p95": round(big, 1), "median_short_px_untiled": round(median_short / shrink, 1),
           "suggested_tile": imgsz if shrink > 1.5 else 0, "suggested_overlap": overlap if shrink > 1.5 else 0}
    if tile:
        out["tile"] = tile
        out["boxes_over_tile"] = int((long_ > tile).sum())
        out["tile_scale"] = round(tile / imgsz, 2)
    return out


def check_dataset(path: Path | str, imgsz: int = DEFAULT_IMGSZ,
                  progress: Callable[[int, int], None] | None = None, tile: int = 0) -> dict:
    """Read every image and label of the data set at ``path``; return the report as a dict."""
    problems: dict[str, list[str]] = {}
    ds = load_dataset(path, problems)
    entries = [(split, im) for split, ims in ds.splits.items() for im in ims]
    per_class = {c: {"images": Counter(), "boxes": Counter()} for c in ds.classes}
    empty: Counter = Counter()
    sizes = [0] * (len(SIZE_EDGES) - 1)
    rel_short: list[float] = []
    image_sizes: Counter = Counter()
    digests: dict[str, list[int]] = defaultdict(list)
    hashes: list[int] = []
    thumbs: list[np.ndarray] = []
    hashed: list[int] = []  # index into entries of each hash
    for k, (split, im) in enumerate(entries, 1):
        _count_labels(ds, split, im, per_class, empty, sizes, rel_short)
        image_sizes[f"{im.width}x{im.height}"] += 1
        try:
            digests[hashlib.sha256(im.path.read_bytes()).hexdigest()].append(k - 1)
        except OSError as e:
            problems.setdefault("unreadable image", []).append(f"{im.path.name} ({e.strerror or e})")
            continue
        img, err = decode_image(im.path)
        if img is None:
            problems.setdefault("unreadable image", []).append(im.path.name)
        else:
            gray = img if img.ndim == 2 else img[..., :3].mean(axis=2).astype(np.uint8)
            hashes.append(dhash(gray))
            thumbs.append(thumbnail(gray))
            hashed.append(k - 1)
        if progress:
            progress(k, len(entries))
    exact = _exact_groups(digests, entries)
    exact_pairs = {tuple(sorted((a, b))) for idx in digests.values() if len(idx) > 1
                   for a in idx for b in idx if a < b}
    near = [(hashed[i], hashed[j], c) for i, j, c in _near_pairs(thumbs, hashes)
            if (min(hashed[i], hashed[j]), max(hashed[i], hashed[j])) not in exact_pairs]
    near_list = [{"files": [entries[a][1].path.name, entries[b][1].path.name],
                  "splits": [entries[a][0], entries[b][0]], "correlation": c} for a, b, c in near]
    advice = advise_imgsz(ds, imgsz)
    report = {
        "data": str(ds.root),
        "layout": ds.layout,
        "classes": list(ds.classes),
        "images": {**{s: len(ims) for s, ims in ds.splits.items()}, "total": len(entries)},
        "per_class": {c: {"images": dict(v["images"]), "boxes": dict(v["boxes"])} for c, v in per_class.items()},
        "images_without_boxes": dict(empty),
        "image_sizes": dict(image_sizes.most_common(10)),
        "box_sizes": {"measure": "box short side / image long side", "imgsz": imgsz,
                      "bins": _bin_labels(imgsz), "counts": sizes,
                      "smallest_px": round(float(np.quantile(rel_short, 0.1)) * imgsz, 1) if rel_short else None,
                      "median_px": round(float(np.median(rel_short)) * imgsz, 1) if rel_short else None,
                      "under_min_px": int(sum(r * imgsz < MIN_DEFECT_PX for r in rel_short))},
        "imgsz_advice": advice.message,
        "suggested_imgsz": advice.imgsz,
        "duplicates": {"exact": exact, "exact_across_splits": sum(len(set(g["splits"])) > 1 for g in exact),
                       "near": near_list[:200], "near_count": len(near_list),
                       "near_across_splits": sum(len(set(n["splits"])) > 1 for n in near_list),
                       "near_correlation": NEAR_CORRELATION},
        "problems": {k: v for k, v in problems.items()},
        "imbalance": _imbalance(per_class, ds),
        "camera_px": camera_px(ds, imgsz, tile),
    }
    report["advice"] = _advice(report)
    report["training_refuses"] = refusals(report)
    return report


def refusals(r: dict) -> list[str]:
    """Why ``inspector train`` would refuse this data set (empty: it would train on it)."""
    out = []
    if r["problems"]:
        out.append(f"{sum(len(v) for v in r['problems'].values())} file problem(s)")
    if not r["images"].get("train"):
        out.append("the training split is empty")
    return out


def _count_labels(ds: Dataset, split: str, im: LabelledImage, per_class: dict, empty: Counter, sizes: list[int],
                  rel_short: list[float]) -> None:
    if not im.boxes:
        empty[split] += 1
    long_side = max(im.width, im.height) or 1
    for c in {b.cls for b in im.boxes}:
        per_class[ds.classes[c]]["images"][split] += 1
    for b in im.boxes:
        per_class[ds.classes[b.cls]]["boxes"][split] += 1
        rel = min(b.x2 - b.x1, b.y2 - b.y1) / long_side
        rel_short.append(rel)
        sizes[_size_bin(rel)] += 1


def _exact_groups(digests: dict[str, list[int]], entries: list) -> list[dict]:
    return [{"files": [entries[i][1].path.name for i in idx], "splits": [entries[i][0] for i in idx]}
            for idx in digests.values() if len(idx) > 1]


def _train_boxes(per_class: dict, ds: Dataset) -> dict[str, int]:
    split = "train" if "train" in ds.splits else None
    return {c: (v["boxes"].get(split, 0) if split else sum(v["boxes"].values())) for c, v in per_class.items()}


def _imbalance(per_class: dict, ds: Dataset) -> dict:
    boxes = _train_boxes(per_class, ds)
    if not boxes:
        return {"ratio": None, "rarest": None, "commonest": None, "train_boxes": {}}
    rare = min(boxes, key=boxes.get)
    common = max(boxes, key=boxes.get)
    ratio = boxes[common] / boxes[rare] if boxes[rare] else float("inf")
    return {"ratio": round(ratio, 2) if np.isfinite(ratio) else None, "rarest": rare, "commonest": common,
            "train_boxes": boxes}


def _advice(r: dict) -> list[str]:
    out = []
    if r["problems"]:
        n = sum(len(v) for v in r["problems"].values())
        out.append(f"{n} file problem(s): fix or remove them before training (training refuses the data set).")
    d = r["duplicates"]
    if d["exact_across_splits"]:
        out.append(f"{d['exact_across_splits']} exact duplicate(s) across splits: the val figures are inflated; "
                   "keep each picture in one split only.")
    if d["near_across_splits"]:
        out.append(f"{d['near_across_splits']} near-duplicate pair(s) across splits (32x32 high-pass "
                   f"thumbnails correlating >= {d['near_correlation']}): look at them; the same part in train and val "
                   "inflates the val figures.")
    im = r["imbalance"]
    tb = im.get("train_boxes") or {}
    missing = [c for c, n in tb.items() if n == 0]
    if missing:
        out.append(f"no training boxes for {', '.join(missing)}: the model cannot learn them.")
    elif im["ratio"] and im["ratio"] > IMBALANCE_RATIO:
        out.append(f"class imbalance {im['ratio']:.1f}:1 ({im['commonest']} vs {im['rarest']}): label more "
                   f"{im['rarest']} or expect it to be found less often.")
    few = [c for c, n in tb.items() if 0 < n < MIN_BOXES]
    if few:
        out.append(f"fewer than {MIN_BOXES} training boxes for {', '.join(few)}: label more of them.")
    bs = r["box_sizes"]
    if bs["under_min_px"]:
        out.append(f"{bs['under_min_px']} box(es) are under {MIN_DEFECT_PX} px at {bs['imgsz']}: "
                   f"{r['imgsz_advice']}.")
    if not out:
        out.append("no problem found.")
    return out


def format_text(r: dict) -> str:
    """The report for a terminal."""
    splits = [s for s in r["images"] if s != "total"]
    lines = [f"data set {r['data']} ({r['layout']}): {r['images']['total']} images ("
             + ", ".join(f"{s} {r['images'][s]}" for s in splits) + f"), {len(r['classes'])} classes", "",
             f"{'class':<20}" + "".join(f"{s + ' img':>11}{s + ' box':>11}" for s in splits)]
    for c, v in r["per_class"].items():
        lines.append(f"{c[:20]:<20}" + "".join(f"{v['images'].get(s, 0):>11}{v['boxes'].get(s, 0):>11}"
                                                for s in splits))
    lines.append(f"{'(no boxes)':<20}" + "".join(f"{r['images_without_boxes'].get(s, 0):>11}{'':>11}" for s in splits))
    bs = r["box_sizes"]
    lines += ["", f"box sizes ({bs['measure']}; px at {bs['imgsz']}):"]
    top = max(bs["counts"]) or 1
    for lab, n in zip(bs["bins"], bs["counts"], strict=True):
        lines.append(f"  {lab:<24} {n:>6} {'#' * round(40 * n / top)}")
    lines.append("  image sizes: " + ", ".join(f"{k} ({v})" for k, v in r["image_sizes"].items()))
    lines.append(f"  {r['imgsz_advice']}")
    cam = r.get("camera_px") or {}
    if cam:
        lines.append(f"  in camera pixels: box short side p10 {cam['box_short_px']['p10']:g}, median "
                     f"{cam['box_short_px']['median']:g} (long side p95 {cam['box_long_px_p95']:g}) on pictures of "
                     f"{cam['picture_long_side_px']} px; shrunk {cam['shrink_untiled']:g}x to {bs['imgsz']} px the "
                     f"median box is {cam['median_short_px_untiled']:g} px")
        if cam.get("tile"):
            lines.append(f"  tile {cam['tile']} px ({cam['tile_scale']:g}x the model's input): "
                         f"{cam['boxes_over_tile']} box(es) larger than a tile")
        if cam["suggested_tile"]:
            lines.append(f"  suggested: --tile {cam['suggested_tile']} --overlap {cam['suggested_overlap']} (tiles "
                         "at the model's own scale; the overlap holds 95 % of the boxes whole)")
    d = r["duplicates"]
    lines += ["", f"exact duplicates: {len(d['exact'])} group(s), {d['exact_across_splits']} across splits"]
    for g in d["exact"][:5]:
        lines.append("  " + ", ".join(f"{f} ({s})" for f, s in zip(g["files"], g["splits"], strict=True)))
    lines.append(f"near-duplicates (thumbnails correlating >= {d['near_correlation']}): {d['near_count']} pair(s), "
                 f"{d['near_across_splits']} across splits")
    for n in d["near"][:5]:
        lines.append(f"  {n['files'][0]} ({n['splits'][0]}) ~ {n['files'][1]} ({n['splits'][1]}), "
                     f"{n['correlation']:.3f}")
    lines += ["", "file problems: " + ("none" if not r["problems"] else "")]
    for kind, where in r["problems"].items():
        lines.append(f"  {kind}: {len(where)} ({', '.join(where[:5])}{', ...' if len(where) > 5 else ''})")
    im = r["imbalance"]
    if im["ratio"] is not None:
        lines.append(f"class balance (train boxes): {im['commonest']} / {im['rarest']} = {im['ratio']:.1f}")
    lines += ["", "advice:"] + [f"  - {a}" for a in r["advice"]]
    refused = r.get("training_refuses") or []
    lines += ["", "training would refuse this data set: " + "; ".join(refused) + "." if refused
              else "training would accept this data set."]
    return "\n".join(lines)


# ---- the PNG ---------------------------------------------------------------------------------------------

_COLORS = [(200, 120, 40), (60, 160, 60), (40, 90, 220), (160, 60, 160), (30, 170, 200), (120, 120, 120)]


def _text(img: np.ndarray, s: str, x: int, y: int, scale: float = 0.5, color=(30, 30, 30), bold: int = 1) -> None:
    import cv2

    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, bold, cv2.LINE_AA)


def _bars(img: np.ndarray, x0: int, y0: int, w: int, h: int, title: str, labels: list[str],
          series: list[tuple[str, list[int]]], mark_x: float | None = None) -> None:
    """Grouped vertical bars with their counts, labels below, a legend at the top right."""
    import cv2

    _text(img, title, x0, y0 - 10, 0.6, bold=2)
    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (180, 180, 180), 1)
    top = max([max(v) for _, v in series if v] + [1])
    n = max(len(labels), 1)
    group = w / n
    bw = max(2, int(group * 0.8 / max(len(series), 1)))
    for i, lab in enumerate(labels):
        for k, (_, vals) in enumerate(series):
            v = vals[i]
            bh = int((h - 30) * v / top)
            x = int(x0 + i * group + group * 0.1 + k * bw)
            cv2.rectangle(img, (x, y0 + h - bh), (x + bw - 2, y0 + h), _COLORS[k % len(_COLORS)], -1)
            _text(img, str(v), x, y0 + h - bh - 4, 0.35)
        _text(img, lab[:22], int(x0 + i * group + 4), y0 + h + 16 + (i % 2) * 14, 0.38)
    for k, (name, _) in enumerate(series):
        cv2.rectangle(img, (x0 + w - 150, y0 + 8 + 18 * k), (x0 + w - 138, y0 + 20 + 18 * k), _COLORS[k % 6], -1)
        _text(img, name, x0 + w - 132, y0 + 19 + 18 * k, 0.42)
    if mark_x is not None:
        x = int(x0 + mark_x * group)
        cv2.line(img, (x, y0), (x, y0 + h), (0, 0, 200), 2)


def write_png(r: dict, path: Path | str) -> Path:
    """Draw the report (classes per split, box sizes, duplicates, problems, advice) into a PNG."""

    W, H = 1400, 1000
    img = np.full((H, W, 3), 255, np.uint8)
    splits = [s for s in r["images"] if s != "total"]
    _text(img, f"data check: {r['data']}", 20, 32, 0.7, bold=2)
    _text(img, f"{r['images']['total']} images (" + ", ".join(f"{s} {r['images'][s]}" for s in splits)
          + f"), {len(r['classes'])} classes, layout {r['layout']}", 20, 58, 0.55)
    classes = list(r["per_class"])
    _bars(img, 30, 110, 640, 300, "boxes per class and split", classes,
          [(f"{s} boxes", [r["per_class"][c]["boxes"].get(s, 0) for c in classes]) for s in splits])
    _bars(img, 730, 110, 640, 300, "images per class and split (and with no boxes)", classes + ["(none)"],
          [(f"{s} images", [r["per_class"][c]["images"].get(s, 0) for c in classes]
            + [r["images_without_boxes"].get(s, 0)]) for s in splits])
    bs = r["box_sizes"]
    # where MIN_DEFECT_PX at imgsz falls on the bins (log scale between edges)
    rel = MIN_DEFECT_PX / bs["imgsz"]
    i = _size_bin(rel)
    lo, hi = SIZE_EDGES[i], min(SIZE_EDGES[i + 1], 1.0)
    frac = (rel - lo) / (hi - lo) if hi > lo else 0
    _bars(img, 30, 500, 1340, 220, f"box short side / image long side (px at {bs['imgsz']}); red line: "
          f"{MIN_DEFECT_PX} px", [b.split(" ")[0] + " " + b.split(" ", 1)[1] for b in bs["bins"]],
          [("boxes", bs["counts"])], mark_x=i + frac)
    y = 800
    d = r["duplicates"]
    col = (0, 0, 190) if d["exact_across_splits"] or d["near_across_splits"] or r["problems"] else (30, 120, 30)
    _text(img, f"exact duplicates: {len(d['exact'])} group(s), {d['exact_across_splits']} across splits;  "
          f"near-duplicates: {d['near_count']} pair(s), {d['near_across_splits']} across splits;  "
          f"file problems: {sum(len(v) for v in r['problems'].values())}", 20, y, 0.55, col, 2)
    y += 28
    _text(img, r["imgsz_advice"][:150], 20, y, 0.5)
    y += 30
    for a in r["advice"][:5]:
        _text(img, f"- {a}"[:160], 20, y, 0.5)
        y += 24
    return save_png(img, path)
