"""A rectification item, whole: the problem, the responsibility, every fix round with its evidence and
verdict, and who acts next — what every task of the item shows, so nobody signs off blind.

Read from the audit trail (every submission's data is there, in order) and the evidence store, never
from a copy: what the page shows is what was submitted. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows.engine import audit
from workflows.engine.errors import NotFound
from workflows.engine.models import AuditEvent, ProcessInstance, TaskRecord
from workflows.programme import inbox, ledger
from workflows.programme.evidence import EvidenceFile

PROCESS_ID = ledger.PROCESS_ID


@dataclass
class Verdict:
    """The office's decision on one fix round."""

    approved: bool
    comment: str | None
    new_deadline: str | None
    by: str
    at: datetime


@dataclass
class Round:
    """One 整改落实 submission, its evidence and, once given, its verdict."""

    number: int
    done: str | None
    listed: list[str]  # evidence named in the form (uploaded files are among them)
    files: list[EvidenceFile]
    by: str
    at: datetime
    verdict: Verdict | None = None

    @property
    def named(self) -> list[str]:
        """Evidence named in the form but not uploaded (uploads are listed as "name [/files/ID]")."""
        return [name for name in self.listed if "[/files/" not in name]


@dataclass
class NextStep:
    """An open task of the item and who holds it."""

    task_id: str
    title: str
    holder: str  # a person's username, else the lane's role
    due_at: datetime | None


@dataclass
class Item:
    """Everything about one item, in the order it happened."""

    instance_id: int
    row: ledger.Rectification | None
    problem: dict[str, Any]
    registered_by: str
    registered_at: datetime
    responsible: str | None = None
    measures: str | None = None
    deadline: str | None = None
    assigned_by: str | None = None
    assigned_at: datetime | None = None
    rounds: list[Round] = field(default_factory=list)
    next_steps: list[NextStep] = field(default_factory=list)
    supervision: str | None = None

    @property
    def latest(self) -> Round | None:
        """The newest fix round (what a signer decides on)."""
        return self.rounds[-1] if self.rounds else None


def item(session: Session, instance_id: int) -> Item:
    """The whole item of a rectification instance, or NotFound."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or instance.process_id != PROCESS_ID:
        raise NotFound(f"整改事项 {instance_id} 不存在")
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.instance_id == instance_id,
            AuditEvent.action.in_(("instance.started", "task.completed")),
        )
        .order_by(AuditEvent.seq)
    )
    found: Item | None = None
    for event in events:
        payload = audit.decoded(event)
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        if event.action == "instance.started":
            found = Item(
                instance_id,
                session.get(ledger.Rectification, instance_id),
                data,
                event.actor,
                event.occurred_at,
            )
        elif found is not None:
            _apply(session, found, event, data)
    if found is None:
        raise NotFound(f"整改事项 {instance_id} 不存在")
    open_tasks = list(
        session.scalars(
            select(TaskRecord)
            .where(TaskRecord.instance_id == instance_id, TaskRecord.status == "open")
            .order_by(TaskRecord.created_at)
        )
    )
    found.next_steps = [
        NextStep(t.id, t.title, inbox.holder(t.assignee, t.lane, t.branch), t.due_at) for t in open_tasks
    ]
    open_steps = {t.bpmn_id for t in open_tasks}
    found.supervision = (
        "、".join(mark for step, mark in ledger.SUPERVISION.items() if step in open_steps) or None
    )
    return found


def _apply(session: Session, found: Item, event: AuditEvent, data: dict[str, Any]) -> None:
    if event.bpmn_id == "register":
        found.problem = data
        found.registered_by, found.registered_at = event.actor, event.occurred_at
    elif event.bpmn_id == "assign":
        found.responsible, found.measures, found.deadline = (
            data.get("responsible"),
            data.get("measures"),
            data.get("deadline"),
        )
        found.assigned_by, found.assigned_at = event.actor, event.occurred_at
    elif event.bpmn_id == "fix":
        files = list(
            session.scalars(
                select(EvidenceFile).where(EvidenceFile.task_id == event.task_id).order_by(EvidenceFile.id)
            )
        )
        listed = [str(x) for x in data.get("evidence") or [] if isinstance(x, str)]
        found.rounds.append(
            Round(len(found.rounds) + 1, data.get("done"), listed, files, event.actor, event.occurred_at)
        )
    elif event.bpmn_id == "signoff" and found.rounds:
        approved = bool(data.get("approved"))
        new_deadline = None if approved else data.get("deadline")
        found.rounds[-1].verdict = Verdict(
            approved, data.get("comment"), new_deadline, event.actor, event.occurred_at
        )
        if new_deadline:
            found.deadline = new_deadline
