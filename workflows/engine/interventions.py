"""Changes to a running instance that are not a form submission: who holds a task, timers put back
into the sweep, and timers recomputed after the working-day calendar changed.

Each is one step like any other (instance row locked, state saved with the task index, an audit
event written) in the caller's transaction; functions never commit.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimeDateEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from workflows.engine import instances, steps, tasks
from workflows.engine.clock import Clock
from workflows.engine.errors import Conflict, NotFound
from workflows.engine.models import InstanceRow
from workflows.engine.spiff import SCRIPT_ENGINE, all_tasks


def set_claim(
    session: Session, task_id: str, username: str | None, *, actor: str, clock: Clock, action: str
) -> InstanceRow:
    """Give an open task to a person (claim, hand over) or back to its lane's role (None)."""
    found = instances.LOCK_BY_TASK.first(session.connection(), {"task_id": task_id})
    if found is None:
        raise NotFound(f"任务 {task_id} 不存在")
    loaded = instances.restore(session, instances.instance_row(found))
    task = loaded.workflow.get_task_from_id(UUID(task_id))
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        raise Conflict(f"任务“{found['task_title']}”已办结，不能再分派")
    before = tasks.snapshot(loaded.workflow)[task_id].assignee
    if username is None:
        task.internal_data.pop("claimed_by", None)
    else:
        task._set_internal_data(claimed_by=username)
    now = clock.now()
    instances.save(session, loaded, now)
    instances.record(
        session,
        loaded,
        action,
        actor,
        now,
        task_id=task_id,
        bpmn_id=found["task_bpmn_id"],
        data={"title": found["task_title"], "from": before, "to": username},
    )
    return loaded.row


def retry_timers(session: Session, instance_id: int, *, actor: str, clock: Clock) -> InstanceRow:
    """Put an instance whose timers kept failing back into the sweep (after the office fixed the cause)."""
    loaded = instances.load(session, instance_id)
    now = clock.now()
    failures, error = loaded.row.timer_failures, loaded.row.timer_error
    instances.save(session, loaded, now)
    instances.record(session, loaded, "timer.retry", actor, now, data={"failures": failures, "error": error})
    return loaded.row


def recompute_timers(session: Session, instance_id: int, *, actor: str, clock: Clock) -> list[dict[str, Any]]:
    """Re-evaluate the waiting date timers of an instance (after the working-day calendar changed).

    Returns the timers whose instant moved; the instance is saved (and audited) only if one did.
    """
    loaded = instances.load(session, instance_id)
    moved = []

    def step():
        for task in all_tasks(loaded.workflow):
            definition = getattr(task.task_spec, "event_definition", None)
            if task.state != TaskState.WAITING or not isinstance(definition, TimeDateEventDefinition):
                continue
            old = task._get_internal_data("event_value")
            new = SCRIPT_ENGINE.evaluate(task, definition.expression)
            if old is not None and new != old:
                task._set_internal_data(event_value=new)
                moved.append({"timer": task.task_spec.bpmn_id, "from": old, "to": new})

    steps.advance(session, loaded.row, clock, actor, step)
    if moved:
        now = clock.now()
        instances.save(session, loaded, now)
        instances.record(session, loaded, "timer.recomputed", actor, now, data={"timers": moved})
    return moved
