"""Guard against the PySide6 release that drops a reference to None on every void call (6.12.0 on
CPython 3.11): the window would abort after a few thousand calls."""

import sys

from PySide6.QtWidgets import QLabel


def test_void_calls_keep_none_alive(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(3000):
        label.setText("x")
    assert sys.getrefcount(None) >= before - 100
