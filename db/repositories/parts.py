"""The parts a station answered on the line, looked up again when a PLC repeats a ``part_id`` after a restart."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.dto import PartAnswer
from db.repositories._common import loads
from db.repositories.queries import INSPECTIONS, D, I
from db.schema import Run

_CHUNK = 500  # ids per IN (...) list


def answered_parts(session: Session, station: str, since: dt.datetime, limit: int) -> list[PartAnswer]:
    """This station's triggered inspections recorded since ``since``, newest first, one per ``part_id`` (the
    newest), at most ``limit``."""
    q = (select(I.id, I.seq, I.part_id, I.verdict, I.reasons, I.model_sha256, I.latency_ms, I.created_at,
                Run.recipe_name)
         .select_from(INSPECTIONS).join(Run, Run.id == I.run_id)
         .where(Run.station == station, I.part_id.is_not(None), I.created_at >= since)
         .order_by(I.created_at.desc(), I.id.desc()).limit(limit))
    rows, seen = [], set()
    for r in session.execute(q):
        if r.part_id not in seen:
            seen.add(r.part_id)
            rows.append(r)
    boxes: dict[int, list[tuple]] = defaultdict(list)
    ids = [r.id for r in rows]
    for i in range(0, len(ids), _CHUNK):
        q = (select(D.inspection_id, D.label, D.confidence, D.x1, D.y1, D.x2, D.y2)
             .where(D.inspection_id.in_(ids[i:i + _CHUNK])).order_by(D.inspection_id, D.id))
        for d in session.execute(q):
            boxes[d.inspection_id].append(tuple(d)[1:])
    return [PartAnswer(r.part_id, r.id, r.seq, r.verdict, tuple(loads(r.reasons, [])), tuple(boxes.get(r.id, ())),
                       r.model_sha256 or "", r.recipe_name or "", float(r.latency_ms), r.created_at)
            for r in rows]
