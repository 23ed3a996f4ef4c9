"""Engines, sessions and the one place transactions are opened.

Concurrency contract: on SQLite every transaction starts with BEGIN IMMEDIATE, so writers queue
on the database lock (busy timeout) instead of failing late with a stale snapshot; on PostgreSQL
steps lock their instance row (SELECT ... FOR UPDATE). Either way a step sees the state left by
the step before it, and two steps on one instance never interleave.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import audit
from workflows.engine.models import AuditHead

DEFAULT_SQLITE_PATH = Path("instance") / "zhibu.db"


def database_url(environ: dict[str, str] | None = None) -> str:
    """`ZHIBU_DATABASE_URL`, else a SQLite file under ./instance/."""
    environ = os.environ if environ is None else environ
    url = environ.get("ZHIBU_DATABASE_URL", "").strip()
    if url:
        return url
    return f"sqlite:///{DEFAULT_SQLITE_PATH.resolve()}"


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and BEGIN IMMEDIATE transactions."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE below is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # WAL is a property of the file: set once (it needs the file to itself, so only when not yet set).
        if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Straight to the driver: this runs once per unit of work, and SQLAlchemy's execution
        # machinery costs several times the statement itself (see workflows/prepared.py).
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def prepare(engine: Engine) -> None:
    """Make the audit chain's head row and (for a new trail) its key, once tables exist. Safe to rerun.

    The tables themselves come from the migrations (`workflows.migrations.init_db`).
    """
    with Session(engine) as session, session.begin():
        if session.scalar(select(AuditHead).where(AuditHead.id == 1)) is None:
            session.add(AuditHead(id=1, seq=0, hash=""))
        audit.ensure_key(session)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
