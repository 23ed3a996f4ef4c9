"""Units of work: where workflows/ commits (the domain's own units are built on `run_step`).

Each public function here owns its transactions, as a request, a scheduler tick or a CLI
command does. A step that fails with an engine error is rolled back whole, and the failure is
then recorded as an audit event in a transaction of its own, so the trail shows every attempt.
The timer sweep runs one transaction per instance: one failing instance never stops the sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from workflows.engine import audit, instances, messages, steps, timers
from workflows.engine.clock import Clock
from workflows.engine.db import transaction
from workflows.engine.errors import Conflict, EngineError
from workflows.engine.models import InstanceRow

T = TypeVar("T")


def run_step(
    factory: sessionmaker[Session],
    step: Callable[[Session], T],
    *,
    clock: Clock,
    actor: str,
    context: dict[str, Any],
    on_failure: Callable[[Session, EngineError], None] | None = None,
) -> T:
    """Run `step` in one transaction; on an engine failure roll back, audit the failure, re-raise.

    `on_failure` runs in the failure's own transaction, with the audit event (e.g. to back off a timer).
    """
    try:
        with transaction(factory) as session:
            return step(session)
    except StaleDataError as exc:
        raise Conflict("该流程已被他人同时修改，请刷新后重试") from exc
    except EngineError as exc:
        record_failure(factory, clock=clock, actor=actor, context=context, error=exc, on_failure=on_failure)
        raise


def record_failure(
    factory: sessionmaker[Session],
    *,
    clock: Clock,
    actor: str,
    context: dict[str, Any],
    error: EngineError,
    on_failure: Callable[[Session, EngineError], None] | None = None,
) -> None:
    """Write a `step.failed` audit event for a step that was rolled back."""
    with transaction(factory) as session:
        if on_failure is not None:
            on_failure(session, error)
        audit.append(
            session,
            action="step.failed",
            actor=actor,
            occurred_at=clock.now(),
            instance_id=context.get("instance_id"),
            task_id=context.get("task_id"),
            bpmn_id=context.get("bpmn_id"),
            branch=context.get("branch"),
            data={
                **{k: v for k, v in context.items() if k not in ("instance_id", "task_id")},
                "error": str(error),
            },
        )


def start(
    factory: sessionmaker[Session], process_id: str, data: dict[str, Any] | None, *, actor: str, clock: Clock
) -> InstanceRow:
    """Start an instance as one unit of work."""
    return run_step(
        factory,
        lambda s: steps.start(s, process_id, data, actor=actor, clock=clock),
        clock=clock,
        actor=actor,
        context={"action": "instance.start", "process_id": process_id, "data": data or {}},
    )


def complete(
    factory: sessionmaker[Session], task_id: str, data: dict[str, Any] | None, *, actor: str, clock: Clock
) -> instances.CompletedTask:
    """Complete a human task as one unit of work."""
    return run_step(
        factory,
        lambda s: steps.complete_task(s, task_id, data, actor=actor, clock=clock),
        clock=clock,
        actor=actor,
        context={"action": "task.complete", "task_id": task_id, "data": data or {}},
    )


@dataclass
class SweepResult:
    """What one sweep did: timers fired, instances examined, and instances that failed."""

    fired: int = 0
    instances: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def sweep(factory: sessionmaker[Session], *, clock: Clock, batch: int = 500) -> SweepResult:
    """Fire every timer due at `clock.now()`, one transaction per instance, in pages of `batch`."""
    result, now, after = SweepResult(), clock.now(), None
    while True:
        with factory() as session:
            due = timers.due_instance_ids(session, now, after=after, limit=batch)
        for _, instance_id in due:
            result.instances += 1
            try:
                fired = run_step(
                    factory,
                    lambda s, i=instance_id: steps.fire_due_timers(s, i, clock=clock),
                    clock=clock,
                    actor="system:timer",
                    context={"instance_id": instance_id, "action": "timer.fire"},
                    on_failure=lambda s, exc, i=instance_id: timers.note_failure(s, i, now, exc.message),
                )
            except EngineError as exc:
                result.failed[instance_id] = exc.message
                continue
            result.fired += fired or 0
        if len(due) < batch:
            return result
        after = due[-1]


def deliver_messages(factory: sessionmaker[Session], *, clock: Clock, batch: int = 500) -> int:
    """Deliver pending messages whose receivers now wait (those no step could deliver at once), one
    transaction each; return how many were delivered. Several schedulers may run this at once."""
    with factory() as session:
        todo = messages.deliverable(session, limit=batch)
    delivered = 0
    for message_id, receiver_id in todo:
        try:
            done = run_step(
                factory,
                lambda s, m=message_id, r=receiver_id: steps.deliver_message(s, m, r, clock=clock),
                clock=clock,
                actor=steps.MESSAGE_ACTOR,
                context={"instance_id": receiver_id, "action": "message.deliver", "message_id": message_id},
                on_failure=lambda s, exc, m=message_id: messages.note_failure(s, m, exc.message),
            )
        except EngineError:
            continue
        delivered += int(done)
    return delivered
