"""Shared fixtures: an isolated data folder, a tiny real YOLO model trained once per session,
fakes for the camera and the detector."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("INSPECTOR_AUTOTUNE", "0")  # no first-start tune in tests: test_speed tunes on purpose

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NEU_DET = SHARED / "datasets" / "neu-det"


@pytest.fixture(scope="session", autouse=True)
def inspector_home(tmp_path_factory) -> Path:
    """Each test session has its own data folder and model registry: the user's are never touched."""
    home = tmp_path_factory.mktemp("inspector-home")
    os.environ["INSPECTOR_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    from inspector.sources.synth import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, 48, seed=5)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, synth_data, inspector_home) -> Path:
    """A real YOLO model, trained here on generated parts (a few epochs, 160 px), trusted in the session's
    default station database (``trust_models`` trusts it in another)."""
    from inspector.training.train import train
    from station import default_db_url

    out = tmp_path_factory.mktemp("models") / "tiny"
    card = train(synth_data, out, epochs=2, imgsz=160, batch=16, workers=0)
    trust_models(default_db_url(), *(out / f for f in card.file_names))
    return out / "tiny.pt"


def trust_models(db_url: str, *files: Path) -> str:
    """Trust model files on the station database at ``db_url`` (made if new, no users: a fresh install)."""
    from db import TrustRepo
    from inspector.detection.registry import sha256_file
    from station import open_db

    engine, sessions = open_db(db_url)
    try:
        with sessions.begin() as s:
            for f in files:
                for g in ([f, f.with_suffix(".onnx")] if f.suffix == ".pt" and f.with_suffix(".onnx").exists()
                          else [f]):
                    TrustRepo.add(s, None, "model", sha256_file(g), g.name)
    finally:
        engine.dispose()
    return db_url


def trusted_registry(*files: Path):
    """A ModelRegistry that trusts these files besides the shipped ones (for code that loads a detector)."""
    from inspector.detection.registry import ModelRegistry, sha256_file

    return ModelRegistry({sha256_file(f): "test" for f in files})


class ScriptedDetector:
    """A detector that returns what the test scripted, by frame order; raises on cue."""

    def __init__(self, script: list, classes=("scratch", "dent", "stain", "crack", "chip")) -> None:
        self.script = list(script)
        self.classes = tuple(classes)
        self.sha256 = "0" * 64
        self.name = "scripted"
        from inspector.core.types import RunSetup

        self.setup = RunSetup("scripted")
        self.calls = 0

    def detect(self, image: np.ndarray):
        from inspector.core.types import Detection, Detections

        step = self.script[self.calls % len(self.script)] if self.script else []
        self.calls += 1
        if isinstance(step, Exception):
            raise step
        items = tuple(Detection(self.classes.index(lbl), lbl, conf, *box) for lbl, conf, box in step)
        return Detections(items, image.shape[1], image.shape[0], 1.0, self.sha256)


@pytest.fixture
def part_image() -> np.ndarray:
    from inspector.sources.synth import render_part

    return render_part(np.random.default_rng(3), defective=False).image


REVIEWERS = ("qc-anna", "qc-ben", "qc", "qc-mia")


def staff(session) -> None:
    """The reviewers the tests sign reviews as, as users of the database (an admin adds them): reviews
    resolve their author from the users table. Idempotent."""
    from db import UserRepo
    from inspector.core.auth import Role

    if UserRepo.get(session, "root-admin") is None:
        UserRepo.add(session, None, "root-admin", "admin", "scrypt$test")
    for name in REVIEWERS:
        if UserRepo.get(session, name) is None:
            UserRepo.add(session, signed("root-admin", Role.ADMIN), name, "qc", "scrypt$test")


def QC(name: str = "qc-anna"):  # noqa: N802 - reads like a role badge in the tests
    """A signed-in QC reviewer."""
    from inspector.core.auth import Role

    return signed(name, Role.QC)


def signed(name: str, role):
    """A signed-in session of ``name`` as the station's sign-in issues it (with this test session's key): what
    protected writes take since issue 24. The role is the one claimed; the users table still decides."""
    from inspector.core.auth import Actor, Role, issue
    from inspector.core.integrity import station_key

    return issue(station_key(), Actor(name, Role(role)))
