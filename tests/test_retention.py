"""Retention: FAIL/REVIEW images and parts under review are never deleted; PASS images go oldest first."""

import datetime as dt

import numpy as np

from db import InspectionRepo, ModelRepo, ReviewRepo, RunRepo, open_database, session_factory
from db.retention import apply_retention
from inspector.core.config import SaveImages
from inspector.core.images import ImageStore
from inspector.core.types import Detections, Inspection, Verdict
from tests.conftest import QC, staff


def _insp(seq, verdict, t0, img):
    return Inspection(seq, "test", verdict, ("r",), Detections((), 64, 64), t0 + dt.timedelta(seconds=seq), 1.0,
                      f"f{seq}", "a" * 64, img)


def test_fill_past_the_cap(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    sessions = session_factory(engine)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)  # noise: every JPEG about the same size
    store = ImageStore(tmp_path, "r-images", SaveImages.ALL, 90, "run-1")
    verdicts = [Verdict.PASS] * 60 + [Verdict.FAIL] * 10 + [Verdict.REVIEW] * 10
    rng.shuffle(verdicts)
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    with sessions.begin() as s:
        m = ModelRepo.get_or_create(s, "m", "m.pt", "a" * 64, ["scratch"])
        run = RunRepo.start(s, "test", "{}", "default", m.id, "st", "part")
        items = [(_insp(i, v, t0, img), None) for i, v in enumerate(verdicts)]
        items = [(insp, store.save(insp)) for insp, _ in items]
        ids = InspectionRepo.add_many(s, run.id, items)
    one = (tmp_path / items[0][1]).stat().st_size
    protected_pass = ids[verdicts.index(Verdict.PASS)]
    with sessions.begin() as s:
        staff(s)
        ReviewRepo.add(s, protected_pass, QC("qc-anna"), "confirm")
    (tmp_path / "r-images" / "stray.jpg").write_bytes(b"orphan")
    cap = one * 35
    rep = apply_retention(sessions, tmp_path, "r-images", cap)
    assert rep.orphans_removed == 1
    assert rep.cap_met and rep.bytes_after <= cap
    with sessions() as s:
        rows = list(InspectionRepo.iterate(s, None))
    for r in rows:
        if r.image_path:
            assert (tmp_path / r.image_path).is_file()
        if r.machine_verdict in (Verdict.FAIL, Verdict.REVIEW) or r.id == protected_pass:
            assert r.image_path, f"{r.machine_verdict} image of part {r.seq} was deleted"
    kept_pass = sorted(r.seq for r in rows if r.machine_verdict == Verdict.PASS and r.image_path)
    dropped_pass = sorted(r.seq for r in rows if r.machine_verdict == Verdict.PASS and not r.image_path)
    assert dropped_pass and max(dropped_pass) < max(kept_pass), "the oldest PASS images go first"
    # a cap below what must be kept: reported, nothing protected deleted
    rep2 = apply_retention(sessions, tmp_path, "r-images", one * 5)
    assert not rep2.cap_met
    with sessions() as s:
        assert sum(1 for r in InspectionRepo.iterate(s, None) if r.image_path) == 21
    engine.dispose()


def test_pass_sample_at_save_time(tmp_path):
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    store = ImageStore(tmp_path, "i", SaveImages.ALL, 80, "run-1", keep_pass_fraction=0.25)
    img = np.full((8, 8, 3), 120, np.uint8)
    kept = sum(store.wanted(_insp(i, Verdict.PASS, t0, img)) for i in range(400))
    assert 90 <= kept <= 110
    assert all(store.wanted(_insp(i, Verdict.FAIL, t0, img)) for i in range(50))
