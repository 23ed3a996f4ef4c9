"""Programme years: each year's programme is started once, and keeps the catalog version it started with.

A projection of the `programme` process (registered in workflows/plugins.py) claims the year in the step
that starts the instance, however it is started (`zhibu programme start`, `zhibu start programme`, the
demo). Concurrency: `year` is the primary key, so of two starts of one year in flight only one commits;
the other fails with Conflict and its step (with the branch programmes it started) rolls back whole.
"""

from __future__ import annotations

from datetime import datetime

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import ForeignKey, Integer, String, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine.clock import LOCAL_TZ
from workflows.engine.errors import Conflict
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


def of_year(session: Session, year: int) -> ProgrammeYear | None:
    """The programme started for `year`, if any."""
    return session.get(ProgrammeYear, year)


def refuse_second_start(session: Session, year: int) -> None:
    """Conflict, naming the running programme, when `year` has been started already."""
    existing = of_year(session, year)
    if existing is not None:
        when = existing.started_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d")
        raise Conflict(f"{year} 年度工作已于 {when} 启动（流程实例 {existing.instance_id}），不能重复启动")


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
