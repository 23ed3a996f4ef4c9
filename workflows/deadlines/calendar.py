"""Working days in China: statutory holidays and make-up working days (调休) that move every year.

Where a day stands comes from, in order: the administrator's table (`calendar_days`, for years the
`chinesecalendar` package does not know yet, or to correct it), then `chinesecalendar`, then plain
Monday–Friday. A day decided by the fallback is *unconfirmed*, and so is any deadline counted across
it. Counting follows the Civil Code (art. 201–203): the start day is not counted, and a deadline that
falls on a rest day moves to the next working day. Functions never commit.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import chinese_calendar
from sqlalchemy import Date, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit
from workflows.engine.clock import end_of_day
from workflows.engine.errors import InvalidInput
from workflows.engine.models import Base, UTCDateTime

KINDS = {"holiday": "休息日（节假日）", "workday": "工作日（调休上班）"}


class CalendarDay(Base):
    """An administrator's entry: this date is a holiday, or a make-up working day."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # holiday | workday
    name: Mapped[str] = mapped_column(String(100), default="")
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass
class WorkCalendar:
    """The calendar as of one moment: the administrator's entries, read once."""

    entries: dict[date, str] = field(default_factory=dict)

    def status(self, day: date) -> tuple[bool, bool]:
        """(is a working day, confirmed by the table or the package)."""
        kind = self.entries.get(day)
        if kind is not None:
            return kind == "workday", True
        try:
            return bool(chinese_calendar.is_workday(day)), True
        except NotImplementedError:  # a year the package has no data for
            return day.weekday() < 5, self._year_covered(day.year)

    def year_confirmed(self, year: int) -> bool:
        """Whether a year's holidays are known (from the package or the administrator's table)."""
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
            return True
        except NotImplementedError:
            return self._year_covered(year)

    def confirmed_until(self, start: date, end: date) -> bool:
        """Whether every year from `start` to `end` is known, so a deadline counted across them is sure."""
        return all(self.year_confirmed(year) for year in range(start.year, end.year + 1))

    def _year_covered(self, year: int) -> bool:
        # A year the administrator has entered is taken as published: its other days follow the weekdays.
        return any(d.year == year for d in self.entries)

    def is_workday(self, day: date) -> bool:
        """Whether people work on this day."""
        return self.status(day)[0]

    def shift(self, start: date, days: int) -> tuple[date, bool]:
        """The date `days` working days after (before, if negative) `start`, and whether that is confirmed.

        The start day is not counted. With `days == 0` the result is `start`, or the next working day
        if `start` is a rest day.
        """
        confirmed, current = True, start
        if days == 0:
            while True:
                working, sure = self.status(current)
                confirmed &= sure
                if working:
                    return current, confirmed
                current += timedelta(days=1)
        step, remaining = (1, days) if days > 0 else (-1, -days)
        while remaining:
            current += timedelta(days=step)
            working, sure = self.status(current)
            confirmed &= sure
            remaining -= working
        return current, confirmed


def load(session: Session) -> WorkCalendar:
    """The calendar with the administrator's current entries."""
    return WorkCalendar({row.day: row.kind for row in session.scalars(select(CalendarDay))})


def deadline(calendar: WorkCalendar, due: date | str, offset: int = 0) -> tuple[datetime, bool]:
    """The instant a date deadline moved by `offset` working days expires (the end of that day, Beijing)."""
    day = date.fromisoformat(due) if isinstance(due, str) else due
    base, base_confirmed = calendar.shift(day, 0)  # a deadline on a rest day moves to the next working day
    target, confirmed = calendar.shift(base, offset) if offset else (base, True)
    return end_of_day(target.isoformat()), base_confirmed and confirmed


def add_day(session: Session, day: date, kind: str, name: str, *, now: datetime, actor: str) -> CalendarDay:
    """Enter (or correct) one day in the administrator's table."""
    if kind not in KINDS:
        raise InvalidInput(f"类型应为 {' 或 '.join(KINDS)}")
    entry = session.get(CalendarDay, day)
    if entry is None:
        entry = CalendarDay(day=day, kind=kind, name=name, added_by=actor, added_at=now)
        session.add(entry)
    else:
        entry.kind, entry.name, entry.added_by, entry.added_at = kind, name, actor, now
    session.flush()
    audit.append(
        session,
        action="calendar.day_set",
        actor=actor,
        occurred_at=now,
        data={"day": day.isoformat(), "kind": kind, "name": name},
    )
    return entry


def remove_day(session: Session, day: date, *, now: datetime, actor: str) -> bool:
    """Remove an entry; the day falls back to the package or to Monday–Friday."""
    removed = session.execute(delete(CalendarDay).where(CalendarDay.day == day)).rowcount
    if removed:
        audit.append(
            session,
            action="calendar.day_removed",
            actor=actor,
            occurred_at=now,
            data={"day": day.isoformat()},
        )
    return bool(removed)


def entries(session: Session, year: int | None = None) -> list[CalendarDay]:
    """The administrator's entries, by date (one year, or all)."""
    query = select(CalendarDay).order_by(CalendarDay.day)
    if year is not None:
        query = query.where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31))
    return list(session.scalars(query))


def parse_csv(text: str) -> list[tuple[date, str, str]]:
    """Rows `date,kind,name` (a header line is allowed), or InvalidInput naming the bad line."""
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if (
            not row
            or not "".join(row).strip()
            or (number == 1 and row[0].strip().lower() in ("date", "日期"))
        ):
            continue
        if len(row) < 2:
            raise InvalidInput(f"第 {number} 行应为：日期,类型,名称")
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError as exc:
            raise InvalidInput(f"第 {number} 行日期“{row[0].strip()}”格式应为 YYYY-MM-DD") from exc
        kind = row[1].strip()
        if kind not in KINDS:
            raise InvalidInput(f"第 {number} 行类型“{kind}”应为 holiday 或 workday")
        rows.append((day, kind, row[2].strip() if len(row) > 2 else ""))
    return rows
