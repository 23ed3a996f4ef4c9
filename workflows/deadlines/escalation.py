"""The escalation ladder: when each level of a late task is reached, and who hears of it.

The ladder is data (`data/escalation.json`: a default and per `process/task` overrides); the diagram
draws each level as a non-interrupting boundary timer on the task, whose expression asks this module
for its instant (`escalation_at`). A level reached notifies its people and, for the last level, files
a notice of criticism (通报). Functions never commit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.deadlines import calendar
from workflows.engine import audit
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.models import Base, ProcessInstance, TaskRecord, UTCDateTime
from workflows.programme import org, trail_text

LADDER_FILE = Path(__file__).resolve().parents[2] / "data" / "escalation.json"


class Escalation(Base):
    """A ladder level reached for one deadline of one task: each fires once per deadline, ever."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("instance_id", "task_id", "level", "deadline"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    task_id: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[date] = mapped_column(Date)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)


def first_time(
    session: Session, instance_id: int, task_id: str, number: int, deadline: date, now: datetime
) -> bool:
    """Record that a level was reached for this deadline; False if it already was (then nothing is told)."""
    found = session.scalar(
        select(Escalation.id).where(
            Escalation.instance_id == instance_id,
            Escalation.task_id == task_id,
            Escalation.level == number,
            Escalation.deadline == deadline,
        )
    )
    if found is not None:
        return False
    session.add(
        Escalation(instance_id=instance_id, task_id=task_id, level=number, deadline=deadline, fired_at=now)
    )
    session.flush()
    return True


class Notice(Base):
    """A notice of criticism (通报批评) filed when a task reaches the ladder's last level."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_code: Mapped[str | None] = mapped_column(ForeignKey("branches.code"), index=True)
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    task_bpmn_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


@lru_cache(maxsize=1)
def _ladders() -> dict[str, Any]:
    return json.loads(LADDER_FILE.read_text(encoding="utf-8"))


def ladder(process_id: str, task_id: str) -> list[dict[str, Any]]:
    """The levels that apply to one task of one process."""
    data = _ladders()
    tasks = data["tasks"]
    return tasks.get(f"{process_id}/{task_id}") or tasks.get(f"{process_id}/*") or data["default"]


def level(process_id: str, task_id: str, number: int) -> dict[str, Any]:
    """One level of a task's ladder."""
    for entry in ladder(process_id, task_id):
        if entry["level"] == number:
            return entry
    raise LookupError(f"no escalation level {number} for {process_id}/{task_id}")


def instant(session: Session, process_id: str, task_id: str, number: int, deadline: str) -> tuple[str, bool]:
    """When a level is reached for a date deadline (ISO instant), and whether the calendar confirms it."""
    offset = level(process_id, task_id, number)["offset"]
    when, confirmed = calendar.deadline(calendar.load(session), deadline, offset)
    return when.isoformat(), confirmed


@dataclass(frozen=True)
class Step:
    """One level of a deadline's ladder as people read it: when, and why then."""

    level: int
    name: str
    at: datetime
    why: str
    confirmed: bool


def schedule(session: Session, process_id: str, task_id: str, deadline: str) -> list[Step]:
    """The ladder of one deadline: each level's instant and the working-day rule that put it there."""
    days = calendar.load(session)
    steps = []
    for entry in ladder(process_id, task_id):
        when, confirmed = calendar.deadline(days, deadline, entry["offset"])
        offset = entry["offset"]
        why = (
            "截止日当天24时"
            if offset == 0
            else f"截止日{'前' if offset < 0 else '后'} {abs(offset)} 个工作日（节假日、周末不计）"
        )
        steps.append(Step(entry["level"], entry["name"], when, why, confirmed))
    return steps


def recipients(session: Session, who: list[str], *, branch: str | None, assignee: str | None) -> list[str]:
    """Usernames for the ladder's roles, in a stable order and without repeats."""
    names: list[str] = []
    for role in who:
        if role == "assignee" and assignee:
            names.append(assignee)
        elif role == "secretary" and branch:
            names.extend(org.people_of(session, branch, ("secretary",)))
        elif role == "contact" and branch:
            names.extend(org.contacts_of(session, branch))
        elif role == "office" or (role == "secretary" and not branch):
            names.extend(org.holders(session, "office"))
    return list(dict.fromkeys(names))


def file_notice(
    session: Session,
    *,
    branch: str | None,
    instance_id: int,
    task_id: str,
    subject: str,
    text: str,
    now: datetime,
) -> Notice:
    """Record a notice of criticism."""
    notice = Notice(
        branch_code=branch,
        instance_id=instance_id,
        task_bpmn_id=task_id,
        subject=subject,
        text=text,
        created_at=now,
    )
    session.add(notice)
    session.flush()
    audit.append(
        session,
        action="notice.filed",
        actor="system:escalation",
        occurred_at=now,
        instance_id=instance_id,
        branch=branch,
        data={"notice_id": notice.id, "task": task_id, "subject": subject, "text": text},
    )
    return notice


def notices(
    session: Session, branch: str | None = None, *, year: int | None = None, text: str | None = None
) -> list[Notice]:
    """Notices of criticism, newest first: one branch or all, one year (Beijing time) or all, and those
    whose subject or text contains `text` (case-insensitive) when given."""
    query = select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc())
    if branch is not None:
        query = query.where(Notice.branch_code == branch)
    if year is not None:
        start = datetime(year, 1, 1, tzinfo=LOCAL_TZ)
        query = query.where(Notice.created_at >= start, Notice.created_at < start.replace(year=year + 1))
    if text:
        query = query.where(
            or_(Notice.subject.icontains(text, autoescape=True), Notice.text.icontains(text, autoescape=True))
        )
    return list(session.scalars(query))


def notice_count(session: Session) -> int:
    """How many notices were ever filed."""
    return session.scalar(select(func.count()).select_from(Notice)) or 0


def notice_years(session: Session) -> list[int]:
    """The years (Beijing time) in which notices were filed, newest first."""
    filed = session.scalars(select(Notice.created_at))
    return sorted({when.astimezone(LOCAL_TZ).year for when in filed}, reverse=True)


@dataclass(frozen=True)
class NoticeLine:
    """A notice as people read it: which branch, which process and step was late, and where it stands."""

    notice: Notice
    branch_name: str | None  # None: a company-level item, or a branch since removed
    process_id: str | None
    step: str  # the late task's name (整改落实), else its BPMN id
    task_status: str | None  # the late task now: open | completed | cancelled; None if not in the task index


def notice_lines(
    session: Session, branch: str | None = None, *, year: int | None = None, text: str | None = None
) -> list[NoticeLine]:
    """`notices` with what a page shows beside each: branch name, process, the late step's name."""
    found = notices(session, branch, year=year, text=text)
    ids = {n.instance_id for n in found}
    names = dict(session.execute(select(org.Branch.code, org.Branch.name)).all())
    picked = select(ProcessInstance.id, ProcessInstance.process_id).where(ProcessInstance.id.in_(ids))
    processes: dict[int, str] = dict(session.execute(picked).all())
    tasks: dict[tuple[int, str], tuple[str, str | None]] = {}  # the newest task row of each (instance, step)
    for row in session.execute(
        select(TaskRecord.instance_id, TaskRecord.bpmn_id, TaskRecord.title, TaskRecord.status)
        .where(TaskRecord.instance_id.in_(ids))
        .order_by(TaskRecord.created_at, TaskRecord.id)
    ):
        tasks[(row.instance_id, row.bpmn_id)] = (row.title, row.status)
    named: dict[str, str] = {}
    if any((n.instance_id, n.task_bpmn_id) not in tasks for n in found):  # not a human task: ask the diagram
        named = trail_text.labels(session).steps
    lines = []
    for notice in found:
        title, status = tasks.get(
            (notice.instance_id, notice.task_bpmn_id),
            (named.get(notice.task_bpmn_id, notice.task_bpmn_id), None),
        )
        lines.append(
            NoticeLine(
                notice,
                names.get(notice.branch_code) if notice.branch_code else None,
                processes.get(notice.instance_id),
                title,
                status,
            )
        )
    return lines


_TIMER_CALL = re.compile(r"""escalation_at\(\s*["']([^"']+)["']\s*,\s*(\d+)""")


@lru_cache(maxsize=256)  # a diagram has a handful of timer expressions; every step reads them
def timer_level(expression: str | None) -> tuple[str, int] | None:
    """(task id, level) of a boundary timer written as `escalation_at("fix", 2, deadline)`, else None."""
    found = _TIMER_CALL.search(expression or "")
    return (found.group(1), int(found.group(2))) if found else None


@lru_cache(maxsize=256)
def is_deadline(process_id: str, task_id: str, number: int) -> bool:
    """Whether this level of the ladder is the task's deadline (the others are before or after it)."""
    try:
        return bool(level(process_id, task_id, number).get("deadline"))
    except LookupError:
        return False


@lru_cache(maxsize=512)
def timer_meaning(process_id: str, expression: str | None) -> tuple[int, bool] | None:
    """(level, is the deadline) of a ladder timer of this process, for the task index; else None."""
    ladder = timer_level(expression)
    return None if ladder is None else (ladder[1], is_deadline(process_id, *ladder))
