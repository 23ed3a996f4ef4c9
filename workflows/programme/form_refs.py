"""Form fields that name branches and people: checked against the organization before a step runs.

A schema property marks such a field with `"x-zhibu"`: `"branch"` (a known branch code), `"person"`
(someone of the instance's branch; anyone for company-level work), `"people"` (a list of such
usernames) or `"committee"` (a committee member). Messages are per field, in Chinese, like the
schema's own. `marked` finds marked fields for other checks too (deadlines: `"future-date"`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from workflows.programme.org import Branch, User, grants, people_of


def marked(schema: dict | None, value: Any, path: tuple = ()) -> Iterator[tuple[str, str, Any]]:
    """(field key, x-zhibu kind, value) of every filled, marked field, nested objects and lists included."""
    schema = schema or {}
    if isinstance(value, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if name in value:
                yield from marked(prop, value[name], (*path, name))
        return
    kind = schema.get("x-zhibu")
    if isinstance(value, list) and kind is None:
        for index, element in enumerate(value):
            yield from marked(schema.get("items") or {}, element, (*path, index))
        return
    if kind is not None and value not in (None, "", []):
        yield ".".join(map(str, path)), kind, value


def check_people(
    session: Session, schema: dict | None, data: Any, branch_code: str | None, now: datetime
) -> dict[str, str]:
    """Per-field messages for marked fields that name an unknown branch or a person out of place."""
    errors: dict[str, str] = {}
    for key, kind, value in marked(schema, data):
        if kind in ("branch", "person", "people", "committee") and key not in errors:
            message = _problem(session, kind, value, branch_code)
            if message is not None:
                errors[key] = message
    return errors


def _problem(session: Session, kind: str, value: Any, branch_code: str | None) -> str | None:
    if kind == "branch":
        for code in value if isinstance(value, list) else [value]:
            if isinstance(code, str) and session.get(Branch, code) is None:
                return f"没有编号为“{code}”的党支部"
        return None
    allowed = set(people_of(session, branch_code)) if branch_code and kind != "committee" else None
    for username in value if isinstance(value, list) else [value]:
        if not isinstance(username, str):
            continue  # the schema reports the wrong type
        if session.get(User, username) is None:
            return f"用户“{username}”不存在"
        if kind == "committee" and ("committee", None) not in grants(session, username):
            return f"“{username}”不是党委委员"
        if allowed is not None and username not in allowed:
            return f"“{username}”不是本党支部人员"
    return None
