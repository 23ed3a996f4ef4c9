"""What an operator watches: each scheduler's last run of each job, and whether the scheduling is alive.

Every scheduler process records each job it ran (`record`): when it finished, how long it took and
whether it failed, one row per (scheduler, job), updated in place. `/healthz` reads the newest of them
as the heartbeat; `/metrics` reads the sweep's duration. A scheduler's name is its host, pid and a
random tag, so several schedulers never write the same row, and `record` needs no lock.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, Float, String, Text, delete, func, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import timers
from workflows.engine.models import AuditHead, Base, ProcessInstance, TaskRecord, UTCDateTime

STALE_AFTER = timedelta(seconds=int(os.environ.get("ZHIBU_HEARTBEAT_STALE", "300") or 300))
FORGET_AFTER = timedelta(days=7)  # rows of schedulers that stopped long ago


class JobRun(Base):
    """The last run of one job by one scheduler process."""

    __tablename__ = "job_runs"

    scheduler: Mapped[str] = mapped_column(String(200), primary_key=True)
    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    seconds: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


def scheduler_name() -> str:
    """This process as a scheduler: host, pid and a random tag (containers may share host name and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def record(
    session: Session,
    *,
    scheduler: str,
    job: str,
    finished_at: datetime,
    seconds: float,
    error: str | None = None,
) -> None:
    """Note one finished run of `job` (its error, if it failed)."""
    values = {"finished_at": finished_at, "seconds": seconds, "ok": error is None, "error": error}
    updated = session.execute(
        update(JobRun).where(JobRun.scheduler == scheduler, JobRun.job == job).values(**values)
    )
    if updated.rowcount == 0:
        session.execute(insert(JobRun).values(scheduler=scheduler, job=job, **values))
        session.execute(delete(JobRun).where(JobRun.finished_at < finished_at - FORGET_AFTER))


@dataclass(frozen=True)
class Heartbeat:
    """The newest job run of any scheduler, and whether it is recent enough."""

    last_at: datetime | None
    age_seconds: float | None
    schedulers: int
    failing: list[str]
    stale: bool


def heartbeat(session: Session, now: datetime, stale_after: timedelta = STALE_AFTER) -> Heartbeat:
    """The scheduling's pulse at `now`: stale when no scheduler finished a job within `stale_after`."""
    since = now - stale_after
    last_at = session.scalar(select(func.max(JobRun.finished_at)))
    live = session.scalar(
        select(func.count(func.distinct(JobRun.scheduler))).where(JobRun.finished_at >= since)
    )
    failing = session.scalars(
        select(JobRun.job).where(JobRun.finished_at >= since, JobRun.ok.is_(False)).distinct()
    ).all()
    if last_at is None:
        return Heartbeat(None, None, 0, list(failing), True)
    age = max((now - last_at).total_seconds(), 0.0)
    return Heartbeat(last_at, age, live or 0, sorted(failing), last_at < since)


@dataclass(frozen=True)
class Figures:
    """What /metrics reports of the whole deployment at one moment."""

    open_tasks: dict[str, int]
    overdue_tasks: dict[str, int]
    timers_due: int
    timer_lag: float
    parked: int
    audit_events: int
    heartbeat: Heartbeat
    sweep_seconds: float | None


def figures(session: Session, now: datetime) -> Figures:
    """Open and overdue tasks by process, timers due and how late, the audit chain's length, the heartbeat."""
    by_process = select(TaskRecord.process_id, func.count()).where(TaskRecord.status == "open")
    open_tasks = {p: n for p, n in session.execute(by_process.group_by(TaskRecord.process_id))}
    late = by_process.where(TaskRecord.due_at < now).group_by(TaskRecord.process_id)
    due = select(func.count(), func.min(ProcessInstance.next_due_at)).where(
        ProcessInstance.status == "running", ProcessInstance.next_due_at <= now
    )
    timers_due, oldest = session.execute(due).one()
    parked = session.scalar(
        select(func.count()).where(
            ProcessInstance.status == "running", ProcessInstance.timer_failures >= timers.MAX_FAILURES
        )
    )
    return Figures(
        open_tasks=open_tasks,
        overdue_tasks={p: n for p, n in session.execute(late)},
        timers_due=timers_due,
        timer_lag=(now - oldest).total_seconds() if oldest is not None else 0.0,
        parked=parked or 0,
        audit_events=session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0,
        heartbeat=heartbeat(session, now),
        sweep_seconds=last_seconds(session, "sweep"),
    )


def last_seconds(session: Session, job: str) -> float | None:
    """How long the most recent run of `job` took, by whichever scheduler ran it last."""
    return session.scalar(
        select(JobRun.seconds).where(JobRun.job == job).order_by(JobRun.finished_at.desc()).limit(1)
    )
