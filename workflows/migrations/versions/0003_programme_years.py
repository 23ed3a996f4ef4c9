"""Each programme year once: `programme_years`, filled from the programme instances already running.

A database may hold two programmes of one year (started twice before this revision): the first started
keeps the year; the others stay as they are, unclaimed, for the office to end.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 14:46:06.854623
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    years = op.create_table(
        "programme_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("catalog_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["catalog_id"], ["catalogs.id"]),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"]),
        sa.PrimaryKeyConstraint("year"),
        sa.UniqueConstraint("instance_id"),
    )
    instances = sa.table(
        "instances",
        sa.column("id", sa.Integer),
        sa.column("process_id", sa.String),
        sa.column("state_json", sa.Text),
        sa.column("created_at", sa.DateTime),
        sa.column("started_by", sa.String),
    )
    catalogs = sa.table("catalogs", sa.column("id", sa.Integer), sa.column("active", sa.Boolean))
    connection = op.get_bind()
    active = connection.scalar(sa.select(catalogs.c.id).where(catalogs.c.active.is_(True)))
    rows, claimed = [], set()
    query = sa.select(instances).where(instances.c.process_id == "programme").order_by(instances.c.id)
    for instance in connection.execute(query):
        tasks = json.loads(instance.state_json).get("tasks", {}).values()
        year = next(
            (t["data"]["year"] for t in tasks if isinstance(t.get("data", {}).get("year"), int)), None
        )
        if year is None or year in claimed:
            continue
        claimed.add(year)
        rows.append(
            {
                "year": year,
                "instance_id": instance.id,
                "catalog_id": active,
                "started_at": instance.created_at,
                "started_by": instance.started_by,
            }
        )
    if rows:
        op.bulk_insert(years, rows)


def downgrade() -> None:
    op.drop_table("programme_years")
