"""Judging a part: the recipe (``rules``), the synchronous pipeline (``pipeline.inspect(frame)``) and the
threads around it (``runner``: capture -> inference -> writer, with the line's triggers)."""
