"""Champion and challenger on a station: promotion and rollback (who may, which model, audited, sealed), a running
station taking a promoted model between two parts, the active model surviving a restart, shadow verdicts kept
apart, and the training progress stream."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspector.core.auth import Role
from inspector.core.errors import ConfigError, PermissionDenied
from tests.conftest import QC, signed, staff, trust_models

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"
PARTS_ONNX = ROOT / "models" / "parts-v2" / "parts-v2.onnx"


@pytest.fixture(scope="session")
def small_model(tiny_model) -> Path:
    """A real model of the same classes as the shipped one (the session's tiny model, as ONNX)."""
    return tiny_model.with_suffix(".onnx")


def _db(tmp_path, *models: Path) -> str:
    url = f"sqlite:///{tmp_path / 'st.db'}"
    trust_models(url, *models) if models else trust_models(url)
    return url


def _with_staff(url: str):
    from station import open_db

    engine, sessions = open_db(url)
    with sessions.begin() as s:
        staff(s)
        from db import UserRepo

        if UserRepo.get(s, "op") is None:
            UserRepo.add(s, signed("root-admin", Role.ADMIN), "op", "operator", "scrypt$test")
    return engine, sessions


# ---- who may promote, and what ------------------------------------------------------------------------

@pytest.mark.parametrize("actor,reason,trusted,error,words", [
    (None, "better on lot 12", True, PermissionDenied, "signed-in"),
    (lambda: signed("ghost", Role.QC), "better on lot 12", True, PermissionDenied, "not a user"),
    (lambda: signed("op", Role.QC), "better on lot 12", True, PermissionDenied, "operator on this station"),
    (lambda: signed("op", Role.OPERATOR), "better on lot 12", True, PermissionDenied, "qc role"),
    (QC, "  ", True, ConfigError, "needs a reason"),
    (QC, "better on lot 12", False, PermissionDenied, "not trusted"),
])
def test_a_promotion_needs_a_qc_a_reason_and_a_trusted_model(tmp_path, actor, reason, trusted, error, words):
    from db import AuditRepo, PromotionRepo

    engine, sessions = _with_staff(_db(tmp_path))
    actor = actor() if actor is not None else None  # signed at run time, with the test session's key
    try:
        sha = "ab" * 32
        with pytest.raises(error, match=words), sessions.begin() as s:
            PromotionRepo.record(s, actor, "cell-1", "promote", sha, "/m/x.onnx", "m/x.onnx", reason,
                                 {sha: "test"} if trusted else {})
        with sessions() as s:
            assert PromotionRepo.active(s, "cell-1") is None
            assert not [e for e in AuditRepo.list(s) if e.action.startswith("model.")]
    finally:
        engine.dispose()


def test_promote_and_roll_back_are_audited_sealed_and_per_station(tmp_path, small_model):
    from db import AuditRepo, PromotionRepo
    from station.models import change_model, known_models, rollback_target
    from tests.test_promotion_gate import compared

    engine, sessions = _with_staff(_db(tmp_path, small_model))
    try:
        compared(sessions, PARTS_ONNX, small_model)
        p = change_model(sessions, QC(), "cell-1", small_model, "fewer false rejects on lot 12", PARTS_ONNX)
        assert p.previous_sha256 and p.actor == "qc-anna"
        with pytest.raises(ConfigError, match="already the active model"):
            change_model(sessions, QC(), "cell-1", small_model, "again", PARTS_ONNX)
        with sessions() as s:
            assert PromotionRepo.active(s, "cell-2") is None  # another station keeps its own model
        listed = {m.name: m for m in known_models(sessions, "cell-1", PARTS_ONNX)}
        assert listed["tiny/tiny.onnx"].active and not listed["parts-v2/parts-v2.onnx"].active
        assert "promote by qc-anna" in listed["tiny/tiny.onnx"].promoted[0]
        back = rollback_target(sessions, "cell-1", PARTS_ONNX)
        assert back == PARTS_ONNX
        r = change_model(sessions, signed("qc-ben", Role.QC), "cell-1", back, "escapes on lot 13", PARTS_ONNX,
                         "rollback")
        assert r.action == "rollback" and r.previous_sha256 == p.sha256
        with sessions() as s:
            actions = [e.action for e in AuditRepo.list(s)]
            assert actions[:3] == ["model.rollback", "model.promote", "model.compare"]
            assert AuditRepo.verify(s).ok
        with pytest.raises(ConfigError, match="never the model"):
            change_model(sessions, QC(), "cell-1", PARTS_ONNX.with_suffix(".pt"), "x", PARTS_ONNX, "rollback")
    finally:
        engine.dispose()


def test_a_promotion_row_forged_in_the_database_is_ignored_and_reported(tmp_path):
    from sqlalchemy import text

    from db import AuditRepo, PromotionRepo

    engine, sessions = _with_staff(_db(tmp_path))
    try:
        with sessions.begin() as s:
            s.execute(text("INSERT INTO model_promotions (station, action, sha256, path, name, previous_sha256, "
                           "reason, actor, created_at, mac) VALUES ('cell-1', 'promote', :h, '/evil.onnx', 'evil', "
                           "'', 'x', 'qc-anna', '2026-11-29 10:00:00', '')"), {"h": "cd" * 32})
        with sessions() as s:
            assert PromotionRepo.active(s, "cell-1") is None
            report = AuditRepo.verify(s)
        assert not report.ok and any("model promotion" in p for p in report.problems)
    finally:
        engine.dispose()


# ---- a running station -----------------------------------------------------------------------------------

def _cfg(**sections):
    from inspector.core.config import config_from_dict

    return config_from_dict({"station": {"name": "cell-1"}, **sections})


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.model
def test_a_promotion_takes_effect_between_two_parts_of_a_running_station_and_survives_a_restart(tmp_path,
                                                                                                  small_model):
    from db import AuditRepo
    from inspector.detection.registry import sha256_file
    from station import Station, StationSpec
    from station.models import change_model

    url = _db(tmp_path, small_model)
    engine, sessions = _with_staff(url)
    engine.dispose()
    seen: list = []
    st = Station(StationSpec(str(SAMPLES), url, _cfg(), loop=True), on_committed=seen.extend)
    st.watcher.poll_s = 0.05
    old, new = sha256_file(PARTS_ONNX), sha256_file(small_model)
    assert st.model_sha == old
    st.start()
    try:
        _wait(lambda: len(seen) >= 10, 60, "the first parts")
        promoted_at = len(seen)
        from tests.test_promotion_gate import compared

        compared(st.sessions, PARTS_ONNX, small_model)
        change_model(st.sessions, QC(), "cell-1", small_model, "better on lot 12", PARTS_ONNX)
        _wait(lambda: any(i.model_sha256 == new for _, i in seen[promoted_at:]), 30, "the promoted model")
        _wait(lambda: len(seen) >= promoted_at + 40, 60, "more parts")
    finally:
        st.stop()
        st.runner.join(30)
        st.finish("stopped")
    shas = [i.model_sha256 for _, i in seen]
    first_new = shas.index(new)
    # one hand-over between two parts: never back to the old model, never a part without a model
    assert set(shas[:first_new]) == {old} and set(shas[first_new:]) == {new}
    assert not [i for _, i in seen if i.verdict.value == "NOT_INSPECTED"]
    assert st.model_sha == new
    from sqlalchemy import text

    engine, sessions = _with_staff(url)
    try:
        with sessions() as s:  # every stored part keeps the hash of the model that judged it
            stored = dict(s.execute(text("SELECT id, model_sha256 FROM inspections")).all())
            swaps = [e for e in AuditRepo.list(s) if e.action == "model.promote"]
    finally:
        engine.dispose()
    assert {iid: i.model_sha256 for iid, i in seen} == {iid: stored[iid] for iid, _ in seen}
    assert len(swaps) == 1 and swaps[0].detail["reason"] == "better on lot 12"
    again = Station(StationSpec(str(SAMPLES), url, _cfg(), max_frames=1))  # a restart starts with it
    try:
        assert again.model_sha == new and again.promotion is not None
    finally:
        again.source.close()
        again.finish("stopped")


def _folder(tmp_path: Path, synth_data: Path, n: int) -> Path:
    src = tmp_path / "parts"
    src.mkdir()
    imgs = sorted((synth_data / "images").glob("*.jpg"))
    for i in range(n):
        shutil.copy(imgs[i % len(imgs)], src / f"{i:03d}.jpg")
    return src


def _run(src: Path, url: str, cfg) -> list:
    from station import Station, StationSpec

    seen: list = []
    st = Station(StationSpec(str(src), url, cfg), on_committed=seen.extend)
    if st.shadow is not None:  # the parts wait until the challenger is loaded (it skips parts before that)
        st.runner.pause(True)
    st.start()
    if st.shadow is not None:
        assert st.shadow._ready.wait(240), st.shadow.error
        st.runner.pause(False)
    st.runner.join(120)
    if st.shadow is not None:
        # the challenger judges at the lowest priority: beside busy processes the line may end before its first
        # verdict (the parts handed over wait in its queue); the test needs one, a plant would wait for the next part
        _wait(lambda: st.shadow.judged >= 1 or st.shadow.error is not None, 300, "the challenger's first verdict")
    st.finish("finished")
    return seen


@pytest.fixture
def challenger_loads_promptly(monkeypatch):
    """The challenger's process started at the starting thread's priority, so that its imports and model load are
    not starved by other busy processes (it still judges at the lowest priority: it lowers itself once loaded).
    ``test_the_challenger_process_starts_at_the_lowest_priority`` checks the product's own start."""
    from station.shadow import Shadow

    monkeypatch.setattr(Shadow, "_start_lowered", lambda self: self._process.start())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads each thread's nice value from /proc")
def test_the_challenger_process_starts_at_the_lowest_priority(tmp_path, small_model):
    """Its imports and model load take only what the line leaves: the process is at nice 19 from its first
    instruction, not only once it has loaded."""
    from station import Station, StationSpec

    url = f"sqlite:///{tmp_path / 'nice.db'}"
    trust_models(url, small_model)
    st = Station(StationSpec(str(SAMPLES), url, _cfg(shadow={"model": str(small_model), "share": 1.0})))
    mine = os.getpriority(os.PRIO_PROCESS, 0)  # this thread's (Linux)
    try:
        st.shadow.start()
        assert set(_niceness(st.shadow._process.pid)) == {19}, _niceness(st.shadow._process.pid)
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine  # the station's own thread is not lowered
    finally:
        st.source.close()
        st.finish("stopped")


@pytest.mark.model
@pytest.mark.usefixtures("challenger_loads_promptly")
def test_shadow_verdicts_are_recorded_apart_and_never_change_a_part(tmp_path, synth_data, small_model):
    from sqlalchemy import text

    from db import ShadowRepo
    from inspector.detection.registry import sha256_file
    from station import open_db

    src = _folder(tmp_path, synth_data, 40)
    plain = _run(src, trust_models(f"sqlite:///{tmp_path / 'plain.db'}"), _cfg())
    url = f"sqlite:///{tmp_path / 'shadow.db'}"
    trust_models(url, small_model)
    shadowed = _run(src, url, _cfg(shadow={"model": str(small_model), "share": 0.5}))
    # the parts' verdicts and models are the same with and without the challenger beside them
    assert [(i.frame_name, i.verdict, i.model_sha256) for _, i in shadowed] == \
        [(i.frame_name, i.verdict, i.model_sha256) for _, i in plain]
    active, challenger = sha256_file(PARTS_ONNX), sha256_file(small_model)
    engine, sessions = open_db(url)
    try:
        with sessions() as s:
            rows = s.execute(text("SELECT inspection_id, verdict, active_verdict, model_sha256, active_sha256 "
                                  "FROM shadow_results")).all()
            stored = dict(s.execute(text("SELECT id, verdict FROM inspections")).all())
            agreement = ShadowRepo.agreement(s, "cell-1")
    finally:
        engine.dispose()
    assert 1 <= len(rows) <= 20  # half of 40 parts at most (a busy challenger skips, never delays)
    assert {r.model_sha256 for r in rows} == {challenger} and {r.active_sha256 for r in rows} == {active}
    for r in rows:  # each beside the very part it shadowed, whose recorded verdict is the active model's
        assert stored[r.inspection_id] == r.active_verdict
    assert agreement.parts == len(rows) and agreement.agreed == sum(r.verdict == r.active_verdict for r in rows)
    assert all(i.model_sha256 == active for _, i in shadowed)


def _niceness(pid: int) -> list[int]:
    """Each thread's nice value of a Linux process (field 19 of /proc/PID/task/TID/stat)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        out.append(int(stat.rsplit(")", 1)[1].split()[16]))
    return out


@pytest.mark.model
@pytest.mark.usefixtures("challenger_loads_promptly")
def test_the_challenger_runs_in_its_own_process_at_the_lowest_priority_and_its_end_spares_the_line(
        tmp_path, synth_data, small_model):
    """Its own process: the line's Python threads never wait for the challenger's. Killed in the middle of a run,
    the challenger is reported once and the line records every part as if it had never been there."""
    from station import Station, StationSpec

    src = _folder(tmp_path, synth_data, 60)
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    trust_models(url, small_model)
    seen: list = []
    st = Station(StationSpec(str(src), url, _cfg(shadow={"model": str(small_model), "share": 1.0})),
                 on_committed=seen.extend)
    st.runner.pause(True)
    st.start()
    try:
        assert st.shadow._ready.wait(240), st.shadow.error
        proc = st.shadow._process
        assert proc.pid != os.getpid() and proc.is_alive()
        if sys.platform.startswith("linux"):
            assert st.shadow.lowered and set(_niceness(proc.pid)) == {19}, _niceness(proc.pid)
        proc.kill()
        st.runner.pause(False)
        assert st.runner.join(120)
    finally:
        st.finish("finished")
    assert len(seen) == 60 and all(i.model_sha256 for _, i in seen)
    assert st.shadow.error and "ended" in str(st.shadow.error)


@pytest.mark.model
@pytest.mark.usefixtures("challenger_loads_promptly")
@pytest.mark.parametrize("parts", [0, 30])
def test_a_challenger_that_ends_just_before_the_stop_is_still_reported(tmp_path, synth_data, small_model, parts):
    """On a busy machine a killed challenger at the lowest priority can take seconds to die: the station's stop
    comes first (a load run lost the report so). Its process is shown alive until the stop here, so the stop is
    always first; with parts, the queue to the challenger is full when the stop comes."""
    from station import Station, StationSpec

    src = _folder(tmp_path, synth_data, max(parts, 1))  # with no parts, the one there is never let through
    url = f"sqlite:///{tmp_path / 'late.db'}"
    trust_models(url, small_model)
    st = Station(StationSpec(str(src), url, _cfg(shadow={"model": str(small_model), "share": 1.0})))
    st.runner.pause(True)
    st.start()
    try:
        assert st.shadow._ready.wait(240), st.shadow.error
        proc, jobs = st.shadow._process, st.shadow._jobs
        told: list = []
        real_alive, real_put = proc.is_alive, jobs.put

        def put(item, *a, **kw):
            told.extend([item] if item is None else [])
            return real_put(item, *a, **kw)

        proc.is_alive = lambda: real_alive() or not told  # dying, seen dead only once it was asked to stop
        jobs.put = put
        proc.kill()
        proc.join(30)
        if parts:
            st.runner.pause(False)
            assert st.runner.join(120)
    finally:
        st.finish("finished")
    assert st.shadow.error and "ended" in str(st.shadow.error), st.shadow.error


@pytest.mark.model
@pytest.mark.usefixtures("challenger_loads_promptly")
def test_a_challenger_file_swapped_after_the_check_is_refused_by_its_process(tmp_path, synth_data, small_model):
    from station import Station, StationSpec

    src = _folder(tmp_path, synth_data, 10)
    url = f"sqlite:///{tmp_path / 'swap.db'}"
    challenger = tmp_path / "challenger.onnx"
    shutil.copy(small_model, challenger)
    trust_models(url, challenger)
    seen: list = []
    st = Station(StationSpec(str(src), url, _cfg(shadow={"model": str(challenger), "share": 1.0})),
                 on_committed=seen.extend)
    shutil.copy(PARTS_ONNX, challenger)  # trusted too, but not the file the station checked for the shadow
    st.start()
    try:
        assert st.runner.join(120)
        _wait(lambda: st.shadow.error is not None, 240, "the challenger's refusal")
    finally:
        st.finish("finished")
    assert "refusing to load" in str(st.shadow.error) and st.shadow.judged == 0
    assert len(seen) == 10


_STATION_WITH_SHADOW = """
import sys, time
from inspector.core.config import config_from_dict
from station import Station, StationSpec
from station.shadow import Shadow
Shadow._start_lowered = lambda self: self._process.start()  # loads promptly; it lowers itself once loaded
cfg = config_from_dict({"station": {"name": "cell-1"}, "shadow": {"model": sys.argv[3], "share": 1.0}})
st = Station(StationSpec(sys.argv[1], sys.argv[2], cfg))
st.shadow.start()
assert st.shadow.wait_ready(240), st.shadow.error
print(st.shadow._process.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie has ended: only its exit status waits to be collected


@pytest.mark.model
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and kills with SIGKILL")
def test_a_station_killed_outright_leaves_no_challenger_process_behind(tmp_path, small_model):
    import signal

    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    trust_models(url, small_model)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _STATION_WITH_SHADOW, str(SAMPLES), url, str(small_model)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read()[-2000:] if proc.poll() is not None else line
        child = int(line)
        assert not _gone(child)
        proc.send_signal(signal.SIGKILL)  # a power cut of the station's process: no clean-up runs
        proc.wait(10)
        # it notices at its next poll (each second) and ends at once; at the lowest priority beside busy processes
        # the poll itself may come late (measured: over 20 s beside four CPU-bound processes)
        _wait(lambda: _gone(child), 120, "the orphaned challenger to end")
    finally:
        proc.kill()


def test_an_untrusted_shadow_model_is_one_sentence_at_the_start(tmp_path, small_model):
    from inspector.core.errors import ModelError
    from station import Station, StationSpec

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(small_model.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="refusing to load"):
        Station(StationSpec(str(SAMPLES), _db(tmp_path), _cfg(shadow={"model": str(bad)})))


# ---- the command line ------------------------------------------------------------------------------------

def test_the_command_line_refuses_an_operator_and_promotes_for_a_qc(tmp_path):
    from db.accounts import create_user
    from station import open_db

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine, sessions = open_db(url)
    with sessions.begin() as s:
        create_user(s, None, "boss", "admin", "boss-password")
    with sessions.begin() as s:
        create_user(s, signed("boss", Role.ADMIN), "olga", "operator", "olga-password")
        create_user(s, signed("boss", Role.ADMIN), "quinn", "qc", "quinn-password")
    from tests.test_promotion_gate import compared

    compared(sessions, PARTS_ONNX, PARTS_ONNX.with_suffix(".pt"))
    engine.dispose()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def cli(user: str, password: str, *args: str):
        return subprocess.run([sys.executable, "-m", "inspector", "model", *args, "--db", url, "--user", user,
                               "--station", "cell-1"], capture_output=True, text=True, timeout=120,
                              env={**env, "INSPECTOR_PASSWORD": password})

    pt = str(PARTS_ONNX.with_suffix(".pt"))
    r = cli("olga", "olga-password", "promote", pt, "--reason", "I like it")
    assert r.returncode == 2 and "qc" in r.stderr and "Traceback" not in r.stderr
    r = cli("quinn", "quinn-password", "promote", pt, "--reason", "same weights, PyTorch backend")
    assert r.returncode == 0, r.stderr
    assert "promoted parts-v2/parts-v2.pt" in r.stdout and "by quinn" in r.stdout


# ---- the training progress stream ------------------------------------------------------------------------

def test_a_progress_file_with_a_cut_last_line_reads_as_far_as_it_is_whole(tmp_path):
    from inspector.training.progress import ProgressFile, read_progress
    from inspector.training.train import TrainProgress

    f = tmp_path / "p.jsonl"
    pf = ProgressFile(f)
    pf.epoch(TrainProgress(1, 5, 3.2, 0.10, 40.0))
    pf.epoch(TrainProgress(2, 5, 2.9, 0.08, 30.0))
    with open(f, "a") as fh:
        fh.write('{"event": "epoch", "epo')  # a crash mid-line
    st = read_progress(f)
    assert st.status == "training" and [p.epoch for p in st.epochs] == [1, 2]
    assert st.best_map50 == pytest.approx(0.10) and st.eta_s == 30.0
    pf.failed(ConfigError("the disk is full"))
    assert read_progress(f).status == "failed" and "disk is full" in read_progress(f).error


def test_progress_within_an_epoch_reads_as_its_batch_and_eta_until_the_epoch_ends(tmp_path):
    from inspector.training.progress import ProgressFile, read_progress
    from inspector.training.train import TrainProgress

    f = tmp_path / "p.jsonl"
    pf = ProgressFile(f)
    pf.batch(TrainProgress(1, 5, 3.2, None, 400.0, batch=3, batches=40))
    st = read_progress(f)
    assert st.status == "training" and st.batch == (1, 3, 40) and st.eta_s == 400.0 and st.error == ""
    pf.epoch(TrainProgress(1, 5, 3.1, 0.10, 300.0))
    st = read_progress(f)
    assert st.batch is None and [p.epoch for p in st.epochs] == [1] and st.eta_s == 300.0


def test_a_pt_whose_onnx_twin_the_station_would_run_is_untrusted_is_not_promoted(tmp_path, tiny_model):
    from db import TrustRepo
    from inspector.detection.registry import sha256_file
    from station.models import change_model

    folder = tmp_path / "m"
    folder.mkdir()
    pt, onnx = folder / "m.pt", folder / "m.onnx"
    shutil.copy(tiny_model, pt)
    onnx.write_bytes(tiny_model.with_suffix(".onnx").read_bytes() + b"\0")  # changed: not the trusted twin
    engine, sessions = _with_staff(_db(tmp_path))
    try:
        with sessions.begin() as s:
            TrustRepo.add(s, signed("root-admin", Role.ADMIN), "model", sha256_file(pt), pt.name)
        with pytest.raises(PermissionDenied, match="would run m.onnx"):
            change_model(sessions, QC(), "cell-1", pt, "looks good", PARTS_ONNX)
    finally:
        engine.dispose()
