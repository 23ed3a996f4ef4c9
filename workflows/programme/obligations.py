"""Recurring obligations (三会一课, 主题党日, ...): an occurrence per branch and period, each an instance.

The obligations and their frequencies come from `data/obligations.json`. `pending` lists the
occurrences that should exist by today and do not: every period from the programme's start (the
first period containing the first programme year's start, or the branch's creation if later) up to
the current one, so periods a stopped scheduler missed are made up. The caller starts one
`obligation` instance per occurrence and records it with `add`, in the same transaction (the
unique key decides between two schedulers). An occurrence not recorded by the end of its period, or
recorded late, is a shortfall (`missed`); the diagram puts each missed one into a rectification item
(`shortfall_item`, linked with `link_item`). A committee member visits a contact branch until it
passes (不达标不脱钩, `attached_spans`). Functions never commit.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    column,
    func,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine.clock import LOCAL_TZ, end_of_day
from workflows.engine.instances import restore
from workflows.engine.models import AuditEvent, Base, ProcessInstance, UTCDateTime
from workflows.programme import catalog, org, years

OBLIGATIONS_FILE = Path(__file__).resolve().parents[2] / "data" / "obligations.json"


class Occurrence(Base):
    """One obligation of one branch (and, for contact visits, one committee member) in one period."""

    __tablename__ = "occurrences"
    __table_args__ = (UniqueConstraint("obligation", "branch_code", "username", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)
    username: Mapped[str] = mapped_column(String(100), default="")  # "" for the branch's own obligations
    period: Mapped[str] = mapped_column(String(30))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    standard_item: Mapped[str | None] = mapped_column(String(30))
    instance_id: Mapped[int] = mapped_column(Integer, index=True)
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    rectification_id: Mapped[int | None] = mapped_column(Integer)  # the item its miss became, if missed


@lru_cache(maxsize=1)
def catalogue() -> list[dict[str, Any]]:
    """The obligations of the data file."""
    return json.loads(OBLIGATIONS_FILE.read_text(encoding="utf-8"))["obligations"]


def period_of(frequency: str, day: date) -> tuple[str, date, date]:
    """(label, first day, last day) of the period of `frequency` that contains `day`."""
    if frequency == "monthly":
        last = calendar.monthrange(day.year, day.month)[1]
        return f"{day.year}-{day.month:02d}", day.replace(day=1), day.replace(day=last)
    if frequency == "quarterly":
        quarter = (day.month - 1) // 3
        first = date(day.year, quarter * 3 + 1, 1)
        end_month = quarter * 3 + 3
        return (
            f"{day.year}-Q{quarter + 1}",
            first,
            date(day.year, end_month, calendar.monthrange(day.year, end_month)[1]),
        )
    if frequency == "yearly":
        return str(day.year), date(day.year, 1, 1), date(day.year, 12, 31)
    raise ValueError(f"unknown frequency {frequency}")


@dataclass(frozen=True)
class Pending:
    """An occurrence that should exist and does not yet."""

    obligation: dict[str, Any]
    branch_code: str
    username: str
    period: str
    period_start: date
    period_end: date

    def start_data(self) -> dict[str, Any]:
        """Start data of its `obligation` instance."""
        return {
            "branch": self.branch_code,
            "obligation": self.obligation["code"],
            "title": f"{self.obligation['name']}（{self.period}）",
            "period": self.period,
            "due": self.period_end.isoformat(),
            "assignee": self.username or None,  # a contact visit is its committee member's own task
        }


def periods_between(frequency: str, first: date, last: date) -> list[tuple[str, date, date]]:
    """Every period of `frequency` from the one containing `first` to the one containing `last`."""
    found, day = [], first
    while day <= last:
        period = period_of(frequency, day)
        found.append(period)
        day = period[2] + timedelta(days=1)
    return found


def _periods(
    obligation: dict[str, Any], branch: org.Branch, first: date, today: date
) -> list[tuple[str, date, date]]:
    if obligation["frequency"] != "term":
        return periods_between(obligation["frequency"], first, today)
    end = branch.term_end
    lead = timedelta(days=obligation.get("lead_days", 90))
    if end is None or end - lead > today or end < first:
        return []
    return [(f"换届-{end.isoformat()}", end - lead, end)]


def _local(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def programme_start(session: Session) -> date | None:
    """The day the first programme year was started (nothing is made up from before it), if any."""
    started = session.scalar(select(func.min(years.ProgrammeYear.started_at)))
    return _local(started) if started is not None else None


def _contacts_since(session: Session) -> dict[tuple[str, str], date]:
    """(committee member, branch) → the day the contact point was (last) added, from the audit trail."""
    since: dict[tuple[str, str], date] = {}
    query = select(AuditEvent.occurred_at, AuditEvent.data).where(AuditEvent.action == "org.contact_added")
    for occurred_at, data in session.execute(query.order_by(AuditEvent.seq)):
        payload = json.loads(data)
        since[(payload["username"], payload["branch"])] = _local(occurred_at)
    return since


Span = tuple[date | None, date | None]  # first and last day, None for open-ended
ALWAYS: list[Span] = [(None, None)]

# The dashboard owns `branch_grades` and imports this module: read the table here through a table clause.
_GRADES = table(
    "branch_grades",
    column("year", Integer),
    column("branch_code", String),
    column("grade", String),
    column("graded_at", UTCDateTime()),
)


@dataclass(frozen=True)
class Graded:
    """A branch's acceptance result for a year, as the contact rule reads it."""

    year: int
    passed: bool
    year_end: date  # the year's acceptance deadline (end of phase 4)
    graded_on: date


def attached_spans(grades: list[Graded], today: date) -> list[Span]:
    """不达标不脱钩: the stretches of days during which a branch's committee contacts visit it.

    A branch is attached until a passing grade's programme year has ended (its acceptance deadline is
    past); a later grade that does not pass attaches it again from the day it was recorded.
    """
    spans: list[Span] = []
    since: date | None = None
    attached = True
    for graded in sorted(grades, key=lambda g: g.year):
        if attached and graded.passed and graded.year_end < today:
            spans.append((since, graded.year_end))
            attached = False
        elif not attached and not graded.passed:
            since, attached = graded.graded_on, True
    if attached:
        spans.append((since, None))
    return spans


def _within(spans: list[Span], first: date, last: date) -> bool:
    return any(
        (since is None or last >= since) and (until is None or first <= until) for since, until in spans
    )


def year_end(session: Session, year: int) -> date:
    """A programme year's acceptance deadline as the year was started (else the plan's 31 January)."""
    started = years.of_year(session, year)
    instance = session.get(ProcessInstance, started.instance_id) if started is not None else None
    if instance is not None:
        for task in restore(session, instance).workflow.get_tasks():
            value = task.data.get("phase4_deadline")
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    break
    return date(year + 1, 1, 31)


def passing_grades(session: Session, year: int) -> set[str]:
    """The grades that pass in a year: the bands of the catalog the year runs on (else the active one)."""
    started = years.of_year(session, year)
    if started is not None and started.catalog_id is not None:
        found = session.get(catalog.Catalog, started.catalog_id)
    else:
        found = catalog.active(session, required=False)
    return set() if found is None else {band["grade"] for band in json.loads(found.grades_json)}


def attached_spans_by_branch(session: Session, today: date) -> dict[str, list[Span]]:
    """Branch code → `attached_spans` from its recorded grades (a branch never graded: always attached)."""
    ends: dict[int, tuple[date, set[str]]] = {}
    graded: dict[str, list[Graded]] = {}
    query = select(_GRADES.c.year, _GRADES.c.branch_code, _GRADES.c.grade, _GRADES.c.graded_at)
    for year, code, grade, graded_at in session.execute(query.order_by(_GRADES.c.year)):
        if year not in ends:
            ends[year] = (year_end(session, year), passing_grades(session, year))
        end, passing = ends[year]
        graded.setdefault(code, []).append(Graded(year, grade in passing, end, _local(graded_at)))
    return {code: attached_spans(rows, today) for code, rows in graded.items()}


def pending(session: Session, today: date, branch_codes: list[str] | None = None) -> list[Pending]:
    """Occurrences that should exist by `today` and do not (all branches, or some).

    Before any programme year was started only the current periods are due; after, every period from
    the programme's start (or the branch's creation, or the contact point's, if later) to today.
    """
    branches = [b for b in org.active_branches(session) if branch_codes is None or b.code in branch_codes]
    start = programme_start(session)
    earliest = today if start is None else min(start, today)
    existing = {
        tuple(row)
        for row in session.execute(
            select(
                Occurrence.obligation, Occurrence.branch_code, Occurrence.username, Occurrence.period
            ).where(Occurrence.period_end >= earliest)
        )
    }
    contacts: dict[str, list[str]] = {}
    for username, code in session.execute(select(org.ContactPoint.username, org.ContactPoint.branch_code)):
        contacts.setdefault(code, []).append(username)
    since = _contacts_since(session) if start is not None else {}
    spans = attached_spans_by_branch(session, today)
    result = []
    for branch in branches:
        first = today if start is None else min(max(start, _local(branch.created_at)), today)
        for obligation in catalogue():
            contact = obligation["scope"] == "contact"
            people = sorted(contacts.get(branch.code, [])) if contact else [""]
            for username in people:
                begin = (
                    min(max(first, since.get((username, branch.code), first)), today) if contact else first
                )
                for label, period_start, period_end in _periods(obligation, branch, begin, today):
                    if contact and not _within(spans.get(branch.code, ALWAYS), period_start, period_end):
                        continue
                    if (obligation["code"], branch.code, username, label) not in existing:
                        result.append(
                            Pending(obligation, branch.code, username, label, period_start, period_end)
                        )
    return result


def add(session: Session, item: Pending, instance_id: int) -> Occurrence:
    """Record an occurrence whose instance was just started."""
    occurrence = Occurrence(
        obligation=item.obligation["code"],
        name=item.obligation["name"],
        branch_code=item.branch_code,
        username=item.username,
        period=item.period,
        period_start=item.period_start,
        period_end=item.period_end,
        due_at=end_of_day(item.period_end.isoformat()),
        standard_item=item.obligation.get("standard_item"),
        instance_id=instance_id,
    )
    session.add(occurrence)
    session.flush()
    return occurrence


def mark_recorded(session: Session, instance_id: int, now: datetime) -> dict[str, Any]:
    """Note that an occurrence was recorded now; on time means before the end of its period."""
    occurrence = session.scalar(select(Occurrence).where(Occurrence.instance_id == instance_id))
    if occurrence is None:
        return {"recorded": False}
    occurrence.recorded_at = now
    occurrence.on_time = now < occurrence.due_at
    session.flush()
    return {"recorded": True, "on_time": occurrence.on_time}


SHORTFALL_SOURCE = "例行工作"  # the rectification register's source of a missed occurrence


def occurrence_of(session: Session, instance_id: int) -> Occurrence | None:
    """The occurrence an obligation instance stands for, locked for the step that changes it."""
    return session.scalar(select(Occurrence).where(Occurrence.instance_id == instance_id).with_for_update())


def shortfall_item(session: Session, occurrence: Occurrence) -> dict[str, Any]:
    """Start data of the rectification item a missed occurrence becomes (source 例行工作)."""
    who, by = "", ""
    if occurrence.username:
        person = session.get(org.User, occurrence.username)
        name = person.display_name if person is not None else occurrence.username
        who, by = f"，{name}", f"（联系党委委员{name}）"
    end = occurrence.period_end.isoformat()
    data = {
        "source": SHORTFALL_SOURCE,
        "branch": occurrence.branch_code,
        "title": f"例行工作缺项：{occurrence.name}（{occurrence.period}{who}）"[:100],
        "description": (
            f"{occurrence.period_start.isoformat()} 至 {end} 应开展的“{occurrence.name}”{by}"
            f"到期（{end} 24时）未记录。请查明原因，补开展、补记录，并落实整改措施。"
        ),
    }
    if occurrence.standard_item:
        data["standard_item"] = occurrence.standard_item
    return data


def link_item(session: Session, occurrence: Occurrence, rectification_id: int) -> None:
    """Keep the id of the rectification item a missed occurrence became."""
    occurrence.rectification_id = rectification_id
    session.flush()


def missed(session: Session, branch_code: str, now: datetime) -> list[dict[str, Any]]:
    """A branch's shortfalls: occurrences past their period and not recorded in time."""
    rows = session.scalars(
        select(Occurrence)
        .where(
            Occurrence.branch_code == branch_code,
            Occurrence.due_at <= now,
            or_(Occurrence.recorded_at.is_(None), Occurrence.on_time.is_(False)),
        )
        .order_by(Occurrence.due_at, Occurrence.obligation)
    )
    return [
        {
            "obligation": o.obligation,
            "name": o.name,
            "period": o.period,
            "username": o.username or None,
            "standard_item": o.standard_item,
            "status": "逾期补记" if o.recorded_at else "未开展",
            "rectification_id": o.rectification_id,
        }
        for o in rows
    ]
