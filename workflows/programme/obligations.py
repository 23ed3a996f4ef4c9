"""Recurring obligations (三会一课, 主题党日, ...): an occurrence per branch and period, each an instance.

The obligations and their frequencies come from `data/obligations.json`. `pending` lists the
occurrences of the current periods that do not exist yet; the caller starts one `obligation`
instance per occurrence and records it with `add`, in the same transaction. An occurrence not
recorded by the end of its period, or recorded late, is a shortfall (`missed`). Functions never commit.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine.clock import end_of_day
from workflows.engine.models import Base, UTCDateTime
from workflows.programme import org

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


def _periods(obligation: dict[str, Any], branch: org.Branch, today: date) -> list[tuple[str, date, date]]:
    if obligation["frequency"] != "term":
        return [period_of(obligation["frequency"], today)]
    end = branch.term_end
    lead = timedelta(days=obligation.get("lead_days", 90))
    if end is None or not (end - lead <= today <= end):
        return []
    return [(f"换届-{end.isoformat()}", end - lead, end)]


def pending(session: Session, today: date, branch_codes: list[str] | None = None) -> list[Pending]:
    """Occurrences of the periods containing `today` that are not there yet (all branches, or some)."""
    branches = [b for b in org.active_branches(session) if branch_codes is None or b.code in branch_codes]
    existing = {
        tuple(row)
        for row in session.execute(
            select(
                Occurrence.obligation, Occurrence.branch_code, Occurrence.username, Occurrence.period
            ).where(Occurrence.period_end >= today)
        )
    }
    contacts: dict[str, list[str]] = {}
    for username, code in session.execute(select(org.ContactPoint.username, org.ContactPoint.branch_code)):
        contacts.setdefault(code, []).append(username)
    result = []
    for branch in branches:
        for obligation in catalogue():
            people = sorted(contacts.get(branch.code, [])) if obligation["scope"] == "contact" else [""]
            for username in people:
                for label, first, last in _periods(obligation, branch, today):
                    if (obligation["code"], branch.code, username, label) not in existing:
                        result.append(Pending(obligation, branch.code, username, label, first, last))
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
        }
        for o in rows
    ]
