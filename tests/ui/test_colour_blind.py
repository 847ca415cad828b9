"""PASS and FAIL stay apart for red-green colour-blind viewers: the real banners are grabbed and run through
the Machado, Oliveira and Fernandes (2009) simulation of protanopia and deuteranopia at severity 1.0 (their
published matrices, applied in linear RGB).

What is measured on the simulated pictures:
- the banners' background colours (CIE76 colour difference): it collapses from ~114 to ~22, so colour alone
  would be a weak cue (this is why the shapes and patterns are there);
- the mark (check mark vs cross): the glyph's pixels (luminance far from the background's) overlap little
  (intersection over union under 0.5);
- the fill pattern: FAIL's hatching leaves a luminance texture in the bare background (standard deviation),
  PASS's background is flat;
- the words and marks keep a luminance contrast of at least 3:1 against their background (WCAG, large text).
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from inspector.core.types import Verdict
from ui.live_view import VerdictBanner
from ui.theme import apply_theme

MACHADO = {  # severity 1.0, Machado et al. 2009, Table 1
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
}
SIZE = (640, 120)


def _linear(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _srgb(lin: np.ndarray) -> np.ndarray:
    c = np.clip(lin, 0, 1)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055) * 255.0


def simulate(rgb: np.ndarray, kind: str) -> np.ndarray:
    return _srgb(_linear(rgb.astype(float)) @ MACHADO[kind].T)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return _linear(rgb) @ np.array([0.2126, 0.7152, 0.0722])


def lab(rgb: np.ndarray) -> np.ndarray:
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    x, y, z = (m @ _linear(rgb)) / np.array([0.95047, 1.0, 1.08883])
    f = lambda t: np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)  # noqa: E731
    return np.array([116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))])


def grab(qtbot, verdict: Verdict) -> tuple[np.ndarray, VerdictBanner]:
    """The banner as the window shows it (the window's theme), as RGB pixels."""
    apply_theme(QApplication.instance())
    b = VerdictBanner()
    qtbot.addWidget(b)
    b.resize(*SIZE)
    b.set_letter_size(48)
    b.show_verdict(verdict, "a reason")
    b.show()
    qtbot.waitExposed(b)
    img = b.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * img.height())
    arr = arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), img.width(), 3)
    return arr.copy(), b


def _bare(b: VerdictBanner, arr: np.ndarray) -> np.ndarray:
    """A strip of background left of the mark, away from the rounded corners: no text there."""
    left = b.mark.geometry().left()
    return arr[20:-20, 20:max(30, left - 20)]


def _glyph(b: VerdictBanner, sim: np.ndarray) -> np.ndarray:
    """The mark's pixels: luminance far from its own background's."""
    g = b.mark.geometry()
    crop = luminance(sim[g.top():g.bottom(), g.left():g.right()])
    return np.abs(crop - np.median(luminance(_bare(b, sim)))) > 0.25


@pytest.mark.parametrize("kind", sorted(MACHADO))
def test_pass_and_fail_banners_stay_apart_without_red_green(qtbot, kind):
    (p_arr, p), (f_arr, f) = grab(qtbot, Verdict.PASS), grab(qtbot, Verdict.FAIL)
    p_sim, f_sim = simulate(p_arr, kind), simulate(f_arr, kind)

    normal = np.linalg.norm(lab(np.median(_bare(p, p_arr).reshape(-1, 3), 0))
                            - lab(np.median(_bare(f, f_arr).reshape(-1, 3), 0)))
    seen = np.linalg.norm(lab(np.median(_bare(p, p_sim).reshape(-1, 3), 0))
                          - lab(np.median(_bare(f, f_sim).reshape(-1, 3), 0)))
    assert normal > 80 and seen < 0.3 * normal, (normal, seen)  # colour alone: a weak cue for this viewer

    pg, fg = _glyph(p, p_sim), _glyph(f, f_sim)
    h, w = min(pg.shape[0], fg.shape[0]), min(pg.shape[1], fg.shape[1])
    pg, fg = pg[:h, :w], fg[:h, :w]
    iou = (pg & fg).sum() / max(1, (pg | fg).sum())
    assert pg.sum() > 200 and fg.sum() > 200 and iou < 0.5, iou  # a check mark is not a cross

    p_texture, f_texture = luminance(_bare(p, p_sim)).std(), luminance(_bare(f, f_sim)).std()
    assert p_texture < 0.005 and f_texture > 0.02, (p_texture, f_texture)  # FAIL hatched, PASS flat

    for b, sim in ((p, p_sim), (f, f_sim)):
        g = b.mark.geometry()
        lum = luminance(sim[g.top():g.bottom(), g.left():g.right()])
        hi, lo = np.percentile(lum, 99), np.median(luminance(_bare(b, sim)))
        assert (hi + 0.05) / (lo + 0.05) >= 3.0, (b.verdict, hi, lo)  # the mark reads against its background
