"""Deadline fields of forms (`"x-zhibu": "future-date"`): a working day after today.

A deadline is a calendar date meaning "that day, 24:00 Beijing time", and it reads the same everywhere.
So it must lie after today (a passed one would fire its whole ladder at once), and on a working day: a
rest-day deadline would silently move to the next working day, and the date people typed would not be
the date they are held to. Messages are per field, in Chinese.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from workflows.deadlines import calendar
from workflows.engine.clock import LOCAL_TZ
from workflows.programme.form_refs import marked


def check_deadlines(
    session: Session, schema: dict | None, data: Any, branch_code: str | None, now: datetime
) -> dict[str, str]:
    """Per-field messages for deadline fields that are not a working day after today."""
    today = now.astimezone(LOCAL_TZ).date()
    errors: dict[str, str] = {}
    days = None
    for key, kind, value in marked(schema, data):
        day = _day(value) if kind == "future-date" else None
        if day is None:
            continue  # no date: the schema's own format check says so
        if day <= today:
            errors[key] = f"须晚于今天（{today.isoformat()}）：期限指所填日期当天24时"
            continue
        days = days or calendar.load(session)
        if not days.is_workday(day):
            after, _ = days.shift(day, 0)
            errors[key] = f"{day.isoformat()} 是休息日，期限请选工作日（如 {after.isoformat()}）"
    return errors


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
