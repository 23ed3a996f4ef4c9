"""Alembic's environment: always run in-process on a connection zhibu hands over (never from alembic.ini)."""

from __future__ import annotations

from alembic import context

import workflows.migrations  # noqa: F401  (imports every module with tables onto the metadata)
from workflows.engine.models import Base, UTCDateTime


def render_item(kind: str, obj, autogen_context):
    """Revisions name plain SQLAlchemy types: UTCDateTime is DateTime in the database."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
