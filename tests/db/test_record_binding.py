"""Issue 24, the record: rows deleted, re-inserted, replayed as newest or copied in from another database of the
same station (same data folder, same key) are reported by ``audit verify`` and refused where they would decide
something; a database that has had users never goes back to "no users yet". Each attack here passed on the main
of before binding (verify OK, the forged row in force)."""

from __future__ import annotations

import pytest
from sqlalchemy import Table, insert, select

from db import AuditRepo, InspectionRepo, PromotionRepo, ReviewRepo, TrustRepo, UserRepo, open_database, session_factory
from db.repositories.users import authorize
from db.schema import ModelPromotion, Review, TrustedFile, User
from inspector.core.auth import Role
from inspector.core.errors import PermissionDenied
from inspector.core.types import Verdict
from tests.conftest import QC, signed, staff


def BOSS():  # noqa: N802 - a badge, like QC()
    return signed("root-admin", Role.ADMIN)
MODEL_A, MODEL_B = "a1" * 32, "b2" * 32


@pytest.fixture
def station(sessions, run_id, mk) -> dict:
    """Users, two trusted models, a promotion and its rollback, a FAIL part overridden to PASS and undone."""
    with sessions() as s, s.begin():
        staff(s)
        for sha in (MODEL_A, MODEL_B):
            TrustRepo.add(s, BOSS(), "model", sha, f"{sha[:2]}.onnx")
        ids = InspectionRepo.add_many(s, run_id, [(mk.inspection(0, Verdict.FAIL, ("scratch",)), None)],
                                      recipe_sha256="ef" * 32)
        ReviewRepo.add(s, ids[0], QC(), "override", "PASS", "looked fine")
        ReviewRepo.undo_last(s, ids[0], QC())
        trusted = TrustRepo.trusted(s, "model")
        PromotionRepo.record(s, BOSS(), "cell-1", "promote", MODEL_B, "/m/b.onnx", "b", "better on held-out", trusted,
                             current_sha256=MODEL_A)
        PromotionRepo.record(s, BOSS(), "cell-1", "rollback", MODEL_A, "/m/a.onnx", "a", "escapes on line 2", trusted,
                             current_sha256=MODEL_A)
    with sessions() as s:
        report = AuditRepo.verify(s)
        assert report.ok, report.problems
        assert ReviewRepo.final_verdict(s, ids[0]) == Verdict.FAIL
        assert PromotionRepo.active(s, "cell-1").sha256 == MODEL_A
    return {"part": ids[0]}


def problems(sessions) -> tuple[str, ...]:
    with sessions() as s:
        report = AuditRepo.verify(s)
    assert not report.ok, "verify said OK"
    return report.problems


def rows(engine, model) -> list[dict]:
    table: Table = model.__table__
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(select(table).order_by(table.c.id))]


def put(engine, model, values: dict) -> None:
    with engine.begin() as c:
        c.execute(insert(model.__table__).values(**values))


def test_deleting_every_user_is_reported_and_does_not_make_a_fresh_install(db_url, engine, sessions, station, mk):
    mk.raw_execute(db_url, engine, "DELETE FROM users")
    assert any("users" in p and "deleted outside Inspector" in p for p in problems(sessions))
    with sessions() as s:  # not "no users yet": no local admin, no unregistered recipe
        with pytest.raises(PermissionDenied, match="removed outside Inspector"):
            authorize(s, None, "model")
        with pytest.raises(PermissionDenied):
            TrustRepo.allow_recipe(s, "99" * 32, "lax.yaml", "00" * 32)
        with pytest.raises(PermissionDenied):
            TrustRepo.add(s, None, "model", "12" * 32, "evil.onnx")
        with pytest.raises(PermissionDenied):
            UserRepo.add(s, None, "mallory", "admin", "scrypt$mine")


def test_putting_the_users_back_after_a_fresh_install_run_is_still_reported(db_url, engine, sessions, station, mk):
    """The issue's sequence: users deleted, something done as 'no users yet', users put back: verify is not OK."""
    saved = rows(engine, User)
    mk.raw_execute(db_url, engine, "DELETE FROM users")
    with sessions() as s, s.begin(), pytest.raises(PermissionDenied):
        TrustRepo.add(s, None, "recipe", "99" * 32, "lax.yaml")
    for r in saved:
        put(engine, User, r)
    with sessions() as s:  # the users themselves are whole again, so verify can only say OK if nothing else ran
        assert AuditRepo.verify(s).ok
        assert "99" * 32 not in TrustRepo.trusted(s, "recipe")


def test_a_reinserted_copy_of_an_old_override_is_reported(engine, sessions, station):
    override = next(r for r in rows(engine, Review) if r["action"] == "override")
    put(engine, Review, {**override, "id": max(r["id"] for r in rows(engine, Review)) + 1})
    with sessions() as s:  # the copy is the newest review, but its seal names another id: not counted
        assert ReviewRepo.final_verdict(s, station["part"]) == Verdict.FAIL
    found = problems(sessions)
    assert any(p.startswith("review") for p in found), found


def test_a_trusted_file_and_an_admin_minted_in_a_throwaway_database_are_refused(engine, sessions, station, tmp_path):
    other = open_database(f"sqlite:///{tmp_path / 'throwaway.db'}")  # same data folder, same key: a fresh install
    try:
        with session_factory(other).begin() as s:
            TrustRepo.add(s, None, "model", "12" * 32, "evil.onnx")
            UserRepo.add(s, None, "mallory", "admin", "scrypt$mine")
        minted_trust = [r for r in rows(other, TrustedFile) if r["sha256"] == "12" * 32]
        minted_user = [r for r in rows(other, User) if r["name"] == "mallory"]
    finally:
        other.dispose()
    next_trust = max(r["id"] for r in rows(engine, TrustedFile)) + 1
    next_user = max(r["id"] for r in rows(engine, User)) + 1
    put(engine, TrustedFile, {**minted_trust[0], "id": next_trust})
    put(engine, User, {**minted_user[0], "id": next_user})
    with sessions() as s:
        assert "12" * 32 not in TrustRepo.trusted(s, "model")
        with pytest.raises(PermissionDenied, match="changed outside Inspector"):
            authorize(s, signed("mallory", Role.ADMIN), "users")
    found = problems(sessions)
    assert any(p.startswith(f"trusted file {next_trust}") for p in found), found
    assert any(p.startswith(f"user {next_user}") for p in found), found


def test_a_row_minted_in_a_throwaway_database_under_the_same_id_is_refused(engine, sessions, station, tmp_path):
    """Even the id it would get here: the seal names the database it was written in."""
    other = open_database(f"sqlite:///{tmp_path / 'throwaway.db'}")
    next_trust = max(r["id"] for r in rows(engine, TrustedFile)) + 1
    try:
        with session_factory(other).begin() as s:
            for i in range(next_trust):
                TrustRepo.add(s, None, "model", f"{i:02d}" * 32, f"m{i}.onnx")
        minted = rows(other, TrustedFile)[next_trust - 1]
    finally:
        other.dispose()
    assert minted["id"] == next_trust
    put(engine, TrustedFile, minted)
    with sessions() as s:
        assert minted["sha256"] not in TrustRepo.trusted(s, "model")
    assert any(p.startswith(f"trusted file {next_trust}") for p in problems(sessions))


def test_an_old_promotion_copied_as_newest_is_ignored_and_reported(engine, sessions, station):
    promotions = rows(engine, ModelPromotion)
    old = next(r for r in promotions if r["action"] == "promote")
    put(engine, ModelPromotion, {**old, "id": max(r["id"] for r in promotions) + 1})
    with sessions() as s:
        assert PromotionRepo.active(s, "cell-1").sha256 == MODEL_A  # the rolled-back model stays rolled back
    assert any(p.startswith("model promotion") for p in problems(sessions))


def test_an_older_version_of_a_row_put_back_is_reported(db_url, engine, sessions, station, mk):
    """A user's row from before a role change (its seal valid for its id and this database) put back in place."""
    before = next(r for r in rows(engine, User) if r["name"] == "qc-ben")
    with sessions() as s, s.begin():
        UserRepo.set_role(s, BOSS(), "qc-ben", "operator")
    mk.raw_execute(db_url, engine, f"DELETE FROM users WHERE id = {before['id']}")
    put(engine, User, before)
    found = problems(sessions)
    assert any("not the version its last audit entry" in p for p in found), found


def test_a_deleted_review_is_reported(db_url, engine, sessions, station, mk):
    last = rows(engine, Review)[-1]
    mk.raw_execute(db_url, engine, f"DELETE FROM reviews WHERE id = {last['id']}")
    found = problems(sessions)
    assert any(f"reviews {last['id']}" in p and "deleted outside Inspector" in p for p in found), found


def test_the_record_head_moves_with_any_change(db_url, engine, sessions, station, mk):
    from db.repositories.audit import record_head

    with sessions() as s:
        first = record_head(s)
    before = next(r for r in rows(engine, User) if r["name"] == "qc-mia")
    mk.raw_execute(db_url, engine, f"DELETE FROM users WHERE id = {before['id']}")
    with sessions() as s:
        assert record_head(s) != first
    put(engine, User, before)
    with sessions() as s:
        assert record_head(s) == first  # the same row back: the same record


def test_rows_sealed_before_binding_keep_verifying_and_new_ones_are_bound(db_url, engine, sessions, mk):
    """A database written before binding: its rows have the old seals and no marker; verify says they were sealed
    before binding, the next write binds, and an old-style seal on a row after that is reported."""
    from db.repositories._common import utcnow
    from db.seal import seal_row, trust_fields

    with sessions() as s, s.begin():
        for sha in ("31" * 32, "32" * 32):  # as the old TrustRepo.add wrote them
            row = TrustedFile(kind="model", sha256=sha, name="old.onnx", added_by="x", added_at=utcnow())
            seal_row(s, trust_fields, row)
            s.add(row)
            AuditRepo.append(s, actor="x", action="model.trust", target=f"model:{sha}")
    with sessions() as s:
        report = AuditRepo.verify(s)
    assert report.ok, report.problems
    assert any("sealed before binding" in n for n in report.notes)
    with sessions() as s, s.begin():
        TrustRepo.add(s, None, "model", "33" * 32, "new.onnx")
    with sessions() as s:
        assert {"31" * 32, "32" * 32, "33" * 32} <= set(TrustRepo.trusted(s, "model"))
        assert AuditRepo.verify(s).ok
    old = rows(engine, TrustedFile)[0]
    mk.raw_execute(db_url, engine, f"DELETE FROM trusted_files WHERE id = {old['id']}")
    put(engine, TrustedFile, {**old, "id": 99})  # an old seal under a new id: re-inserted (or copied in)
    with sessions() as s:
        assert old["sha256"] not in TrustRepo.trusted(s, "model")
    assert any(p.startswith("trusted file 99") for p in problems(sessions))


def test_a_deleted_binding_marker_is_reported_and_binds_nothing(db_url, engine, sessions, station, mk):
    mk.raw_execute(db_url, engine, "DELETE FROM database_info WHERE key = 'seal_binding'")
    with sessions() as s:
        assert not TrustRepo.trusted(s, "model")  # nothing passes without the marker, old seals included
    assert any("binding marker" in p for p in problems(sessions))


def test_a_binding_begun_in_a_rolled_back_transaction_is_not_used_after_it(sessions):
    """The same Session: the first bound write rolls back (its marker with it); the next one makes its own."""
    with sessions() as s:
        with pytest.raises(RuntimeError), s.begin():
            TrustRepo.add(s, None, "model", "41" * 32, "a.onnx")
            raise RuntimeError("the caller's transaction fails")
        with s.begin():
            TrustRepo.add(s, None, "model", "42" * 32, "b.onnx")
    with sessions() as s:
        assert set(TrustRepo.trusted(s, "model")) == {"42" * 32}
        report = AuditRepo.verify(s)
    assert report.ok, report.problems
