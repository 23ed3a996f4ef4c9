"""Units of work: the only code in workflows/ that commits.

Each public function here owns its transactions, as a request, a scheduler tick or a CLI
command does. A step that fails with an engine error is rolled back whole, and the failure is
then recorded as an audit event in a transaction of its own, so the trail shows every attempt.
The timer sweep runs one transaction per instance: one failing instance never stops the sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from workflows import audit, channels, instances, notify, obligations, timers
from workflows.clock import LOCAL_TZ, Clock
from workflows.db import transaction
from workflows.errors import Conflict, EngineError, InvalidInput
from workflows.models import InstanceRow

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
        lambda s: instances.start(s, process_id, data, actor=actor, clock=clock),
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
        lambda s: instances.complete_task(s, task_id, data, actor=actor, clock=clock),
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
                    lambda s, i=instance_id: instances.fire_due_timers(s, i, clock=clock),
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


def programme_data(year: int, deadlines: list[str] | None = None) -> dict[str, Any]:
    """Start data of a year's programme; the plan's phase deadlines unless others are given."""
    if deadlines is None:
        deadlines = [f"{year}-07-31", f"{year}-08-31", f"{year}-12-31", f"{year + 1}-01-31"]
    if len(deadlines) != 4:
        raise InvalidInput("须给出四个阶段的截止日期（组织发动、对标自查、争创达标、总结验收）")
    return {"year": year, **{f"phase{n}_deadline": day for n, day in enumerate(deadlines, start=1)}}


def start_programme(
    factory: sessionmaker[Session], year: int, deadlines: list[str] | None, *, actor: str, clock: Clock
) -> InstanceRow:
    """Start the company programme of a year; it starts one branch programme per active branch."""
    return start(factory, "programme", programme_data(year, deadlines), actor=actor, clock=clock)


def generate_occurrences(
    factory: sessionmaker[Session], *, clock: Clock, actor: str = "system:scheduler"
) -> int:
    """Start the recurring obligations of the current periods that are missing, one transaction each."""
    with factory() as session:
        todo = obligations.pending(session, clock.now().astimezone(LOCAL_TZ).date())
    created = 0
    for item in todo:

        def step(session: Session, item: obligations.Pending = item) -> None:
            row = instances.start(session, "obligation", item.start_data(), actor=actor, clock=clock)
            obligations.add(session, item, row.id)

        try:
            run_step(factory, step, clock=clock, actor=actor, context={"action": "obligation.start"})
        except IntegrityError:  # another scheduler created it first: the unique key decides
            continue
        except EngineError:  # audited as step.failed; the other occurrences still get created
            continue
        created += 1
    return created


@dataclass
class DeliveryResult:
    """What one delivery run did."""

    sent: int = 0
    failed: int = 0


def deliver(
    factory: sessionmaker[Session],
    *,
    clock: Clock,
    smtp: channels.SmtpSettings | None = None,
    limit: int = 50,
) -> DeliveryResult:
    """Send the due e-mail/webhook deliveries; each is leased, sent outside any transaction, then recorded."""
    result = DeliveryResult()
    with transaction(factory) as session:
        batch = notify.claim(session, clock.now(), limit=limit)
    for item in batch:
        try:
            if item.channel == "email":
                channels.send_email(smtp, item.target, item.title, item.body)
            else:
                channels.send_webhook(item.target, item.title, item.body)
            error = None
        except channels.DeliveryError as exc:
            error = str(exc)
        with transaction(factory) as session:
            notify.finish(session, item.delivery_id, error=error, now=clock.now())
        result.sent += error is None
        result.failed += error is not None
    return result
