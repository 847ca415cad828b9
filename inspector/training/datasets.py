"""Labelled data sets: read, check and convert to what Ultralytics trains on.

Three layouts are taken as they are: an Ultralytics ``data.yaml``; a Pascal VOC folder (``images/`` +
``annotations/``, optional ``splits/train.txt`` and ``splits/val.txt``); a YOLO folder (``images/`` +
``labels/`` + ``classes.txt``), which is what ``inspector synth`` and the review export write.
Conversion happens in a cache folder; the user's data is only read.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import math
import os
import shutil
import xml.etree.ElementTree as ET
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from inspector.core.errors import DatasetError
from inspector.core.types import BoxCorners

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VAL_PERCENT = 15  # an unsplit folder keeps this share of images aside for validation while training
TYPO_SIMILARITY = 0.85  # a VOC class name this close to a commoner one (difflib's ratio) is taken for a typo


@dataclass(frozen=True)
class GroundTruthBox(BoxCorners):
    """One labelled box in pixels (as labelled: a label without area is kept for the data check to report;
    ``box`` is the one ``Box``)."""

    cls: int
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    width: int
    height: int
    boxes: tuple[GroundTruthBox, ...]


@dataclass(frozen=True)
class Dataset:
    root: Path
    layout: str
    classes: tuple[str, ...]
    splits: dict[str, tuple[LabelledImage, ...]]
    has_split_files: bool = False

    def split(self, name: str | None) -> tuple[LabelledImage, ...]:
        """Images of a split; ``None`` means 'val' where the data set defines one, else all."""
        if name is None:
            name = "val" if self.has_split_files else "all"
        if name == "all":
            return tuple(im for part in self.splits.values() for im in part)
        if name not in self.splits:
            raise DatasetError(f"{self.root}: no split named {name!r}; it has {', '.join(sorted(self.splits))}.")
        if not self.splits[name]:
            raise DatasetError(f"{self.root}: split {name!r} is empty. Add image names to it or pick another split.")
        return self.splits[name]


@dataclass
class _Problems:
    found: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    sink: dict[str, list[str]] | None = None  # given: problems are collected here instead of raised

    def add(self, kind: str, where: str) -> None:
        self.found[kind].append(where)

    def raise_if_any(self, root: Path, advice: str) -> None:
        if not self.found:
            return
        if self.sink is not None:
            for kind, where in self.found.items():
                self.sink.setdefault(kind, []).extend(where)
            return
        lines = [f"{root}: {sum(len(v) for v in self.found.values())} problem(s) in the data set."]
        for kind, where in self.found.items():
            shown = ", ".join(where[:5]) + (", ..." if len(where) > 5 else "")
            lines.append(f"  {kind}: {len(where)} ({shown})")
        lines.append(f"  What to do: {advice}")
        raise DatasetError("\n".join(lines))


def _text(path: Path) -> str:
    """A text file of the data set, or a DatasetError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text file (expected UTF-8 text). Fix or remove it.") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read ({e.strerror or e}).") from None


def _image_size(path: Path) -> tuple[int, int] | None:
    import cv2
    import numpy as np

    data = np.fromfile(str(path), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        return None
    return int(img.shape[1]), int(img.shape[0])


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _split_of(stem: str) -> str:
    return "val" if zlib.crc32(stem.encode()) % 100 < VAL_PERCENT else "train"


def _read_split_files(root: Path) -> dict[str, list[str]] | None:
    sdir = root / "splits"
    if not sdir.is_dir():
        return None
    out = {}
    for f in sorted(sdir.glob("*.txt")):
        out[f.stem] = [s.strip() for s in _text(f).splitlines() if s.strip()]
    return out or None


def _assign(images: dict[str, LabelledImage], split_files: dict[str, list[str]] | None,
            root: Path, problems: _Problems) -> dict[str, tuple[LabelledImage, ...]]:
    splits: dict[str, list[LabelledImage]] = defaultdict(list)
    if split_files is None:
        for stem, im in images.items():
            splits[_split_of(stem)].append(im)
        splits.setdefault("train", [])
        splits.setdefault("val", [])
    else:
        for name, stems in split_files.items():
            for stem in stems:
                if stem in images:
                    splits[name].append(images[stem])
                else:
                    problems.add(f"name in splits/{name}.txt with no image", stem)
            if not stems:
                problems.add("empty split file", f"splits/{name}.txt")
    return {k: tuple(v) for k, v in splits.items()}


def _load_voc(root: Path, sink: dict[str, list[str]] | None = None) -> Dataset:
    problems = _Problems(sink=sink)
    ann_dir = root / "annotations"
    class_file = root / "classes.txt"
    fixed_classes = [c.strip() for c in _text(class_file).splitlines() if c.strip()] if class_file.exists() else None
    parsed: dict[str, tuple[Path, int, int, list[tuple[str, float, float, float, float]]]] = {}
    for img in _images_in(root / "images"):
        xml = ann_dir / f"{img.stem}.xml"
        if not xml.exists():
            problems.add("image without annotation", img.name)
            continue
        try:
            tree = ET.parse(xml).getroot()
            size = tree.find("size")
            w = int(float(size.findtext("width"))) if size is not None else 0
            h = int(float(size.findtext("height"))) if size is not None else 0
            if w <= 0 or h <= 0:
                wh = _image_size(img)
                if wh is None:
                    problems.add("unreadable image", img.name)
                    continue
                w, h = wh
            objs = []
            for obj in tree.iter("object"):
                bb = obj.find("bndbox")
                name = (obj.findtext("name") or "").strip()
                objs.append((name, *(float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))))
        except (ET.ParseError, AttributeError, TypeError, ValueError):
            problems.add("malformed annotation", xml.name)
            continue
        parsed[img.stem] = (img, w, h, objs)
    names = fixed_classes or _voc_classes([o[0] for _, _, _, objs in parsed.values() for o in objs], problems)
    index = {n: i for i, n in enumerate(names)}
    images: dict[str, LabelledImage] = {}
    for stem, (img, w, h, objs) in parsed.items():
        boxes = []
        for name, x1, y1, x2, y2 in objs:
            if name not in index:
                near = difflib.get_close_matches(name, names, 1, TYPO_SIMILARITY)
                hint = f" (a typo of {near[0]!r}?)" if near else ""
                problems.add(f"unknown class {name!r}{hint}", f"{stem}.xml")
            elif not (0 <= x1 < x2 <= w + 1 and 0 <= y1 < y2 <= h + 1):
                problems.add("box outside the image", f"{stem}.xml")
            else:
                boxes.append(GroundTruthBox(index[name], x1, y1, min(x2, w), min(y2, h)))
        images[stem] = LabelledImage(img, w, h, tuple(boxes))
    split_files = _read_split_files(root)
    splits = _assign(images, split_files, root, problems)
    if not images:
        problems.add("no images", str(root / "images"))
    problems.raise_if_any(root, "fix or remove the files named, then run the command again.")
    return Dataset(root, "voc", tuple(names), splits, split_files is not None)


def _voc_classes(found: list[str], problems: _Problems) -> list[str]:
    """The classes of a VOC folder without classes.txt: every name found, except one that is rarer than, and
    nearly spelled as, another (``scratchh`` beside ``scratch``): that is a typo, reported, not a new class."""
    counts = Counter(found)
    names = []
    for name in sorted(counts):
        near = [o for o in difflib.get_close_matches(name, list(counts), 3, TYPO_SIMILARITY)
                if o != name and counts[o] > counts[name]]
        if not near:
            names.append(name)
    return names


def _parse_yolo_labels(label: Path, w: int, h: int, ncls: int,
                       problems: _Problems) -> tuple[GroundTruthBox, ...] | None:
    boxes = []
    for n, line in enumerate(_text(label).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 5:
                raise ValueError
            c = int(parts[0])
            cx, cy, bw, bh = (float(v) for v in parts[1:])
            if not all(math.isfinite(v) for v in (cx, cy, bw, bh)):
                raise ValueError
        except ValueError:
            problems.add("malformed label line", f"{label.name}:{n}")
            return None
        if not 0 <= c < ncls:
            problems.add(f"unknown class index {c}", f"{label.name}:{n}")
            continue
        x1, y1, x2, y2 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
        # a rounding error past an edge is tolerated and clipped; a box that is then empty is outside
        cut = [min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2)]
        if (bw <= 0 or bh <= 0 or x1 < -0.01 or y1 < -0.01 or x2 > 1.01 or y2 > 1.01
                or cut[2] <= cut[0] or cut[3] <= cut[1]):
            problems.add("box outside the image", f"{label.name}:{n}")
            continue
        boxes.append(GroundTruthBox(c, cut[0] * w, cut[1] * h, cut[2] * w, cut[3] * h))
    return tuple(boxes)


def _load_yolo_folder(root: Path, classes: list[str] | None = None,
                      sink: dict[str, list[str]] | None = None) -> Dataset:
    problems = _Problems(sink=sink)
    if classes is None:
        cf = root / "classes.txt"
        if not cf.exists():
            raise DatasetError(f"{root}: a YOLO folder needs classes.txt (one class name a line).")
        classes = [c.strip() for c in _text(cf).splitlines() if c.strip()]
    images: dict[str, LabelledImage] = {}
    for img in _images_in(root / "images"):
        label = root / "labels" / f"{img.stem}.txt"
        if not label.exists():
            problems.add("image without label file", img.name)
            continue
        wh = _image_size(img)
        if wh is None:
            problems.add("unreadable image", img.name)
            continue
        boxes = _parse_yolo_labels(label, wh[0], wh[1], len(classes), problems)
        if boxes is not None:
            images[img.stem] = LabelledImage(img, wh[0], wh[1], boxes)
    if not images and not problems.found:
        problems.add("no images", str(root / "images"))
    split_files = _read_split_files(root)
    splits = _assign(images, split_files, root, problems)
    problems.raise_if_any(root, "fix or remove the files named (a label line is: class cx cy w h, "
                                "all but the class between 0 and 1), then run the command again.")
    return Dataset(root, "yolo", tuple(classes), splits, split_files is not None)


def _load_data_yaml(path: Path, sink: dict[str, list[str]] | None = None) -> Dataset:
    import yaml

    try:
        spec = yaml.safe_load(_text(path))
    except yaml.YAMLError as e:
        raise DatasetError(f"{path}: not valid YAML ({e}).") from e
    if not isinstance(spec, dict) or "names" not in spec:
        raise DatasetError(f"{path}: a data.yaml needs 'names' and 'train'/'val' entries.")
    names = spec["names"]
    classes = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    base = Path(spec.get("path") or path.parent)
    if not base.is_absolute():
        base = path.parent / base
    problems = _Problems(sink=sink)
    splits: dict[str, tuple[LabelledImage, ...]] = {}
    for split in ("train", "val", "test"):
        if split not in spec or spec[split] is None:
            continue
        where = base / spec[split]
        if where.is_dir():
            imgs = _images_in(where)
        else:
            imgs = [base / s.strip() for s in _text(where).splitlines() if s.strip()]
        out = []
        for img in imgs:
            label = Path(str(img).replace(f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}")).with_suffix(".txt")
            if not label.exists():  # as in a YOLO folder: a part with no defect has an empty label file
                problems.add("image without label file", img.name)
                continue
            wh = _image_size(img)
            if wh is None:
                problems.add("unreadable image", img.name)
                continue
            boxes = _parse_yolo_labels(label, *wh, len(classes), problems)
            if boxes is not None:
                out.append(LabelledImage(img, wh[0], wh[1], boxes))
        splits[split] = tuple(out)
    if not splits:
        problems.add("no train/val entries", path.name)
    problems.raise_if_any(path, "fix the files named, then run the command again.")
    return Dataset(path, "data.yaml", tuple(classes), splits, True)


def load_dataset(path: Path | str, problems: dict[str, list[str]] | None = None) -> Dataset:
    """Read and check a data set in any supported layout; raise DatasetError with a report.

    With ``problems`` (a dict), problems in single files (a bad label, an unreadable image) are
    collected there, kind -> files, and the rest of the data set is returned (``inspector data check``).
    """
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"data set not found: {root}")
    if root.is_file():
        if root.suffix.lower() in (".yaml", ".yml"):
            return _load_data_yaml(root, problems)
        raise DatasetError(f"{root}: expected a folder or a data.yaml file.")
    if (root / "data.yaml").exists() and not (root / "images").is_dir():
        return _load_data_yaml(root / "data.yaml", problems)
    if not (root / "images").is_dir():
        raise DatasetError(f"{root}: no images/ folder. Expected images/ with annotations/ (Pascal VOC), "
                           "images/ with labels/ and classes.txt (YOLO), or a data.yaml.")
    if (root / "annotations").is_dir():
        return _load_voc(root, problems)
    if (root / "labels").is_dir():
        return _load_yolo_folder(root, sink=problems)
    raise DatasetError(f"{root}: images/ has no labels/ or annotations/ beside it.")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.symlink(src.resolve(), dst)
    except OSError:  # Windows without symlink rights, or another file system
        shutil.copy2(src, dst)


def to_ultralytics(ds: Dataset, cache_root: Path) -> Path:
    """Write (once) an Ultralytics data.yaml with images/labels per split under the cache; return it."""
    key = hashlib.sha256()
    for name, ims in sorted(ds.splits.items()):
        for im in ims:
            key.update(f"{name}|{im.path.resolve()}|{im.path.stat().st_mtime_ns}|{im.boxes}".encode())
    key.update(repr(ds.classes).encode())
    out = cache_root / f"{ds.root.name}-{key.hexdigest()[:16]}"
    yaml_path = out / "data.yaml"
    if yaml_path.exists():
        return yaml_path
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    train_split = "train" if "train" in ds.splits else next(iter(ds.splits))
    val_split = "val" if ds.splits.get("val") else train_split
    for name in {train_split, val_split}:
        (tmp / "images" / name).mkdir(parents=True)
        (tmp / "labels" / name).mkdir(parents=True)
        for im in ds.splits[name]:
            _link_or_copy(im.path, tmp / "images" / name / im.path.name)
            lines = "".join(
                f"{b.cls} {(b.x1 + b.x2) / 2 / im.width:.6f} {(b.y1 + b.y2) / 2 / im.height:.6f} "
                f"{(b.x2 - b.x1) / im.width:.6f} {(b.y2 - b.y1) / im.height:.6f}\n" for b in im.boxes)
            (tmp / "labels" / name / f"{im.path.stem}.txt").write_text(lines)
    names = "".join(f"  {i}: {json_str(c)}\n" for i, c in enumerate(ds.classes))
    (tmp / "data.yaml").write_text(f"path: {json_str(str(out))}\ntrain: images/{train_split}\n"
                                   f"val: images/{val_split}\nnames:\n{names}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return yaml_path


def json_str(s: str) -> str:
    import json

    return json.dumps(s)
