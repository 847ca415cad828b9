"""The operator desktop app (PySide6): the live inspection screen, with room for review and reports tabs.

``ui/app.py`` is the composition root; every other module here takes its services in its constructor.
"""

