"""Programme years: each year's programme is started once, and keeps the catalog version it started with.

A projection of the `programme` process (registered in workflows/plugins.py) claims the year in the step
that starts the instance, however it is started (`zhibu programme start`, `zhibu start programme`, the
demo). Concurrency: `year` is the primary key, so of two starts of one year in flight only one commits;
the other fails with Conflict and its step (with the branch programmes it started) rolls back whole.
"""

from __future__ import annotations

from datetime import datetime

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import ForeignKey, Integer, String, Text, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine.clock import LOCAL_TZ
from workflows.engine.errors import Conflict, NotFound
from workflows.engine.models import Base, InstanceRow, UTCDateTime
from workflows.programme import catalog

PROCESS_ID = "programme"


class ProgrammeYear(Base):
    """The one programme instance of a year, and the catalog version it runs on."""

    __tablename__ = "programme_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    catalog_id: Mapped[int | None] = mapped_column(ForeignKey("catalogs.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(100))
    close_reason: Mapped[str | None] = mapped_column(Text)


def of_year(session: Session, year: int) -> ProgrammeYear | None:
    """The programme started for `year`, if any."""
    return session.get(ProgrammeYear, year)


def refuse_second_start(session: Session, year: int) -> None:
    """Conflict, naming the running programme, when `year` has been started already."""
    existing = of_year(session, year)
    if existing is not None:
        when = existing.started_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d")
        raise Conflict(f"{year} 年度工作已于 {when} 启动（流程实例 {existing.instance_id}），不能重复启动")


def current_year(session: Session, now: datetime) -> int:
    """The programme year under way at `now`: the latest started by then (else the calendar year)."""
    year = session.scalar(select(func.max(ProgrammeYear.year)).where(ProgrammeYear.started_at <= now))
    return year if year is not None else now.astimezone(LOCAL_TZ).year


def refuse_while_open(session: Session, year: int) -> None:
    """Conflict when an earlier year is still open: the office closes it first (its items carry over)."""
    earlier = session.scalar(
        select(ProgrammeYear).where(ProgrammeYear.year < year, ProgrammeYear.closed_at.is_(None))
    )
    if earlier is not None:
        raise Conflict(
            f"{earlier.year} 年度尚未结束：请先结束 {earlier.year} 年度"
            f"（zhibu programme close {earlier.year} --reason 原因），未销号的整改事项将结转到新年度"
        )


def refuse_closed(row: ProgrammeYear) -> None:
    """Conflict when the year was closed already."""
    if row.closed_at is not None:
        when = row.closed_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d")
        raise Conflict(f"{row.year} 年度已于 {when} 结束，不能重复结束")


def close(session: Session, year: int, *, reason: str, now: datetime, actor: str) -> ProgrammeYear:
    """Mark a year closed (the caller ends its instances and carries its open items over)."""
    row = of_year(session, year)
    if row is None:
        raise NotFound(f"{year} 年度工作尚未启动")
    refuse_closed(row)
    row.closed_at, row.closed_by, row.close_reason = now, actor, reason
    session.flush()
    return row


def _year_of(workflow: BpmnWorkflow) -> int | None:
    for task in workflow.get_tasks():
        year = task.data.get("year")
        if isinstance(year, int) and not isinstance(year, bool):
            return year
    return None


def project(session: Session, row: InstanceRow, workflow: BpmnWorkflow, open_steps: set[str], now: datetime):
    """Claim the year for a programme instance in the step that starts it (Conflict if it is taken)."""
    claimed = select(ProgrammeYear.year).where(ProgrammeYear.instance_id == row.id)
    if session.scalar(claimed) is not None:
        return
    year = _year_of(workflow)
    if year is None:
        raise Conflict("年度工作缺少年份（year），无法启动")
    refuse_second_start(session, year)
    refuse_while_open(session, year)
    active = catalog.active(session, required=False)
    values = {
        "year": year,
        "instance_id": row.id,
        "catalog_id": active.id if active is not None else None,
        "started_at": now,
        "started_by": row.started_by,
    }
    try:
        session.execute(insert(ProgrammeYear).values(**values))
    except IntegrityError as exc:  # a start of the same year committed meanwhile
        raise Conflict(f"{year} 年度工作已由他人同时启动，不能重复启动") from exc
