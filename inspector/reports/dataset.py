"""Reviewed parts as a YOLO training set (``images/`` + ``labels/`` + ``classes.txt``), the layout that
``inspector train --data DIR`` reads as it is.

Labels follow the final decision: the machine's boxes corrected by QC (a "false_detection" review removes
the box it names, a "missed_defect" review adds the box it drew), and a part finally PASS (as judged, or
overridden to PASS: "not a crack") is a clean negative with an empty label file, whatever boxes the
model drew on it. A part finally FAIL without any box left cannot teach the model anything and is
counted as "needs a box" instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.core.reviewing import standing
from inspector.reports.data import Box
from inspector.reports.output import Progress, check

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewStep:
    action: str
    new_verdict: str
    detail: Mapping[str, Any]
    id: int | None = None  # the review's id (an undo names the one it takes back)


@dataclass(frozen=True)
class PartForTraining:
    """One inspected part: the machine's boxes (with their detection ids) and its reviews, oldest first."""

    inspection_id: int
    image_path: str | None
    machine_verdict: str
    final_verdict: str
    detections: tuple[tuple[int, Box], ...]
    reviews: tuple[ReviewStep, ...]


@dataclass(frozen=True)
class DatasetSummary:
    images: int = 0
    boxes: int = 0
    empty_labels: int = 0  # parts without a defect (a PASS), written with an empty label file
    needs_box: int = 0  # finally FAIL but no box to teach from: QC should draw one
    skipped_unjudged: int = 0  # REVIEW or NOT_INSPECTED in the end: no ground truth
    missing_image: int = 0
    classes: tuple[str, ...] = ()

    def text(self) -> str:
        return (f"{self.images} images, {self.boxes} boxes, {self.empty_labels} without defects; "
                f"{self.needs_box} FAIL part(s) need a box drawn; {self.skipped_unjudged} not judged and "
                f"{self.missing_image} without a stored image skipped")


def drawn_box(detail: Mapping[str, Any]) -> Box | None:
    src = detail.get("box", detail)
    try:
        label = str(src.get("label") or detail.get("label") or "").strip()
        x1, y1, x2, y2 = (float(src[k]) for k in ("x1", "y1", "x2", "y2"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not label:
        return None
    return Box(label, 1.0, min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _detection_id(detail: Mapping[str, Any]) -> int | None:
    for key in ("detection_id", "detection", "id"):
        v = detail.get(key)
        if isinstance(v, (int, str)) and str(v).isdigit():
            return int(v)
    return None


def corrected_boxes(part: PartForTraining) -> list[Box]:
    """The machine's boxes, less those QC marked false, plus those QC drew."""
    boxes: dict[object, Box] = {("d", did): b for did, b in part.detections}
    for k, r in enumerate(standing(part.reviews)):
        if r.action == "false_detection":
            did = _detection_id(r.detail)
            if did is None:
                log.warning("inspection %s: a false_detection review names no detection id", part.inspection_id)
            boxes.pop(("d", did), None)
        elif r.action == "missed_defect":
            b = drawn_box(r.detail)
            if b is None:
                log.warning("inspection %s: a missed_defect review has no usable box", part.inspection_id)
            else:
                boxes[("r", k)] = b
    return list(boxes.values())


def training_boxes(part: PartForTraining) -> list[Box]:
    """The labels the part teaches: none for a part finally PASS (a clean negative), else the corrected boxes."""
    return [] if part.final_verdict == "PASS" else corrected_boxes(part)


def _yolo_lines(boxes: list[Box], w: int, h: int, index: dict[str, int], classes: list[str]) -> list[str]:
    lines = []
    for b in boxes:
        x1, y1, x2, y2 = max(0.0, b.x1), max(0.0, b.y1), min(float(w), b.x2), min(float(h), b.y2)
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        if b.label not in index:
            index[b.label] = len(classes)
            classes.append(b.label)
        lines.append(f"{index[b.label]} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                     f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    return lines


def _image_size(data: bytes) -> tuple[int, int] | None:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    return None if img is None else (int(img.shape[1]), int(img.shape[0]))


def write_yolo_dataset(out: Path, parts: Iterable[PartForTraining], classes: Iterable[str], image_root: Path,
                       total: int | None = None, progress: Progress | None = None,
                       cancel: threading.Event | None = None) -> DatasetSummary:
    """Write the data set into ``out`` (a new or empty folder), whole or not at all."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InspectorError(f"{out} exists and is not an empty folder; choose a new folder for the data set.")
    names = list(classes)
    index = {c: i for i, c in enumerate(names)}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "labels").mkdir()
    s = {"images": 0, "boxes": 0, "empty_labels": 0, "needs_box": 0, "skipped_unjudged": 0, "missing_image": 0}
    try:
        for n, part in enumerate(parts, 1):
            if n % 200 == 0:
                check(cancel)
                if progress is not None:
                    progress(n, total or n)
            _one(part, tmp, image_root, names, index, s)
        check(cancel)
        (tmp / "classes.txt").write_text("".join(f"{c}\n" for c in names), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DatasetSummary(classes=tuple(names), **s)


def _stored_picture(part: PartForTraining, image_root: Path) -> tuple[Path | None, bytes]:
    """The part's stored picture file and its bytes (empty when it has none or it cannot be read)."""
    src = Path(image_root) / part.image_path if part.image_path else None
    try:
        return src, (src.read_bytes() if src is not None else b"")
    except OSError:
        return src, b""


def _one(part: PartForTraining, tmp: Path, image_root: Path, names: list[str], index: dict[str, int],
         s: dict[str, int]) -> None:
    if part.final_verdict not in ("PASS", "FAIL"):
        s["skipped_unjudged"] += 1
        return
    boxes = training_boxes(part)
    if part.final_verdict == "FAIL" and not boxes:
        s["needs_box"] += 1
        return
    src, data = _stored_picture(part, image_root)
    wh = _image_size(data)
    if wh is None:
        s["missing_image"] += 1
        return
    stem = f"insp{part.inspection_id:08d}"
    suffix = (src.suffix.lower() if src is not None else "") or ".jpg"
    (tmp / "images" / f"{stem}{suffix}").write_bytes(data)
    lines = _yolo_lines(boxes, wh[0], wh[1], index, names)
    (tmp / "labels" / f"{stem}.txt").write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    s["images"] += 1
    s["boxes"] += len(lines)
    if not lines:
        s["empty_labels"] += 1


# anomaly mode: the parts QC confirmed good are the normal pictures an anomaly model learns from ------------------
@dataclass(frozen=True)
class GoodPartsSummary:
    pictures: int = 0  # confirmed good by QC, written
    not_confirmed: int = 0  # not reviewed, or QC's standing decision is not PASS
    missing_image: int = 0

    def text(self) -> str:
        return (f"{self.pictures} picture(s) of parts QC confirmed good; {self.not_confirmed} part(s) not confirmed "
                f"good left out; {self.missing_image} image(s) missing")


def confirmed_good(part: PartForTraining) -> bool:
    """Whether QC's standing decision on the part (its last review not taken back) is PASS: a machine PASS that QC
    confirmed, or a FAIL or REVIEW that QC overrode to PASS. A part nobody reviewed is not confirmed."""
    kept = standing(part.reviews)
    return bool(kept) and kept[-1].new_verdict == "PASS"


def write_good_pictures(out: Path, parts: Iterable[PartForTraining], image_root: Path, total: int | None = None,
                        progress: Progress | None = None, cancel: threading.Event | None = None) -> GoodPartsSummary:
    """The pictures of the parts QC confirmed good, copied into ``out`` (a new or empty folder, whole or not at
    all) as ``insp<ID>.jpg``, with ``inspections.txt`` naming each one's record: the folder ``inspector train
    --kind anomaly --data`` reads."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InspectorError(f"{out} exists and is not an empty folder; choose a new folder for the pictures.")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    s = {"pictures": 0, "not_confirmed": 0, "missing_image": 0}
    lines = []
    try:
        for n, part in enumerate(parts, 1):
            if n % 200 == 0:
                check(cancel)
                if progress is not None:
                    progress(n, total or n)
            if not confirmed_good(part):
                s["not_confirmed"] += 1
                continue
            src, data = _stored_picture(part, image_root)
            if _image_size(data) is None:
                s["missing_image"] += 1
                continue
            assert src is not None
            name = f"insp{part.inspection_id:08d}{src.suffix.lower() or '.jpg'}"
            (tmp / name).write_bytes(data)
            lines.append(f"{name}\t{part.inspection_id}\t{part.image_path}\n")
            s["pictures"] += 1
        check(cancel)
        (tmp / "inspections.txt").write_text("# picture\tinspection id\tstored as\n" + "".join(lines),
                                             encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GoodPartsSummary(**s)
