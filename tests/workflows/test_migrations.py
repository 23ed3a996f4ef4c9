"""Migrations: the newest revision is exactly the models, and older databases upgrade with their rows kept."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, inspect, select

from workflows import migrations
from workflows.engine import consistency
from workflows.engine.audit import verify
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine, make_session_factory
from workflows.engine.models import AuditEvent, Base, ProcessInstance, TaskRecord
from workflows.programme import demo
from workflows.programme.years import ProgrammeYear

NOW = FixedClock(datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ))
AFTER_BASELINE = {
    "job_runs",
    "programme_years",
    "messages",
    "message_waits",
    "spot_check_runs",
    "branch_years",
    "grade_rounds",
    "feedback_items",
}  # tables the revisions after 0001 add


@pytest.fixture
def bare(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _counts(engine) -> dict[str, int]:
    with make_session_factory(engine)() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (ProcessInstance, TaskRecord, AuditEvent)
        }


def _holds_together(engine) -> None:
    with make_session_factory(engine)() as session:
        assert verify(session).ok
        assert list(consistency.mismatches(session)) == []


def _demo_at(engine, revision: str) -> None:
    """The demo company in a database at `revision` (made at the newest, then taken back down)."""
    migrations.init_db(engine)
    assert demo.run(make_session_factory(engine), NOW) is not None
    migrations.downgrade(engine, revision)
    assert migrations.current(engine) == revision


def test_the_newest_revision_is_exactly_the_models(bare):
    assert migrations.upgrade(bare) == (None, migrations.head())
    assert migrations.differences(bare) == []
    assert migrations.upgrade(bare) == (migrations.head(), migrations.head())  # again: nothing to do


def test_a_database_at_the_previous_revision_upgrades_with_its_demo_data(bare):
    _demo_at(bare, "0001")
    assert not AFTER_BASELINE & set(inspect(bare).get_table_names())
    before = _counts(bare)
    assert before["instances"] > 100 and before["audit_events"] > 400

    assert migrations.upgrade(bare) == ("0001", migrations.head())
    assert _counts(bare) == before
    assert migrations.differences(bare) == []
    _holds_together(bare)
    with make_session_factory(bare)() as session:  # 0003 claimed the demo's running year for its programme
        programme = session.scalar(
            select(ProcessInstance.id).where(ProcessInstance.process_id == "programme")
        )
        assert [(y.year, y.instance_id) for y in session.scalars(select(ProgrammeYear))] == [
            (2026, programme)
        ]


def test_a_database_made_before_migrations_is_taken_as_the_baseline(bare):
    """What `create_all` made before Alembic (no alembic_version) is stamped 0001, then upgraded."""
    _demo_at(bare, "0001")
    with bare.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")
    before = _counts(bare)
    assert migrations.current(bare) is None

    assert migrations.upgrade(bare) == ("0001", migrations.head())
    assert migrations.current(bare) == migrations.head()
    assert _counts(bare) == before
    assert migrations.differences(bare) == []
    _holds_together(bare)


def test_two_processes_upgrading_at_once_leave_one_schema(bare, db_url):
    """Two servers started together both run `db upgrade`: one creates, the other waits and finds it done."""
    from concurrent.futures import ThreadPoolExecutor

    with bare.connect():  # the file exists, as a deployment's does (SQLite makes it WAL on first open)
        pass
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: migrations.upgrade(make_engine(db_url)), range(2)))
    if bare.dialect.name == "postgresql":  # the advisory lock orders them; SQLite's write lock does the same
        assert set(results) == {(None, migrations.head()), (migrations.head(), migrations.head())}
    assert all(after == migrations.head() for _, after in results)
    assert migrations.differences(bare) == []


def test_a_legacy_database_missing_a_baseline_table_gets_it(bare):
    """`create_all` of an older main made tables as they came: one that older code lacked is added."""
    older = [t for t in Base.metadata.sorted_tables if t.name not in AFTER_BASELINE | {"calendar_feeds"}]
    Base.metadata.create_all(bare, tables=older)
    assert migrations.upgrade(bare) == ("0001", migrations.head())
    assert "calendar_feeds" in inspect(bare).get_table_names()
    assert migrations.differences(bare) == []


def test_a_legacy_database_that_differs_from_the_baseline_is_refused_unchanged(bare):
    Base.metadata.create_all(
        bare, tables=[t for t in Base.metadata.sorted_tables if t.name not in AFTER_BASELINE]
    )
    with bare.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE tasks ADD COLUMN stray INTEGER")
    with pytest.raises(migrations.SchemaMismatch, match="stray"):
        migrations.upgrade(bare)
    assert migrations.current(bare) is None  # not stamped
    assert "job_runs" not in inspect(bare).get_table_names()  # nothing of the upgrade stayed
