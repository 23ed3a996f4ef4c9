"""The task index: what inboxes read, derived from the workflow after every step.

`snapshot` says which human tasks the workflow has open and how they look; `sync` writes only
the rows that differ between the snapshot before a step and the one after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from workflows.engine import extensions
from workflows.engine.models import InstanceRow, TaskRecord
from workflows.engine.prepared import Prepared
from workflows.engine.specs import form_key
from workflows.engine.spiff import all_tasks
from workflows.engine.timers import timer_instant


@dataclass(frozen=True)
class TaskView:
    """One open human task as the index stores it."""

    id: str
    bpmn_id: str
    title: str
    lane: str | None
    form_key: str | None
    due_at: datetime | None
    escalation_level: int
    assignee: str | None = None


def form_filename(task: Task) -> str | None:
    """The JSON Schema file a user task's form is rendered from."""
    return getattr(task.task_spec, "extensions", {}).get("properties", {}).get("formJsonSchemaFilename")


def _assignee(task: Task) -> str | None:
    """Who a task is assigned to: whoever claimed it or had it handed over, else the data field its
    `assignee` property names, else nobody (the lane's role)."""
    claimed = task._get_internal_data("claimed_by")
    if claimed:
        return claimed
    field = getattr(task.task_spec, "extensions", {}).get("properties", {}).get("assignee")
    value = task.data.get(field) if field else None
    return value if isinstance(value, str) and value else None


def _deadline(task: Task) -> tuple[datetime | None, int]:
    """Due time and escalation level from the timers attached to a task.

    A timer the domain gives a meaning (`extensions.timer_meaning`: a ladder level, and whether it is
    the deadline) counts as that level, and the deadline one gives the due time; plain timers count
    one level each and the earliest is the deadline. Attached events are the task's siblings under
    Spiff's boundary split.
    """
    parent = task.parent
    if parent is None or parent.task_spec.__class__.__name__ != "BoundaryEventSplit":
        return None, 0
    process_id = task.workflow.spec.name
    earliest, deadline, fired, level = None, None, 0, 0
    for sibling in parent.children:
        definition = getattr(sibling.task_spec, "event_definition", None)
        if sibling is task or not isinstance(definition, TimerEventDefinition):
            continue
        when = timer_instant(sibling._get_internal_data("event_value"))
        meaning = extensions.timer_meaning(process_id, definition.expression)
        if when is not None and (earliest is None or when < earliest):
            earliest = when
        if meaning is not None and meaning[1]:
            deadline = when
        if sibling.state == TaskState.COMPLETED:
            fired += 1
            level = max(level, meaning[0] if meaning else fired)
    return (deadline or earliest), level


def snapshot(workflow: BpmnWorkflow) -> dict[str, TaskView]:
    """Every READY human task of the workflow, by task id."""
    views = {}
    for task in all_tasks(workflow):
        spec = task.task_spec
        if task.state != TaskState.READY or not spec.manual:
            continue
        due, level = _deadline(task)
        views[str(task.id)] = TaskView(
            id=str(task.id),
            bpmn_id=spec.bpmn_id,
            title=spec.bpmn_name or spec.bpmn_id,
            lane=spec.lane,
            form_key=form_key(form_filename(task)),
            due_at=due,
            escalation_level=level,
            assignee=_assignee(task),
        )
    return views


def _row(view: TaskView) -> dict:
    return {
        "bpmn_id": view.bpmn_id,
        "title": view.title,
        "lane": view.lane,
        "form_key": view.form_key,
        "due_at": view.due_at,
        "escalation_level": view.escalation_level,
        "assignee": view.assignee,
    }


_TASKS = TaskRecord.__table__
_FIELDS = ("bpmn_id", "title", "lane", "form_key", "due_at", "escalation_level", "assignee")


def _upsert(insert_of):
    # On a row that exists everything but its identity and creation time follows the workflow.
    statement = insert_of(_TASKS).values({column.name: bindparam(column.name) for column in _TASKS.c})
    rewritten = ("branch", "subject", "status", "completed_at", "completed_by", *_FIELDS)
    return statement.on_conflict_do_update(
        index_elements=[_TASKS.c.id], set_={name: statement.excluded[name] for name in rewritten}
    )


_UPSERT = {"sqlite": Prepared(_upsert(sqlite.insert)), "postgresql": Prepared(_upsert(postgresql.insert))}


def sync(
    session: Session,
    instance: InstanceRow,
    before: dict[str, TaskView],
    after: dict[str, TaskView],
    *,
    now: datetime,
    completed: dict[str, str] | None = None,
) -> None:
    """Write the index rows that changed in a step; `completed` maps task id → who completed it.

    One prepared upsert for the rows closed, opened and changed (SQLite and PostgreSQL both have
    it): this runs in every step, and each statement costs more to issue than to execute.
    """
    completed = completed or {}
    common = {"instance_id": instance.id, "process_id": instance.process_id, "created_at": now}
    owner = {"branch": instance.branch, "subject": instance.title}
    rows = [
        {
            **common,
            **owner,
            **_row(before[task_id]),
            "id": task_id,
            "status": "completed" if completed.get(task_id) else "cancelled",
            "completed_at": now,
            "completed_by": completed.get(task_id),
        }
        for task_id in before.keys() - after.keys()
    ]
    rows += [
        {
            **common,
            **owner,
            **_row(view),
            "id": task_id,
            "status": "open",
            "completed_at": None,
            "completed_by": None,
        }
        for task_id, view in after.items()
        if before.get(task_id) != view
    ]
    if rows:
        conn = session.connection()
        _UPSERT[conn.dialect.name].run(conn, rows)


def open_rows(session: Session, instance_id: int | None = None) -> list[TaskRecord]:
    """Open task rows, soonest due first (all instances, or one)."""
    query = select(TaskRecord).where(TaskRecord.status == "open")
    if instance_id is not None:
        query = query.where(TaskRecord.instance_id == instance_id)
    return list(
        session.scalars(query.order_by(TaskRecord.due_at.is_(None), TaskRecord.due_at, TaskRecord.created_at))
    )


def view_of(row: TaskRecord) -> TaskView:
    """The index row in the same shape as a snapshot entry, for comparisons."""
    return TaskView(
        row.id, row.bpmn_id, row.title, row.lane, row.form_key, row.due_at, row.escalation_level, row.assignee
    )
