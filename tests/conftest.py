"""Fixtures shared by all tests: a fresh database per test on every configured backend, and a clock.

SQLite always runs. PostgreSQL runs too when ZHIBU_TEST_POSTGRES_URL is set (CI sets it and fails
if the server is unreachable); each test gets an empty schema of its own there.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from tests.support import seed_people
from workflows.engine import specs
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.migrations import init_db

POSTGRES_URL = os.environ.get("ZHIBU_TEST_POSTGRES_URL", "").strip()
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]
START = datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ)


def _postgres_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(autouse=True)
def checkpoint_files(tmp_path, monkeypatch):
    """Each test signs and keeps audit checkpoints in a folder of its own."""
    monkeypatch.setenv("ZHIBU_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ZHIBU_CHECKPOINT_KEY", str(tmp_path / "checkpoint_key.pem"))


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """URL of an empty database on one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'zhibu.db'}"
        return
    schema = f"zhibu_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield _postgres_url(schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def engine(db_url):
    """An engine on a database with every table created."""
    eng = make_engine(db_url)
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine):
    return make_session_factory(engine)


@pytest.fixture
def clock():
    """A clock frozen at 2026-11-24 10:00 Beijing time; tests move it explicitly."""
    return FixedClock(START)


@pytest.fixture
def deployed(factory, clock):
    """The repository's bpmn/ and forms/ deployed, with branch 一支部 and the people the scenarios name."""
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="tester")
        seed_people(session, clock.now())
    return factory
