"""Reviewed parts feed anomaly mode: the parts QC confirmed good (standing review verdict PASS) become the normal
pictures ``inspector export-dataset --kind anomaly`` writes and ``inspector train --kind anomaly --confirmed-good``
learns from, for one product.

A real SQLite station record over generated surfaces: nothing from ``../shared`` is needed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.anomaly_parts import surface
from tests.conftest import QC, signed, staff

T0 = dt.datetime(2026, 12, 1, 8, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Record:
    url: str
    good_a: frozenset[int]  # inspection ids QC confirmed good, product A
    others: frozenset[int]


def _record(folder: Path) -> Record:
    """Product A: 11 machine PASS confirmed by QC, 1 FAIL overridden to PASS (good); 1 FAIL confirmed, 1 PASS
    confirmed then undone, 3 PASS nobody reviewed (not confirmed). Product B: 3 confirmed good (another product)."""
    from db import InspectionRepo, ModelRepo, ReviewRepo, RunRepo, open_database, session_factory
    from inspector.core.day import PartDay
    from inspector.core.images import ImageStore
    from inspector.core.types import Detections, Inspection, Verdict

    engine = open_database(f"sqlite:///{folder / 'st.db'}")
    sessions = session_factory(engine)
    with sessions.begin() as s:
        mv = ModelRepo.get_or_create(s, "m", "m.onnx", "a" * 64, ["anomaly"])
        run = RunRepo.start(s, "folder:x", "{}", "default", mv.id, "line-1", "part")
    store = ImageStore(folder, "st-images", run_tag=f"run-{run.id}")
    rng = np.random.default_rng(3)
    plan = ([("A", "PASS", "confirm")] * 11 + [("A", "FAIL", "to_pass"), ("A", "FAIL", "confirm"),
            ("A", "PASS", "undone")] + [("A", "PASS", None)] * 3 + [("B", "PASS", "confirm")] * 3)
    items = []
    for seq, (product, verdict, _) in enumerate(plan):
        img = surface(rng, verdict == "FAIL")
        insp = Inspection(seq, "folder:x", Verdict(verdict), ("r",), Detections((), 96, 96, 1.0, "a" * 64),
                          T0 + dt.timedelta(seconds=seq), 1.0, f"p{seq}.png", "a" * 64, img,
                          day=PartDay(product=f"tile-{product}"))
        items.append((insp, store.save(insp)))
    with sessions.begin() as s:
        ids = InspectionRepo.add_many(s, run.id, items)
    with sessions.begin() as s:
        staff(s)
        for iid, (_, _, review) in zip(ids, plan, strict=True):
            if review in ("confirm", "undone"):
                ReviewRepo.add(s, iid, QC(), "confirm")
            elif review == "to_pass":
                ReviewRepo.add(s, iid, QC(), "override", "PASS", "a reflection, not a defect")
    with sessions.begin() as s:
        ReviewRepo.undo_last(s, ids[13], QC())
    with sessions.begin() as s:  # the commands sign in as a QC engineer with a password (the station has users)
        from db.accounts import create_user
        from inspector.core.auth import Role

        create_user(s, signed("root-admin", Role.ADMIN), "qc-export", Role.QC, "password-qc-1")
    engine.dispose()
    good_a = frozenset(iid for iid, (p, v, r) in zip(ids, plan, strict=True)
                       if p == "A" and ((v, r) == ("PASS", "confirm") or r == "to_pass"))
    return Record(f"sqlite:///{folder / 'st.db'}", good_a, frozenset(ids) - good_a)


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Record:
    return _record(tmp_path_factory.mktemp("reviewed"))


SIGN_IN = ["--user", "qc-export"]


@pytest.fixture(autouse=True)
def _password(monkeypatch):
    monkeypatch.setenv("INSPECTOR_PASSWORD", "password-qc-1")


def _listed(folder: Path) -> set[int]:
    lines = (folder / "inspections.txt").read_text().splitlines()[1:]
    return {int(ln.split("\t")[1]) for ln in lines}


def test_export_for_anomaly_takes_the_parts_qc_confirmed_good_of_one_product(record, tmp_path, capsys):
    from inspector.cli import main

    out = tmp_path / "good"
    assert main(["export-dataset", "--db", record.url, "--kind", "anomaly", "--product", "tile-A",
                 "--out", str(out), *SIGN_IN]) == 0
    assert "12 picture(s) of parts QC confirmed good" in capsys.readouterr().out
    assert len(record.good_a) == 12 and _listed(out) == set(record.good_a)
    pictures = sorted(p.name for p in out.iterdir() if p.suffix == ".jpg")
    assert pictures == sorted(f"insp{i:08d}.jpg" for i in record.good_a)
    # without --product: product B's confirmed parts as well
    assert main(["export-dataset", "--db", record.url, "--kind", "anomaly", "--out", str(tmp_path / "all"),
                 *SIGN_IN]) == 0
    assert len(_listed(tmp_path / "all")) == 15


def test_train_anomaly_on_the_confirmed_good_parts(record, tmp_path, capsys):
    from inspector.cli import main

    out = tmp_path / "models" / "tile-a"
    assert main(["train", "--kind", "anomaly", "--confirmed-good", "--product", "tile-A", "--db", record.url,
                 "--time-budget", "20s", "--out", str(out), *SIGN_IN]) == 0
    said = capsys.readouterr().out
    assert "12 picture(s) of parts QC confirmed good" in said and "learning normal from 12 pictures" in said
    card = json.loads((out / "card.json").read_text())
    assert card["task"] == "anomaly" and Path(card["data"]) == out.with_name("tile-a-good")
    assert _listed(out.with_name("tile-a-good")) == set(record.good_a)


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "anomaly"], "give --data"),
    (["--confirmed-good"], "--confirmed-good goes with --kind anomaly"),
    (["--kind", "anomaly", "--confirmed-good", "--data", "x"], "without --data"),
])
def test_train_refuses_a_confused_source(args, message, tmp_path, capsys):
    from inspector.cli import main

    assert main(["train", *args, "--out", str(tmp_path / "m")]) != 0
    assert message in capsys.readouterr().err
