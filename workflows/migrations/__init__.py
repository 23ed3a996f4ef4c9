"""The schema's history as Alembic revisions, and the calls that bring a database up to date.

`upgrade` runs in one transaction: on PostgreSQL DDL is transactional, so an upgrade applies whole or
not at all, and an advisory lock makes a second process that upgrades at the same moment wait, then
find nothing left to do. A database made before migrations existed (tables, no `alembic_version`)
is the first revision's schema: it is stamped with it, then upgraded, its rows kept.
This package stands outside the layers (like `workflows.plugins`): it sees every layer's tables.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

import workflows
from workflows.engine import db
from workflows.engine.errors import ZhibuError
from workflows.engine.models import Base

BASELINE = "0001"  # the schema as `create_all` made it before migrations existed
# Tables of later revisions: a database made before migrations cannot have them.
AFTER_BASELINE = frozenset(
    {
        "job_runs",
        "programme_years",
        "messages",
        "message_waits",
        "spot_check_runs",
        "branch_years",
        "grade_rounds",
        "feedback_items",
    }
)
_LOCK_KEY = 0x7A68_6962_75  # "zhibu": one advisory lock for every upgrading process


class SchemaMismatch(ZhibuError):
    """The database's schema is not what the migrations expect; nothing was changed."""


def _import_every_model() -> None:
    """Import every module of `workflows`, so every table is on the metadata whoever imported what."""
    for module in pkgutil.walk_packages(workflows.__path__, "workflows."):
        if not module.name.startswith(__name__):
            importlib.import_module(module.name)


_import_every_model()


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory(str(Path(__file__).parent)).get_current_head()


def current(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database (or one made before migrations)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_on(connection: Connection, revision: str = "head") -> None:
    """Upgrade the schema to `revision` inside the caller's transaction on `connection`."""
    command.upgrade(_config(connection), revision)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema to `revision` in one transaction; returns (before, after)."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # SQLite alters a table by copying it: references must not be enforced meanwhile
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                before, after = _upgrade(connection, revision)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise SchemaMismatch("升级后有记录引用了不存在的记录（外键检查未通过），已回滚")
        finally:
            if sqlite:
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
    return before, after


def _upgrade(connection: Connection, revision: str) -> tuple[str | None, str | None]:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    before = MigrationContext.configure(connection).get_current_revision()
    legacy = before is None and "instances" in inspect(connection).get_table_names()
    if legacy:
        # `create_all` made tables as the code of the day knew them: add any the baseline has that are
        # missing, take the rest as revision 0001, and check the result before anything commits.
        baseline = [t for t in Base.metadata.sorted_tables if t.name not in AFTER_BASELINE]
        Base.metadata.create_all(connection, tables=baseline, checkfirst=True)
        command.stamp(_config(connection), BASELINE)
        before = BASELINE
    upgrade_on(connection, revision)
    if legacy and revision == "head" and (problems := _differences(connection)):
        raise SchemaMismatch(f"数据库表结构与迁移版本不符，未做任何改动：{problems[:5]}")
    return before, MigrationContext.configure(connection).get_current_revision()


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` in one transaction (what later revisions added is dropped)."""
    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def init_db(engine: Engine) -> None:
    """Upgrade the schema to the newest revision, then the audit head row and (for a new trail) its key."""
    upgrade(engine)
    db.prepare(engine)


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would still change to make the database match the models (empty when in step)."""
    with engine.connect() as connection:
        return _differences(connection)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)
