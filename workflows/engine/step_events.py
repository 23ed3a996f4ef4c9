"""The audit events a step writes about its own instance: what it did, which timers fired, which open
tasks it withdrew, whether it finished the workflow. They run in the step's transaction, after the save.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from workflows.engine import audit, timers


def record(session: Session, loaded, action: str, actor: str, now: datetime, **fields: Any) -> None:
    """Append an audit event about this instance (its id and branch filled in)."""
    audit.append(
        session,
        action=action,
        actor=actor,
        occurred_at=now,
        instance_id=loaded.row.id,
        branch=loaded.row.branch,
        **fields,
    )


def fired_timers(
    session: Session,
    loaded,
    after: timers.TimerState,
    now: datetime,
    actor: str = "system:timer",
    *,
    sweep: bool = False,
) -> int:
    """Audit each timer that fired during this step (in a sweep, or at once when already overdue).

    A multiple event that does not say which of its definitions ended it counts as its timer only in a
    timer sweep (`sweep`), and only if its timer was due."""
    fired = [
        t
        for tid, t in after.fired.items()
        if tid not in loaded.timers_before.fired
        and (t.certain or (sweep and t.due_at is not None and t.due_at <= now))
    ]
    for timer in fired:
        record(
            session,
            loaded,
            "timer.fired",
            actor,
            now,
            task_id=timer.task_id,
            bpmn_id=timer.bpmn_id,
            data={"timer": timer.name, "due_at": timer.due_at.isoformat() if timer.due_at else None},
        )
    return len(fired)


def cancelled(session: Session, loaded, actor: str, now: datetime) -> None:
    """Audit each open task the step withdrew (an interrupting event, a terminate end)."""
    for view in loaded.cancelled:
        record(
            session,
            loaded,
            "task.cancelled",
            actor,
            now,
            task_id=view.id,
            bpmn_id=view.bpmn_id,
            data={"title": view.title},
        )


def finished(session: Session, loaded, actor: str, now: datetime) -> None:
    if loaded.completed_now:
        record(session, loaded, "instance.completed", actor, now, bpmn_id=loaded.row.process_id)
