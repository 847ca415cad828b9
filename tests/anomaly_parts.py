"""Generated surfaces and a tiny anomaly model trained on them, for the anomaly tests that need no ``../shared``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def surface(rng: np.random.Generator, defect: bool, width: int = 96, height: int = 96) -> np.ndarray:
    """A grey streaked surface like a tile; a defect is a dark blob on it."""
    streaks = np.repeat(rng.normal(128, 12, (1, width)), height, 0) + rng.normal(0, 6, (height, width))
    im = np.clip(streaks, 0, 255).astype(np.uint8)
    if defect:
        r = max(7, min(width, height) // 12)
        cx, cy = int(rng.integers(2 * r, width - 2 * r)), int(rng.integers(2 * r, height - 2 * r))
        cv2.circle(im, (cx, cy), r, 30, -1)
    return cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)


def write_surfaces(folder: Path, n: int, defect: bool, seed: int, width: int = 96, height: int = 96,
                   prefix: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = folder / f"{prefix}{i:02d}.png"
        cv2.imwrite(str(p), surface(rng, defect, width, height))
        out.append(p)
    return out


def train_tiny(train: Path, out: Path, budget_s: float = 20.0) -> Path:
    """A tiny anomaly model (a handful of pictures, seconds of budget); the path of its ONNX file."""
    from inspector.training.anomaly import train_anomaly

    train_anomaly(train, out, time_budget_s=budget_s)
    return out / f"{out.name}.onnx"
