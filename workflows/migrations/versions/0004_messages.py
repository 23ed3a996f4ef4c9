"""BPMN messages between instances: `messages` (thrown, pending until delivered) and `message_waits`
(what each instance waits for now). No message was sent before this revision; the message index is
derived from each running workflow (as `zhibu check` derives it), so it is built here for the instances
already running, whose diagrams may await messages.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 19:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("correlation_hash", sa.String(length=64), nullable=False),
        sa.Column("correlations", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("sender_instance_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("receiver_instance_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["receiver_instance_id"], ["instances.id"]),
        sa.ForeignKeyConstraint(["sender_instance_id"], ["instances.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_route", ["name", "correlation_hash", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_receiver_instance_id"), ["receiver_instance_id"])
        batch_op.create_index(batch_op.f("ix_messages_sender_instance_id"), ["sender_instance_id"])
    op.create_table(
        "message_waits",
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("correlation_hash", sa.String(length=64), nullable=False),
        sa.Column("correlations", sa.Text(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"]),
        sa.PrimaryKeyConstraint("instance_id", "task_id", "name"),
    )
    with op.batch_alter_table("message_waits", schema=None) as batch_op:
        batch_op.create_index("ix_message_waits_route", ["name", "correlation_hash"], unique=False)
    _index_running_instances()


def _index_running_instances() -> None:
    from sqlalchemy.orm import Session

    from workflows.engine import instances, messages

    session = Session(bind=op.get_bind())
    table = instances.ProcessInstance.__table__
    for found in session.execute(sa.select(*table.c).where(table.c.status == "running")).mappings().all():
        loaded = instances.restore(session, instances.instance_row(found))
        messages.sync_waits(session, found["id"], {}, messages.scan(loaded.workflow), found["updated_at"])
    session.flush()


def downgrade() -> None:
    op.drop_table("message_waits")
    op.drop_table("messages")
