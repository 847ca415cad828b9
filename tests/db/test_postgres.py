"""PostgreSQL specifics. Needs a server at INSPECTOR_TEST_PG_URL (CI starts one); skipped, saying why, without.

The shared tests (``db_url`` fixture) also run every repository against PostgreSQL when it is reachable.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db import AuditRepo, InspectionFilter, InspectionRepo, ReviewRepo, open_database, session_factory
from inspector.core.errors import StorageError
from inspector.core.types import Verdict
from tests.conftest import QC, staff


def test_a_bare_postgresql_url_uses_psycopg2_and_reaches_head(pg_url):
    engine = open_database(pg_url)
    try:
        assert engine.dialect.driver == "psycopg2"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert conn.execute(text("SELECT current_schema()")).scalar().startswith("t_")
    finally:
        engine.dispose()
    open_database(pg_url).dispose()  # again: already at head


def test_a_wrong_password_is_one_sentence_with_the_password_masked(pg_url):
    u = make_url(os.environ["INSPECTOR_TEST_PG_URL"]).set(password="wrong-secret")
    with pytest.raises(StorageError) as err:
        open_database(u.render_as_string(hide_password=False))
    assert "cannot reach the database server" in str(err.value)
    assert "wrong-secret" not in str(err.value) and "***" in str(err.value)


def test_round_trip_of_a_thousand_parts(pg_url, mk):
    engine = open_database(pg_url)
    sessions = session_factory(engine)
    run_id = mk.start_run(sessions)
    items = [(mk.inspection(q, Verdict.FAIL if q % 10 == 0 else Verdict.PASS, ("hole",) * (q % 10 == 0)), None)
             for q in range(1000)]
    with sessions() as s, s.begin():
        ids = InspectionRepo.add_many(s, run_id, items)
        staff(s)
        ReviewRepo.add(s, ids[990], QC("qc"), "override", "PASS", "a drop of oil")
    with sessions() as s:
        fails = list(InspectionRepo.iterate(s, InspectionFilter(verdict="FAIL", label="hole"), batch=7))
        counts = InspectionRepo.counts(s, since=mk.T0 + dt.timedelta(seconds=500))
        assert AuditRepo.verify(s).ok
    assert [r.seq for r in fails] == list(range(980, -1, -10))
    assert (counts.inspected, counts.fail, counts.pass_) == (500, 49, 451)
    engine.dispose()
