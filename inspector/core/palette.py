"""One palette for the classes' boxes, shared by the window (ui/theme.py) and the PDF/HTML reports
(inspector/reports/gallery.py): a class has the same colour on the screen and on paper.

Colours are by class index (the model's order); a box whose index is unknown falls back to a colour
fixed by its label.
"""

from __future__ import annotations

CLASS_COLOURS = ("#ff4d4f", "#ffb020", "#36cfc9", "#b37feb", "#73d13d", "#ff85c0", "#40a9ff", "#ffd666")


def class_colour(cls: int | None, label: str = "") -> str:
    """The class's colour as ``#rrggbb``: by index, or by the label's bytes when the index is unknown."""
    if cls is None or cls < 0:
        cls = sum(label.encode())
    return CLASS_COLOURS[cls % len(CLASS_COLOURS)]


def class_colour_bgr(cls: int | None, label: str = "") -> tuple[int, int, int]:
    """The same colour as (blue, green, red), for OpenCV drawing."""
    h = class_colour(cls, label)
    return int(h[5:7], 16), int(h[3:5], 16), int(h[1:3], 16)
