"""What a signed-in person does to a task, checked and done in the same transaction.

The order of checks gives each failure its meaning: an unknown task is NotFound (404), a task the
person may not act on is Forbidden (403), a task that is no longer open is a Conflict (409), and
bad form data is FormInvalid (400). Functions never commit; the request owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from workflows import inbox, instances
from workflows.clock import Clock
from workflows.errors import Conflict, Forbidden, NotFound
from workflows.models import TaskRecord


def visible_task(session: Session, username: str, task_id: str) -> TaskRecord:
    """A task the person may see, or NotFound / Forbidden."""
    record = session.get(TaskRecord, task_id)
    if record is None:
        raise NotFound(f"任务 {task_id} 不存在")
    if not inbox.can_see(session, username, task_id):
        raise Forbidden("无权查看该任务")
    return record


def complete_as(
    session: Session, username: str, task_id: str, data: dict[str, Any] | None, *, clock: Clock
) -> instances.CompletedTask:
    """Complete a task as this person, if it is theirs (or their role's) and still open."""
    record = session.get(TaskRecord, task_id)
    if record is None:
        raise NotFound(f"任务 {task_id} 不存在")
    if record.status != "open":
        raise Conflict(f"任务“{record.title}”已办结，不能重复提交")
    if not inbox.can_act(session, username, task_id):
        raise Forbidden("该任务不由您办理")
    return instances.complete_task(session, task_id, data, actor=username, clock=clock)


REGISTRATION_FIELDS = ("source", "branch", "title", "description", "standard_item", "deadline")


def register_rectification(
    session: Session, username: str, data: dict[str, Any], *, clock: Clock
) -> instances.InstanceRow:
    """Put a problem in the ledger: the office for any branch (or the company), a secretary for their own."""
    who = inbox.person(session, username)
    branch = data.get("branch")
    allowed = "office" in who.company_roles or (
        isinstance(branch, str) and branch in who.branch_roles.get("secretary", frozenset())
    )
    if not allowed:
        raise Forbidden("只有党委工作室或本支部书记可以登记问题")
    fields = {k: v for k, v in data.items() if v not in (None, "")}
    return instances.start(session, "rectification", fields, actor=username, clock=clock)
