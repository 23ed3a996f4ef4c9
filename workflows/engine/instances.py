"""Starting, loading, advancing and saving workflow instances — one step at a time.

Concurrency contract: every step loads its instance row with SELECT ... FOR UPDATE (on SQLite the
BEGIN IMMEDIATE of `workflows.engine.db` serializes writers instead), re-checks the task's state under
that lock, and writes the workflow state, the task index, the timer index and the audit events in
the caller's transaction. A step that fails leaves the in-memory workflow half-advanced: the caller
rolls back and never saves it. Functions here never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.defaults import StartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from workflows.engine import audit, extensions, forms, metrics, specs, tasks, timers
from workflows.engine.clock import Clock
from workflows.engine.errors import Conflict, EngineError, FormInvalid, InvalidInput, NotFound
from workflows.engine.models import InstanceRow, ProcessInstance, TaskRecord
from workflows.engine.prepared import Prepared
from workflows.engine.spiff import SCRIPT_ENGINE, SERIALIZER, StepContext, stepping


@dataclass
class Loaded:
    """An instance row with its restored workflow, and the index as it stood when loaded."""

    row: InstanceRow
    workflow: BpmnWorkflow
    spec: specs.DeployedSpec
    tasks_before: dict[str, tasks.TaskView]
    timers_before: timers.TimerState
    completed_now: bool = False  # set by `save` when this step finished the workflow
    cancelled: list[tasks.TaskView] = field(default_factory=list)  # open tasks this step withdrew


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


def advance(session: Session, row: InstanceRow, clock: Clock, actor: str, action) -> list:
    """Run engine work for one step; return the work its scripts left for after the save."""
    context = StepContext(session, clock, actor, row, start)
    try:
        with stepping(context):
            action()
    except SpiffWorkflowException as exc:
        raise EngineError(f"流程引擎执行失败：{exc}") from exc
    except Exception as exc:  # a failing script or expression in a diagram
        raise EngineError(f"流程引擎执行失败：{type(exc).__name__}: {exc}") from exc
    return context.after_save


def _run_later(work: list) -> None:
    for item in work:
        item()


def _checked(
    session: Session,
    schema: dict | None,
    data: Any,
    branch: str | None,
    now: datetime,
    current: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Form data that satisfies its schema and the domain's checks (`extensions.check_form`), or FormInvalid.

    A property marked `"x-zhibu-new": true` must differ from the value the task already holds (`current`),
    e.g. a new deadline. Every kind of problem is reported together, so a form comes back with every
    message at once.
    """
    try:
        submitted, errors = forms.validate(schema, data), {}
    except FormInvalid as exc:
        submitted, errors = data, dict(exc.errors)
    if isinstance(submitted, dict):
        for name, message in extensions.check_form(session, schema, submitted, branch, now).items():
            errors.setdefault(name, message)
        for name, prop in ((schema or {}).get("properties") or {}).items():
            same = name in submitted and submitted[name] == (current or {}).get(name)
            if prop.get("x-zhibu-new") and same:
                errors.setdefault(name, f"须与原来的“{submitted[name]}”不同")
    if errors:
        raise FormInvalid(errors)
    return submitted


def start_form(deployed: specs.DeployedSpec) -> str | None:
    """The form file of the process's start event, if it has one."""
    for task_spec in deployed.spec.task_specs.values():
        if isinstance(task_spec, StartEvent):
            return task_spec.extensions.get("properties", {}).get("formJsonSchemaFilename")
    return None


@metrics.timed("start")
def start(
    session: Session, process_id: str, data: dict[str, Any] | None, *, actor: str, clock: Clock
) -> InstanceRow:
    """Start the latest version of a process; start data is checked against the start form."""
    version = specs.latest_version(session, process_id)
    deployed = specs.as_deployed(version)
    schema = deployed.form_schema(start_form(deployed))
    if data is not None and schema is not None:  # even {}: a start form given empty is still checked
        _checked(session, schema, data, data.get("branch") if isinstance(data, dict) else None, clock.now())
    elif data is not None and not isinstance(data, dict):
        raise InvalidInput("启动数据应为 JSON 对象")
    now = clock.now()
    workflow = BpmnWorkflow(deployed.spec, deployed.subprocess_specs, script_engine=SCRIPT_ENGINE)
    start_task = workflow.get_tasks(spec_name="Start")[0]
    start_task.data.update(data or {})
    start_task.data["start_form_submitted"] = bool(data)
    row = InstanceRow(
        id=None,
        process_id=process_id,
        spec_version_id=version.id,
        spec_hash=version.content_hash,
        status="running",
        branch=(data or {}).get("branch"),
        title=(data or {}).get("title"),
        state_json="",
        version=0,
        next_due_at=None,
        started_by=actor,
        created_at=now,
        updated_at=now,
    )
    later = advance(session, row, clock, actor, workflow.do_engine_steps)
    loaded = Loaded(row, workflow, deployed, {}, timers.TimerState({}, {}))
    after = save(session, loaded, now)
    record(
        session,
        loaded,
        "instance.started",
        actor,
        now,
        bpmn_id=process_id,
        data={"process_id": process_id, "version_id": version.id, "data": data or {}},
    )
    _audit_fired_timers(session, loaded, after, now)
    _run_later(later)
    _audit_if_finished(session, loaded, actor, now)
    return row


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
    return Loaded(row, workflow, deployed, tasks.snapshot(workflow), timers.scan(workflow))


def save(
    session: Session, loaded: Loaded, now: datetime, completed: dict[str, str] | None = None
) -> timers.TimerState:
    """Write the workflow state, status, timer index and changed task-index rows; return the timers after.

    The UPDATE only matches the version that was loaded: a row changed by anyone since is a Conflict.
    """
    workflow, row = loaded.workflow, loaded.row
    after_tasks = tasks.snapshot(workflow)
    after_timers = timers.scan(workflow)
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
    gone = loaded.tasks_before.keys() - after_tasks.keys() - (completed or {}).keys()
    loaded.cancelled = [loaded.tasks_before[task_id] for task_id in sorted(gone)]
    projections = extensions.projections(row.process_id)
    if projections:
        open_steps = {view.bpmn_id for view in after_tasks.values()}
        for project in projections:
            project(session, row, workflow, open_steps, now)
    return after_timers


def record(session: Session, loaded: Loaded, action: str, actor: str, now: datetime, **fields: Any) -> None:
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


def _audit_fired_timers(
    session: Session, loaded: Loaded, after: timers.TimerState, now: datetime, actor: str = "system:timer"
) -> int:
    """Audit each timer that fired during this step (in a sweep, or at once when already overdue)."""
    fired = [t for tid, t in after.fired.items() if tid not in loaded.timers_before.fired]
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


def _audit_cancelled(session: Session, loaded: Loaded, actor: str, now: datetime) -> None:
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


def _audit_if_finished(session: Session, loaded: Loaded, actor: str, now: datetime) -> None:
    if loaded.completed_now:
        record(session, loaded, "instance.completed", actor, now, bpmn_id=loaded.row.process_id)


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


@metrics.timed("complete")
def complete_task(
    session: Session, task_id: str, data: dict[str, Any] | None, *, actor: str, clock: Clock, locked=None
) -> CompletedTask:
    """Complete an open human task with form data, run the engine to the next wait, save.

    `locked`: `lock_task`'s row when the caller holds the lock and has read the task's status since (the
    row's task columns may predate the wait for the lock; its instance columns do not)."""
    found = locked if locked is not None else lock_task(session, task_id)
    title = found["task_title"]
    if found["task_status"] != "open":
        raise Conflict(f"任务“{title}”已办结，不能重复提交")
    loaded = restore(session, instance_row(found))
    task = loaded.workflow.get_task_from_id(UUID(task_id))
    # Spiff's run() does not check state: a FUTURE task would be completed silently.
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        raise Conflict(f"任务“{title}”当前不可办理（可能已被他人办理）")
    schema = loaded.spec.form_schema(tasks.form_filename(task))
    now = clock.now()
    submitted = _checked(session, schema, data if data is not None else {}, loaded.row.branch, now, task.data)
    task.data.update(submitted)

    def step():
        task.run()
        loaded.workflow.do_engine_steps()

    later = advance(session, loaded.row, clock, actor, step)
    if loaded.row.branch is None and isinstance(submitted.get("branch"), str):
        loaded.row.branch = submitted["branch"]
    if loaded.row.title is None and isinstance(submitted.get("title"), str):
        loaded.row.title = submitted["title"]
    after = save(session, loaded, now, completed={task_id: actor})
    record(
        session,
        loaded,
        "task.completed",
        actor,
        now,
        task_id=task_id,
        bpmn_id=found["task_bpmn_id"],
        data={"title": title, "data": submitted},
    )
    _audit_cancelled(session, loaded, actor, now)
    _audit_fired_timers(session, loaded, after, now)
    _run_later(later)
    _audit_if_finished(session, loaded, actor, now)
    return CompletedTask(task_id, loaded.row.id, found["task_bpmn_id"], title, actor, now)


@metrics.timed("timer")
def fire_due_timers(
    session: Session, instance_id: int, *, clock: Clock, actor: str = "system:timer"
) -> int | None:
    """Fire the due timers of one instance; None if another sweeper holds it, else how many fired."""
    loaded = load(session, instance_id, skip_locked=True)
    now = clock.now()
    if loaded is None or loaded.row.next_due_at is None or loaded.row.next_due_at > now:
        return None if loaded is None else 0

    def step():
        loaded.workflow.refresh_timers()
        loaded.workflow.do_engine_steps()

    later = advance(session, loaded.row, clock, actor, step)
    fired = _audit_fired_timers(session, loaded, save(session, loaded, now), now, actor)
    _audit_cancelled(session, loaded, actor, now)
    _run_later(later)
    _audit_if_finished(session, loaded, actor, now)
    return fired
