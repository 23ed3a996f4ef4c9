"""Form fields that name branches and people: checked against the organization before a step runs.

A schema property marks such a field with `"x-zhibu"`: `"branch"` (a known branch code), `"person"`
(someone of the instance's branch; anyone for company-level work), `"people"` (a list of such
usernames), `"committee"` (a committee member) or `"future-date"` (a deadline: a date after today,
Beijing time, since a deadline means "that day, 24:00"). Messages are per field, in Chinese, like the
schema's own.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from workflows.engine.clock import LOCAL_TZ
from workflows.programme.org import Branch, User, grants, people_of


def check_people(
    session: Session, schema: dict | None, data: Any, branch_code: str | None, now: datetime
) -> dict[str, str]:
    """Per-field messages for marked fields that name an unknown branch, a person out of place, or a
    deadline that is not after today. Nested objects and arrays of objects are checked too."""
    errors: dict[str, str] = {}
    _check(session, schema or {}, data, branch_code, [], errors, now.astimezone(LOCAL_TZ).date())
    return errors


def _check(
    session: Session, schema: dict, value: Any, branch_code: str | None, path: list, errors: dict, today: date
) -> None:
    if isinstance(value, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if name in value:
                _check(session, prop, value[name], branch_code, [*path, name], errors, today)
        return
    kind = schema.get("x-zhibu")
    if isinstance(value, list) and kind is None:
        for index, element in enumerate(value):
            _check(session, schema.get("items") or {}, element, branch_code, [*path, index], errors, today)
        return
    if kind is None or value in (None, "", []):
        return
    key = ".".join(map(str, path))
    if kind == "future-date":
        day = _day(value)
        if day is not None and day <= today:
            errors[key] = f"须晚于今天（{today.isoformat()}）：期限指所填日期当天24时"
        return
    if kind == "branch":
        for code in value if isinstance(value, list) else [value]:
            if isinstance(code, str) and session.get(Branch, code) is None:
                errors[key] = f"没有编号为“{code}”的党支部"
                return
        return
    allowed = set(people_of(session, branch_code)) if branch_code and kind != "committee" else None
    for username in value if isinstance(value, list) else [value]:
        if not isinstance(username, str):
            continue  # the schema reports the wrong type
        if session.get(User, username) is None:
            errors[key] = f"用户“{username}”不存在"
        elif kind == "committee" and ("committee", None) not in grants(session, username):
            errors[key] = f"“{username}”不是党委委员"
        elif allowed is not None and username not in allowed:
            errors[key] = f"“{username}”不是本党支部人员"
        else:
            continue
        return


def _day(value: Any) -> date | None:
    """The date a field holds; None when it is no date (the schema's format check reports that)."""
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
