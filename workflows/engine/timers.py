"""The timer index: each instance's earliest waiting timer, stored as `next_due_at`.

A timer is every one SpiffWorkflow itself refreshes (`BpmnWorkflow.refresh_timers`): a waiting catch
event whose definition is a timer, or a `MultipleEventDefinition` holding one (an event-based gateway
waiting for "a message or the deadline", a boundary or catch event with several definitions), in the
workflow or any of its subprocesses.

The sweep asks the database only for instances whose `next_due_at` has passed (an indexed range
query), so its cost grows with the number of due timers, never with the number of open instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Select, literal, select, tuple_
from sqlalchemy.orm import Session

from workflows.engine.models import ProcessInstance
from workflows.engine.spiff import all_tasks


def timer_instant(value) -> datetime | None:
    """The instant a Spiff timer value names (ISO text, or a cycle's `next`), else None."""
    if isinstance(value, dict):
        value = value.get("next")
    if not isinstance(value, str):
        return None
    return _parsed(value)


@lru_cache(maxsize=4096)  # each step re-reads every timer of its instance; a datetime is immutable
def _parsed(text: str) -> datetime:
    return TimerEventDefinition.get_datetime(text)


@dataclass(frozen=True)
class WaitingTimer:
    """A timer event that has not fired yet."""

    task_id: str
    bpmn_id: str
    name: str
    due_at: datetime | None
    certain: bool = True  # False: a completed multiple event that may have ended by another definition


@dataclass(frozen=True)
class TimerState:
    """The workflow's timers: those still waiting, and every one that has fired."""

    waiting: dict[str, WaitingTimer]
    fired: dict[str, WaitingTimer]


def timer_definitions(definition) -> list[TimerEventDefinition]:
    """The timer definitions an event definition holds (itself, or those inside a multiple one)."""
    if isinstance(definition, TimerEventDefinition):
        return [definition]
    if isinstance(definition, MultipleEventDefinition):
        return [d for d in definition.event_definitions if isinstance(d, TimerEventDefinition)]
    return []


def _timer_won(task) -> bool | None:
    """Whether a completed event holding a timer completed because of it (None: it cannot tell).

    An event-based gateway keeps only the branch of the event that came first, and its outputs are in
    the order of its event definitions. Other multiple events forget which definition fired (Spiff
    resets them when they run): only the step that completed them knows (a timer sweep, or not).
    """
    spec = task.task_spec
    if isinstance(spec.event_definition, TimerEventDefinition):
        return True
    if not isinstance(spec, EventBasedGateway):
        return None
    definitions = spec.event_definition.event_definitions
    for child in task.children:
        if child.task_spec in spec.outputs:
            index = spec.outputs.index(child.task_spec)
            if index < len(definitions) and isinstance(definitions[index], TimerEventDefinition):
                return True
    return False


def _timer(task, certain: bool = True) -> WaitingTimer:
    spec = task.task_spec
    definitions = timer_definitions(spec.event_definition)
    return WaitingTimer(
        task_id=str(task.id),
        bpmn_id=spec.bpmn_id,
        name=spec.bpmn_name or definitions[0].name or spec.bpmn_id,
        due_at=timer_instant(task._get_internal_data("event_value")),
        certain=certain,
    )


def scan(workflow: BpmnWorkflow) -> TimerState:
    """Every timer of the workflow that is waiting (as Spiff would refresh it) or has fired, by task id."""
    waiting = {}
    for task in workflow.event_manager.tasks.values():
        if task.state == TaskState.WAITING and timer_definitions(task.task_spec.event_definition):
            waiting[str(task.id)] = _timer(task)
    fired = {}
    for task in all_tasks(workflow):
        if task.state != TaskState.COMPLETED:
            continue
        definition = getattr(task.task_spec, "event_definition", None)
        if timer_definitions(definition):
            won = _timer_won(task)
            if won is not False:
                fired[str(task.id)] = _timer(task, certain=won is True)
    return TimerState(waiting, fired)


def next_due_at(state: TimerState) -> datetime | None:
    """The earliest due time among waiting timers."""
    due = [t.due_at for t in state.waiting.values() if t.due_at is not None]
    return min(due) if due else None


def due_query(now: datetime, *, after: tuple[datetime, int] | None = None, limit: int = 500) -> Select:
    """Instances with a timer due at `now`, in (next_due_at, id) order, after the key `after`.

    Keyset paging on the (next_due_at, id) index: a range scan that touches only due rows.
    """
    query = select(ProcessInstance.next_due_at, ProcessInstance.id).where(ProcessInstance.next_due_at <= now)
    if after is not None:
        key = tuple_(
            literal(after[0], ProcessInstance.next_due_at.type), literal(after[1], ProcessInstance.id.type)
        )
        query = query.where(tuple_(ProcessInstance.next_due_at, ProcessInstance.id) > key)
    return query.order_by(ProcessInstance.next_due_at, ProcessInstance.id).limit(limit)


def due_instance_ids(
    session: Session, now: datetime, *, after: tuple[datetime, int] | None = None, limit: int = 500
) -> list[tuple[datetime, int]]:
    """Run `due_query`: the (next_due_at, id) keys of due instances."""
    rows = session.execute(due_query(now, after=after, limit=limit))
    return [(due, instance_id) for due, instance_id in rows]


MAX_FAILURES = 5


def failure_backoff(failures: int) -> timedelta:
    """Wait before firing a failing instance's timers again: 1, 4, 16, 64 minutes …"""
    return timedelta(minutes=4 ** max(0, failures - 1))


def note_failure(session: Session, instance_id: int, now: datetime, error: str) -> bool:
    """Count a failed firing; retry later with backoff, or park the instance. True when parked."""
    row = session.get(ProcessInstance, instance_id)
    if row is None:
        return False
    row.timer_failures = (row.timer_failures or 0) + 1
    row.timer_error = error
    parked = row.timer_failures >= MAX_FAILURES
    row.next_due_at = None if parked else now + failure_backoff(row.timer_failures)
    session.flush()
    return parked


def parked(session: Session) -> list[ProcessInstance]:
    """Instances whose timers were given up on, for the office to look at."""
    query = select(ProcessInstance).where(ProcessInstance.timer_failures >= MAX_FAILURES)
    return list(session.scalars(query.order_by(ProcessInstance.id)))
