"""The steps of the engine on one instance: start it, complete a human task, fire due timers, deliver a
message; each runs the engine to the next wait, saves, audits, and exchanges messages.

Concurrency contract: each step holds its instance row locked (see `instances`), re-checks the task's
state under that lock, and writes everything of the step in the caller's transaction: the state and
indexes (`instances.save`), the messages it threw and the audit events. A message goes to a waiting
receiver in that same transaction when the receiver's row can be locked at once (SKIP LOCKED: a step
never waits for another's lock, so steps never deadlock); otherwise it stays pending and the receiver's
next step, or `deliver_message` from the scheduler, delivers it (see `messages`). A step that fails
leaves the in-memory workflow half-advanced: the caller rolls back and never saves it. Functions here
never commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.defaults import StartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from workflows.engine import audit, extensions, forms, messages, metrics, specs, step_events, tasks, timers
from workflows.engine.clock import Clock
from workflows.engine.errors import Conflict, EngineError, FormInvalid, InvalidInput
from workflows.engine.instances import CompletedTask, Loaded, instance_row, load, lock_task, restore, save
from workflows.engine.models import InstanceRow
from workflows.engine.spiff import SCRIPT_ENGINE, StepContext, stepping


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
        branch = data.get("branch") if isinstance(data, dict) else None
        # the branch names whose people a person field may name; a malformed one is the schema's to refuse
        _checked(session, schema, data, branch if isinstance(branch, str) else None, clock.now())
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
    step_events.record(
        session,
        loaded,
        "instance.started",
        actor,
        now,
        bpmn_id=process_id,
        data={"process_id": process_id, "version_id": version.id, "data": data or {}},
    )
    step_events.fired_timers(session, loaded, after, now)
    _run_later(later)
    step_events.finished(session, loaded, actor, now)
    exchange(session, loaded, clock, now)
    return row


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
    step_events.record(
        session,
        loaded,
        "task.completed",
        actor,
        now,
        task_id=task_id,
        bpmn_id=found["task_bpmn_id"],
        data={"title": title, "data": submitted},
    )
    step_events.cancelled(session, loaded, actor, now)
    step_events.fired_timers(session, loaded, after, now)
    _run_later(later)
    step_events.finished(session, loaded, actor, now)
    exchange(session, loaded, clock, now)
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
    fired = step_events.fired_timers(session, loaded, save(session, loaded, now), now, actor, sweep=True)
    step_events.cancelled(session, loaded, actor, now)
    _run_later(later)
    step_events.finished(session, loaded, actor, now)
    exchange(session, loaded, clock, now)
    return fired


MESSAGE_ACTOR = "system:message"
MAX_DELIVERIES = 200  # per unit of work: a ping-pong between diagrams ends here, the rest stays pending


def _busy(session: Session) -> set[int]:
    """Instances stepping in this transaction right now: their stored state is not their current one."""
    return session.info.setdefault("zhibu_stepping", set())


def exchange(
    session: Session, loaded: Loaded, clock: Clock, now: datetime, budget: list[int] | None = None
) -> None:
    """After a step's save: store and route the messages it threw, and take pending ones it now waits for."""
    if not loaded.outgoing and not loaded.saved[2]:
        return  # the hot path: an instance that neither sends nor waits costs no statement here
    budget = [MAX_DELIVERIES] if budget is None else budget
    busy = _busy(session)
    busy.add(loaded.row.id)
    try:
        while True:
            outgoing, loaded.outgoing = loaded.outgoing, []
            for event in outgoing:
                message = messages.store(session, loaded.row.id, event, now)
                step_events.record(
                    session,
                    loaded,
                    "message.sent",
                    MESSAGE_ACTOR,
                    now,
                    data={"message_id": message["id"], "name": message["name"], **_shown(message)},
                )
                if budget[0] > 0:
                    _route(session, message, clock, now, budget)
            waits = list(loaded.saved[2].values())
            took = False
            if waits and budget[0] > 0:
                for message in messages.pending_for(session, waits):
                    loaded.rebase()
                    try:
                        with session.begin_nested():
                            received = _receive(session, loaded, message, clock, now)
                    except EngineError as exc:  # its own step stands; the message waits for the scheduler
                        _failed(session, loaded.row.id, message, exc, now)
                        return  # the in-memory workflow is half-advanced: nothing more of it
                    if received:
                        budget[0] -= 1
                        took = True
                        break  # what it waits for may have changed: look again
            if not took and not loaded.outgoing:
                return
    finally:
        busy.discard(loaded.row.id)


def _shown(message: dict[str, Any]) -> dict[str, Any]:
    return {"correlations": json.loads(message["correlations"]), "payload": json.loads(message["payload"])}


def _route(session: Session, message: dict[str, Any], clock: Clock, now: datetime, budget: list[int]) -> bool:
    """Deliver a just-stored message to an instance waiting for it, if one can be locked now."""
    busy = _busy(session)
    for receiver_id in messages.receivers(
        session, message["name"], message["correlation_hash"], message["sender_instance_id"]
    ):
        if receiver_id in busy:
            continue  # mid-step here: it takes its pending messages after its own save
        try:
            # A receiver that fails never undoes the sender's step: its part rolls back to here.
            with session.begin_nested():
                target = load(session, receiver_id, skip_locked=True)
                if target is None:
                    continue  # another step holds it: that step or the scheduler delivers later
                if not _receive(session, target, message, clock, now):
                    continue
                budget[0] -= 1
                exchange(session, target, clock, now, budget)
                return True
        except EngineError as exc:
            _failed(session, receiver_id, message, exc, now)
            return False  # pending: the scheduler retries it (and counts the attempts)
    return False


def _failed(session: Session, receiver_id: int, message: dict[str, Any], error: EngineError, now) -> None:
    """Audit a delivery whose receiver failed (rolled back to before it); the message stays pending."""
    audit.append(
        session,
        action="step.failed",
        actor=MESSAGE_ACTOR,
        occurred_at=now,
        instance_id=receiver_id,
        data={"action": "message.deliver", "message_id": message["id"], "error": error.message},
    )


def _receive(session: Session, target: Loaded, message: dict[str, Any], clock: Clock, now: datetime) -> bool:
    """Hand one locked, pending message to a locked instance that waits for it; False if it does not."""
    event = messages.event_for(target.workflow, message)
    if event is None:
        return False

    def step():
        target.workflow.send_event(event)
        target.workflow.do_engine_steps()

    later = advance(session, target.row, clock, MESSAGE_ACTOR, step)
    after = save(session, target, now)
    messages.mark_delivered(session, message["id"], target.row.id, now)
    sender = message["sender_instance_id"]
    step_events.record(
        session,
        target,
        "message.received",
        MESSAGE_ACTOR,
        now,
        data={
            "message_id": message["id"],
            "name": message["name"],
            "from_instance": sender,
            **_shown(message),
        },
    )
    if sender is not None and sender != target.row.id:
        audit.append(
            session,
            action="message.delivered",
            actor=MESSAGE_ACTOR,
            occurred_at=now,
            instance_id=sender,
            branch=messages.branch_of(session, sender),
            data={"message_id": message["id"], "name": message["name"], "to_instance": target.row.id},
        )
    step_events.cancelled(session, target, MESSAGE_ACTOR, now)
    step_events.fired_timers(session, target, after, now, MESSAGE_ACTOR)
    _run_later(later)
    step_events.finished(session, target, MESSAGE_ACTOR, now)
    return True


@metrics.timed("message")
def deliver_message(session: Session, message_id: int, receiver_id: int, *, clock: Clock) -> bool:
    """Deliver one pending message to an instance waiting for it (the scheduler's catch-up).

    False when someone else holds the message or the instance, the message is gone, or the instance
    no longer waits for it: nothing is written then."""
    message = messages.take(session, message_id)
    if message is None or receiver_id in _busy(session):
        return False
    target = load(session, receiver_id, skip_locked=True)
    if target is None:
        return False
    now = clock.now()
    if not _receive(session, target, message, clock, now):
        return False
    exchange(session, target, clock, now)
    return True
