"""Message routing between instances: a BPMN message thrown by one instance reaches the one waiting for it.

The routing key is the message's name and its correlations (e.g. year and branch), as Camunda and
spiff-arena correlate them. A sender's correlations come from the message's correlation properties
evaluated on its payload; a receiver's from `spiffworkflow:processVariableCorrelation` evaluated on
the waiting task's data. Both are reduced to one canonical JSON text and its SHA-256, so matching is
an indexed equality on (name, hash) in two tables:
- `messages`: every message thrown to another instance, `pending` until delivered, then `delivered`
  with its receiver. A message nobody waits for yet stays pending (the early-arrival buffer).
- `message_waits`: what each instance waits for now, rebuilt in every step with the instance's state.

Concurrency contract: functions here take the caller's session and never commit. A message row is
delivered only while locked (`take` / `pending_for` use SELECT ... FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite serializes writers) and only if still `pending`, in the same transaction as the
receiver's step (its instance row locked too), so each message is delivered exactly once however many
steps or schedulers race for it. Nobody waits on a lock held by another step: what cannot be locked
now stays pending for the next step of the receiver or the next `deliver_pending` sweep.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from workflows.engine.errors import EngineError
from workflows.engine.models import Message, MessageWait, ProcessInstance

_MESSAGES = Message.__table__
_WAITS = MessageWait.__table__


@dataclass(frozen=True)
class Wait:
    """One message a waiting task can take: its name and the correlations it expects."""

    task_id: str
    name: str
    correlations: str  # canonical JSON
    digest: str


def canonical(correlations: dict[str, Any]) -> tuple[str, str]:
    """The canonical JSON text of correlations and its SHA-256 (the routing key beside the name)."""
    try:
        text = json.dumps(correlations, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise EngineError(f"消息关联值必须是 JSON 数据：{exc}") from exc
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def _message_definitions(definition) -> list[MessageEventDefinition]:
    if isinstance(definition, MessageEventDefinition):
        return [definition]
    if isinstance(definition, MultipleEventDefinition):  # event-based gateways, multiple catch events
        return [d for d in definition.event_definitions if isinstance(d, MessageEventDefinition)]
    return []


def _expected(task, definition: MessageEventDefinition) -> dict[str, Any]:
    props = getattr(definition, "process_correlations", None) or []
    if not props:  # plain BPMN: what the workflow has correlated so far, for the keys this message uses
        keys = {key for prop in definition.correlation_properties for key in prop.correlation_keys}
        return {key: value for key, value in task.workflow.correlations.items() if key in keys}
    try:
        return definition.calculate_correlations(task.workflow.script_engine, props, task.data)
    except Exception as exc:  # a diagram's correlation expression that does not evaluate
        raise EngineError(f"消息“{definition.name}”的关联表达式无法求值：{exc}") from exc


def _trigger_id(spec_name: str) -> str:
    """The wait key of an event subprocess's message start (it has no task until the message comes)."""
    return f"start:{spec_name}"[:36]


def _triggers(workflow: BpmnWorkflow):
    """(key, definition) of the message start events of the workflow's event subprocesses."""
    start = workflow.spec.start
    for name in getattr(start, "trigger_specs", ()):
        spec = workflow.subprocess_specs.get(name)
        for start_event in getattr(spec, "bpmn_start_events", ()):
            if isinstance(start_event.event_definition, MessageEventDefinition):
                yield _trigger_id(name), start_event.event_definition


def scan(workflow: BpmnWorkflow) -> dict[tuple[str, str], Wait]:
    """Every message the workflow can take now, by (task, name): its waiting catch events and event
    gateways, and while it runs, the message starts of its event subprocesses (whose correlations are
    evaluated on the start data: a process takes such messages about what it was started for)."""
    waits = {}
    for task in workflow.event_manager.tasks.values():
        if task.state != TaskState.WAITING:
            continue
        for definition in _message_definitions(task.task_spec.event_definition):
            text, digest = canonical(_expected(task, definition))
            waits[(str(task.id), definition.name)] = Wait(str(task.id), definition.name, text, digest)
    if not workflow.completed:
        start_task = None
        for key, definition in _triggers(workflow):
            start_task = start_task or workflow.get_tasks(spec_name="Start")[0]
            text, digest = canonical(_expected(start_task, definition))
            waits[(key, definition.name)] = Wait(key, definition.name, text, digest)
    return waits


def drain(workflow: BpmnWorkflow) -> list[BpmnEvent]:
    """Take the message events the workflow threw and could not catch itself (others stay as they were)."""
    events = workflow.get_events()
    thrown = [e for e in events if isinstance(e.event_definition, MessageEventDefinition)]
    workflow.bpmn_events.extend(
        e for e in events if not isinstance(e.event_definition, MessageEventDefinition)
    )
    return thrown


def sync_waits(
    session: Session,
    instance_id: int,
    before: dict[tuple[str, str], Wait],
    after: dict[tuple[str, str], Wait],
    now: datetime,
) -> None:
    """Write the rows of the message index that changed in a step (nothing when nothing did)."""
    gone = [key for key in before if key not in after or before[key] != after[key]]
    new = [after[key] for key in after if key not in before or before[key] != after[key]]
    conn = session.connection()
    for task_id, name in gone:
        conn.execute(
            delete(_WAITS).where(
                _WAITS.c.instance_id == instance_id, _WAITS.c.task_id == task_id, _WAITS.c.name == name
            )
        )
    if new:
        conn.execute(
            insert(_WAITS),
            [
                {
                    "instance_id": instance_id,
                    "task_id": w.task_id,
                    "name": w.name,
                    "correlation_hash": w.digest,
                    "correlations": w.correlations,
                    "since": now,
                }
                for w in new
            ],
        )


def store(session: Session, sender_id: int, event: BpmnEvent, now: datetime) -> dict[str, Any]:
    """Keep a thrown message as pending; return its row as a dict."""
    correlations, digest = canonical(event.correlations or {})
    try:
        payload = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise EngineError(f"消息“{event.event_definition.name}”的内容必须是 JSON 数据：{exc}") from exc
    values = {
        "name": event.event_definition.name,
        "correlation_hash": digest,
        "correlations": correlations,
        "payload": payload,
        "sender_instance_id": sender_id,
        "status": "pending",
        "created_at": now,
    }
    values["id"] = session.connection().execute(insert(_MESSAGES), values).inserted_primary_key[0]
    return values


def receivers(session: Session, name: str, digest: str, exclude: int | None) -> list[int]:
    """Instances waiting for this message, longest waiting first."""
    query = (
        select(_WAITS.c.instance_id)
        .where(_WAITS.c.name == name, _WAITS.c.correlation_hash == digest)
        .order_by(_WAITS.c.since, _WAITS.c.instance_id)
    )
    found = []
    for (instance_id,) in session.connection().execute(query):
        if instance_id != exclude and instance_id not in found:
            found.append(instance_id)
    return found


def _lockable(query):
    return query.with_for_update(skip_locked=True)


def pending_for(session: Session, waits: list[Wait]) -> list[dict[str, Any]]:
    """Pending messages these waits can take, oldest first, locked (those locked elsewhere are left)."""
    if not waits:
        return []
    keys = {(w.name, w.digest) for w in waits}
    match = or_(*(and_(_MESSAGES.c.name == n, _MESSAGES.c.correlation_hash == d) for n, d in keys))
    query = _lockable(
        select(_MESSAGES).where(_MESSAGES.c.status == "pending", match).order_by(_MESSAGES.c.id)
    )
    return [dict(row._mapping) for row in session.connection().execute(query)]


def take(session: Session, message_id: int) -> dict[str, Any] | None:
    """Lock one message if it is still pending and nobody else holds it."""
    query = _lockable(select(_MESSAGES).where(_MESSAGES.c.id == message_id, _MESSAGES.c.status == "pending"))
    row = session.connection().execute(query).first()
    return None if row is None else dict(row._mapping)


def event_for(workflow: BpmnWorkflow, message: dict[str, Any]) -> BpmnEvent | None:
    """The event to hand the workflow for a message, if one of its waiting tasks takes it now."""
    for wait in scan(workflow).values():
        if wait.name != message["name"] or wait.digest != message["correlation_hash"]:
            continue
        if wait.task_id.startswith("start:"):
            found = _triggers(workflow)
            definition = next(d for key, d in found if key == wait.task_id and d.name == wait.name)
        else:
            task = workflow.get_task_from_id(UUID(wait.task_id))
            definition = next(
                d for d in _message_definitions(task.task_spec.event_definition) if d.name == wait.name
            )
        # Spiff re-checks correlations against what the workflow holds, and a waiting gateway never
        # records its own: hand it the values the routing matched on (equal to its expected ones).
        (workflow if wait.task_id.startswith("start:") else task.workflow).correlations.update(
            json.loads(wait.correlations)
        )
        return BpmnEvent(definition, json.loads(message["payload"]), json.loads(message["correlations"]))
    return None


def mark_delivered(session: Session, message_id: int, receiver_id: int, now: datetime) -> None:
    """Record the delivery (the row is locked by the caller and still pending)."""
    session.connection().execute(
        update(_MESSAGES)
        .where(_MESSAGES.c.id == message_id)
        .values(status="delivered", receiver_instance_id=receiver_id, delivered_at=now)
    )


def deliverable(session: Session, limit: int = 500) -> list[tuple[int, int]]:
    """(message id, receiver instance id) of pending messages somebody waits for, oldest first."""
    query = (
        select(_MESSAGES.c.id, _WAITS.c.instance_id)
        .join(
            _WAITS,
            and_(
                _WAITS.c.name == _MESSAGES.c.name, _WAITS.c.correlation_hash == _MESSAGES.c.correlation_hash
            ),
        )
        .where(_MESSAGES.c.status == "pending", _MESSAGES.c.attempts < MAX_ATTEMPTS)
        .order_by(_MESSAGES.c.id, _WAITS.c.since, _WAITS.c.instance_id)
        .limit(limit)
    )
    seen, pairs = set(), []
    for message_id, instance_id in session.connection().execute(query):
        if message_id not in seen:
            seen.add(message_id)
            pairs.append((message_id, instance_id))
    return pairs


MAX_ATTEMPTS = 5


def note_failure(session: Session, message_id: int, error: str) -> None:
    """Count a delivery that failed (rolled back and audited); after MAX_ATTEMPTS the sweep stops trying.

    The message stays pending: the receiver's own next step still takes it, and `zhibu check` lists it."""
    session.connection().execute(
        update(_MESSAGES)
        .where(_MESSAGES.c.id == message_id)
        .values(attempts=_MESSAGES.c.attempts + 1, error=error[:2000])
    )


def indexed_waits(session: Session, instance_id: int) -> dict[tuple[str, str], Wait]:
    """The message index rows of one instance, as `scan` would give them (for `zhibu check`)."""
    query = select(_WAITS).where(_WAITS.c.instance_id == instance_id)
    return {
        (row.task_id, row.name): Wait(row.task_id, row.name, row.correlations, row.correlation_hash)
        for row in session.connection().execute(query)
    }


def of_instance(session: Session, instance_id: int) -> list[Message]:
    """Messages an instance sent or received, oldest first (its timeline shows them)."""
    query = select(Message).where(
        or_(Message.sender_instance_id == instance_id, Message.receiver_instance_id == instance_id)
    )
    return list(session.scalars(query.order_by(Message.id)))


def branch_of(session: Session, instance_id: int) -> str | None:
    """The branch of an instance (for the audit event on the sender's side of a delivery)."""
    return session.scalar(select(ProcessInstance.branch).where(ProcessInstance.id == instance_id))
