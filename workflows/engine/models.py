"""Typed SQLAlchemy models: spec versions, instances, the task index, messages and the audit chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as naive UTC, so SQLite and PostgreSQL agree."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class SpecVersion(Base):
    """One deployed version of one process: the parsed spec and its forms, immutable once stored."""

    __tablename__ = "spec_versions"
    __table_args__ = (UniqueConstraint("process_id", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(300))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    spec_json: Mapped[str] = mapped_column(Text)
    forms_json: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(String(100))


class ProcessInstance(Base):
    """A running or finished workflow. `state_json` is TEXT on purpose: key order matters to Spiff."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    spec_version_id: Mapped[int] = mapped_column(ForeignKey("spec_versions.id"))
    spec_hash: Mapped[str] = mapped_column(String(64))  # the version's content hash: a cache key, no join
    status: Mapped[str] = mapped_column(String(20), default="running")
    branch: Mapped[str | None] = mapped_column(String(50), index=True)
    title: Mapped[str | None] = mapped_column(String(300))
    state_json: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Timers that failed to fire: retried with backoff (next_due_at moved on), parked after too many.
    timer_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    timer_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_instances_next_due_at", "next_due_at", "id"),)  # the sweep's keyset
    __mapper_args__ = {"version_id_col": version}


class TaskRecord(Base):
    """The task index: one row per human task that was ever open. Inboxes read only this table."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_instance_status", "instance_id", "status"),
        Index("ix_tasks_status_due", "status", "due_at"),
        # The inbox: a branch's open tasks by lane, a person's own, a person's done ones.
        Index("ix_tasks_branch_status_lane", "branch", "status", "lane"),
        Index("ix_tasks_status_lane", "status", "lane"),
        Index("ix_tasks_assignee_status", "assignee", "status"),
        Index("ix_tasks_completed_by", "completed_by", "completed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # Spiff's task UUID
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    process_id: Mapped[str] = mapped_column(String(200))
    bpmn_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(String(300))  # the instance's title: what the task is about
    lane: Mapped[str | None] = mapped_column(String(100))
    form_key: Mapped[str | None] = mapped_column(String(200))
    branch: Mapped[str | None] = mapped_column(String(50))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    # A named person, else the lane's role. Indexed with status in ix_tasks_assignee_status.
    assignee: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | completed | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(100))


class Message(Base):
    """A BPMN message thrown by one instance for another, kept until it is delivered (exactly once).

    `correlation_hash` is the SHA-256 of the canonical correlations: with `name` it is what a waiting
    receiver is looked up by (`MessageWait` carries the same pair)."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_route", "name", "correlation_hash", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    correlation_hash: Mapped[str] = mapped_column(String(64))
    correlations: Mapped[str] = mapped_column(Text)  # canonical JSON, for people and for the check
    payload: Mapped[str] = mapped_column(Text)
    sender_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | delivered
    receiver_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Deliveries by the scheduler that failed (the receiver's step raised): retried up to a limit.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)


class MessageWait(Base):
    """The message index: one row per message a waiting catch event (or event gateway) of an instance
    can take, rebuilt with the instance's state in every step, like the task index."""

    __tablename__ = "message_waits"
    __table_args__ = (Index("ix_message_waits_route", "name", "correlation_hash"),)

    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    correlation_hash: Mapped[str] = mapped_column(String(64))
    correlations: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One append-only event; `hash` covers every field and the previous event's hash."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(50))
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    bpmn_id: Mapped[str | None] = mapped_column(String(200))
    branch: Mapped[str | None] = mapped_column(String(50), index=True)
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last link (a single row). Appends lock it, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


@dataclass
class InstanceRow:
    """A plain, mutable copy of one `instances` row: what a step reads, changes and writes back with Core."""

    id: int | None
    process_id: str
    spec_version_id: int
    spec_hash: str
    status: str
    branch: str | None
    title: str | None
    state_json: str
    version: int
    next_due_at: datetime | None
    started_by: str
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    timer_failures: int = 0
    timer_error: str | None = None
