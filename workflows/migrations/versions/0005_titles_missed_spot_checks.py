"""Leadership-group titles (`users.title`), the rectification item of a missed occurrence
(`occurrences.rectification_id`), and the scheduled spot checks started (`spot_check_runs`).

A database made by `create_all` before migrations existed may already hold the two columns (the legacy
path creates the baseline tables as the code of the day knows them): they are added only where missing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("users", sa.Column("title", sa.String(length=10), nullable=True)),
    ("occurrences", sa.Column("rectification_id", sa.Integer(), nullable=True)),
)


def _has_column(table: str, name: str) -> bool:
    return name in {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    for table, column in COLUMNS:
        if not _has_column(table, column.name):
            op.add_column(table, column)
    op.create_table(
        "spot_check_runs",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry", sa.String(length=50), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("drawn", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("year", "entry"),
    )


def downgrade() -> None:
    op.drop_table("spot_check_runs")
    for table, column in reversed(COLUMNS):
        # In place (SQLite >= 3.35 drops a plain column itself): copying `users` would break the
        # references to it, which a downgrade does not switch off.
        op.drop_column(table, column.name)
