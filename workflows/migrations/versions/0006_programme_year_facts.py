"""The programme year held together: `branch_years` (each branch's position, classification and track
per year), `grade_rounds` (every acceptance, 复验 and closing with 不达标), `feedback_items` (branch
feedback item by item); the year of each ledger item (`rectifications.year`, `carried_from`) and the
closing of a year (`programme_years.closed_at`, `closed_by`, `close_reason`).

Ledger items made before this revision take the programme year under way when they were created (the
latest started by then), else their calendar year. A legacy database made by `create_all` may already
hold the rectifications columns: they are added only where missing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (
    ("rectifications", sa.Column("year", sa.Integer(), nullable=True)),
    ("rectifications", sa.Column("carried_from", sa.Integer(), nullable=True)),
    ("programme_years", sa.Column("closed_at", sa.DateTime(), nullable=True)),
    ("programme_years", sa.Column("closed_by", sa.String(length=100), nullable=True)),
    ("programme_years", sa.Column("close_reason", sa.Text(), nullable=True)),
)


def _has_column(table: str, name: str) -> bool:
    return name in {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def _has_index(table: str, name: str) -> bool:
    return name in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    for table, column in COLUMNS:
        if not _has_column(table, column.name):
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(column)
    if not _has_index("rectifications", "ix_rectifications_year"):
        with op.batch_alter_table("rectifications", schema=None) as batch_op:
            batch_op.create_index("ix_rectifications_year", ["year"], unique=False)
    op.create_table(
        "branch_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("branch_code", sa.String(length=50), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("classification", sa.String(length=10), nullable=True),
        sa.Column("track", sa.String(length=10), nullable=True),
        sa.Column("demonstration_told", sa.Boolean(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=True),
        sa.Column("position", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("end_state", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["branch_code"], ["branches.code"]),
        sa.PrimaryKeyConstraint("year", "branch_code"),
    )
    with op.batch_alter_table("branch_years", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_branch_years_instance_id"), ["instance_id"], unique=False)
    op.create_table(
        "grade_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("branch_code", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("grade", sa.String(length=20), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("graded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["branch_code"], ["branches.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("grade_rounds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grade_rounds_branch_code"), ["branch_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_grade_rounds_year"), ["year"], unique=False)
    op.create_table(
        "feedback_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("branch_code", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("catalog_item", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["branch_code"], ["branches.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feedback_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_items_branch_code"), ["branch_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_items_year"), ["year"], unique=False)
    _fill_ledger_years()


def _fill_ledger_years() -> None:
    connection = op.get_bind()
    items = sa.table(
        "rectifications",
        sa.column("instance_id", sa.Integer),
        sa.column("created_at", sa.DateTime),
        sa.column("year", sa.Integer),
    )
    years = sa.table("programme_years", sa.column("year", sa.Integer), sa.column("started_at", sa.DateTime))
    started = sorted(connection.execute(sa.select(years.c.year, years.c.started_at)), key=lambda r: r[1])
    for instance_id, created_at in connection.execute(
        sa.select(items.c.instance_id, items.c.created_at).where(items.c.year.is_(None))
    ).all():
        year = None
        for programme_year, started_at in started:
            if started_at <= created_at:
                year = programme_year
        if year is None:
            year = (created_at + timedelta(hours=8)).year  # stored as UTC; the year is Beijing time
        connection.execute(sa.update(items).where(items.c.instance_id == instance_id).values(year=year))


def downgrade() -> None:
    op.drop_table("feedback_items")
    op.drop_table("grade_rounds")
    op.drop_table("branch_years")
    with op.batch_alter_table("rectifications", schema=None) as batch_op:
        batch_op.drop_index("ix_rectifications_year")
    for table, column in reversed(COLUMNS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column.name)
