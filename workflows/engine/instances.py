"""Loading, restoring and saving workflow instances: what every step does first and last (see `steps`).

Concurrency contract: `load` and `lock_task` take the instance row with SELECT ... FOR UPDATE (on SQLite
the BEGIN IMMEDIATE of `workflows.engine.db` serializes writers instead), optionally SKIP LOCKED; `save`
writes the workflow state, the task index, the timer index and the message index in the caller's
transaction, and only over the version that was loaded (else Conflict). Functions here never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from workflows.engine import extensions, messages, specs, tasks, timers
from workflows.engine.errors import Conflict, NotFound
from workflows.engine.models import InstanceRow, ProcessInstance, TaskRecord
from workflows.engine.prepared import Prepared
from workflows.engine.spiff import SCRIPT_ENGINE, SERIALIZER
from workflows.engine.step_events import record  # noqa: F401 - re-exported: callers audit through instances


@dataclass
class Loaded:
    """An instance row with its restored workflow, and the index as it stood when loaded."""

    row: InstanceRow
    workflow: BpmnWorkflow
    spec: specs.DeployedSpec
    tasks_before: dict[str, tasks.TaskView]
    timers_before: timers.TimerState
    waits_before: dict[tuple[str, str], messages.Wait] = field(default_factory=dict)
    completed_now: bool = False  # set by `save` when this step finished the workflow
    cancelled: list[tasks.TaskView] = field(default_factory=list)  # open tasks this step withdrew
    outgoing: list = field(default_factory=list)  # messages thrown, stored and routed by `exchange`
    saved: tuple | None = None  # (tasks, timers, waits) as `save` wrote them

    def rebase(self) -> None:
        """Make the state `save` wrote the baseline of a further step on the same locked row."""
        if self.saved is not None:
            self.tasks_before, self.timers_before, self.waits_before = self.saved
            self.cancelled, self.completed_now = [], False


# The step path reads and writes the instance row with prepared Core statements (workflows/prepared.py):
# it runs on every human step and timer, and the ORM's identity map and flush add nothing the version
# check doesn't.
_INSTANCES = ProcessInstance.__table__
_TASKS = TaskRecord.__table__
_ROW = tuple(_INSTANCES.c)
_SELECT = select(*_ROW).where(_INSTANCES.c.id == bindparam("id"))
_LOCK = Prepared(_SELECT.with_for_update())
_LOCK_OR_SKIP = Prepared(_SELECT.with_for_update(skip_locked=True))
LOCK_BY_TASK = Prepared(
    select(
        _TASKS.c.status.label("task_status"),
        _TASKS.c.title.label("task_title"),
        _TASKS.c.bpmn_id.label("task_bpmn_id"),
        *_ROW,
    )
    .join_from(_TASKS, _INSTANCES, _TASKS.c.instance_id == _INSTANCES.c.id)
    .where(_TASKS.c.id == bindparam("task_id"))
    .with_for_update(of=_INSTANCES)
)
_INSERT = insert(_INSTANCES)
_WRITABLE = (
    "status",
    "branch",
    "title",
    "state_json",
    "next_due_at",
    "updated_at",
    "completed_at",
    "timer_failures",
    "timer_error",
)
_UPDATE = Prepared(
    update(_INSTANCES)
    .where(_INSTANCES.c.id == bindparam("row_id"), _INSTANCES.c.version == bindparam("expected"))
    .values({**{name: bindparam(name) for name in _WRITABLE}, "version": _INSTANCES.c.version + 1})
)


def instance_row(mapping) -> InstanceRow:
    return InstanceRow(**{column.name: mapping[column.name] for column in _ROW})


def load(session: Session, instance_id: int, *, skip_locked: bool = False) -> Loaded | None:
    """Lock and restore an instance; None if `skip_locked` and another step holds it."""
    found = (_LOCK_OR_SKIP if skip_locked else _LOCK).first(session.connection(), {"id": instance_id})
    if found is None:
        if skip_locked:
            return None
        raise NotFound(f"流程实例 {instance_id} 不存在")
    return restore(session, instance_row(found))


def restore(session: Session, row: InstanceRow | ProcessInstance) -> Loaded:
    """Rebuild the workflow of an instance row from its stored state and its version's spec."""
    deployed = specs.deployed(session, row.spec_version_id, row.process_id, row.spec_hash)
    dct = json.loads(row.state_json)
    dct["spec"] = deployed.spec
    dct["subprocess_specs"] = deployed.subprocess_specs
    workflow = SERIALIZER.from_dict(dct)
    workflow.script_engine = SCRIPT_ENGINE  # not serialized; must be set after every restore
    loaded = Loaded(row, workflow, deployed, tasks.snapshot(workflow), timers.scan(workflow))
    loaded.waits_before = messages.scan(workflow)
    return loaded


def save(
    session: Session, loaded: Loaded, now: datetime, completed: dict[str, str] | None = None
) -> timers.TimerState:
    """Write the workflow state, status, timer index and changed task-index rows; return the timers after.

    The UPDATE only matches the version that was loaded: a row changed by anyone since is a Conflict.
    """
    workflow, row = loaded.workflow, loaded.row
    loaded.outgoing.extend(messages.drain(workflow))  # drained before the state is written: never twice
    after_tasks = tasks.snapshot(workflow)
    after_timers = timers.scan(workflow)
    after_waits = messages.scan(workflow)
    row.state_json = json.dumps(SERIALIZER.to_dict(workflow), ensure_ascii=False, separators=(",", ":"))
    row.updated_at = now
    # An open human task or a waiting timer already says "not finished"; Spiff's check walks every task.
    if row.status == "running" and not after_tasks and not after_timers.waiting and workflow.is_completed():
        row.status, row.completed_at, loaded.completed_now = "completed", now, True
    row.next_due_at = None if row.status == "completed" else timers.next_due_at(after_timers)
    row.timer_failures, row.timer_error = 0, None  # a step that saves has run the engine fine
    conn = session.connection()
    if row.id is None:
        row.version = 1
        values = {name: getattr(row, name) for name in (c.name for c in _ROW) if name != "id"}
        row.id = conn.execute(_INSERT, values).inserted_primary_key[0]
    else:
        values = {name: getattr(row, name) for name in _WRITABLE}
        if _UPDATE.run(conn, {**values, "row_id": row.id, "expected": row.version}) != 1:
            raise Conflict("该流程已被他人同时修改，请刷新后重试")
        row.version += 1
    tasks.sync(session, row, loaded.tasks_before, after_tasks, now=now, completed=completed)
    messages.sync_waits(session, row.id, loaded.waits_before, after_waits, now)
    loaded.saved = (after_tasks, after_timers, after_waits)
    gone = loaded.tasks_before.keys() - after_tasks.keys() - (completed or {}).keys()
    loaded.cancelled = [loaded.tasks_before[task_id] for task_id in sorted(gone)]
    projections = extensions.projections(row.process_id)
    if projections:
        open_steps = {view.bpmn_id for view in after_tasks.values()}
        for project in projections:
            project(session, row, workflow, open_steps, now)
    return after_timers


def task_record(session: Session, task_id: str) -> TaskRecord:
    """The index row of a task, or NotFound."""
    row = session.get(TaskRecord, task_id) if _is_uuid(task_id) else None
    if row is None:
        raise NotFound(f"任务 {task_id} 不存在")
    return row


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


@dataclass(frozen=True)
class CompletedTask:
    """What a completion reports back: which task, of which instance, by whom and when."""

    id: str
    instance_id: int
    bpmn_id: str
    title: str
    completed_by: str
    completed_at: datetime


def lock_task(session: Session, task_id: str):
    """Lock the instance of a task (waiting for any step on it) and return the task's row, or NotFound."""
    found = LOCK_BY_TASK.first(session.connection(), {"task_id": task_id}) if _is_uuid(task_id) else None
    if found is None:
        raise NotFound(f"任务 {task_id} 不存在")
    return found
