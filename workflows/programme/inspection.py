"""What inspectors read: where an instance stands on its diagram, and a branch's dossier.

Read-only queries; access is decided by the caller with `inbox.readable_branches` and `may_read`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from workflows.engine import audit, instances
from workflows.engine.errors import NotFound
from workflows.engine.models import AuditEvent, ProcessInstance, SpecVersion, TaskRecord
from workflows.programme import inbox


def may_read(session: Session, who: inbox.Person, instance: ProcessInstance) -> bool:
    """Company readers read everything; others their branches' instances, or ones they had a task in."""
    branches = inbox.readable_branches(who)
    if branches is None or (instance.branch is not None and instance.branch in branches):
        return True
    mine = or_(TaskRecord.assignee == who.username, TaskRecord.completed_by == who.username)
    return (
        session.scalar(select(TaskRecord.id).where(TaskRecord.instance_id == instance.id, mine).limit(1))
        is not None
    )


@dataclass(frozen=True)
class ProcessView:
    """An instance on its diagram: the BPMN XML and which elements are done, current or late."""

    instance: ProcessInstance
    bpmn_xml: str
    done: list[str]
    current: list[str]
    late: list[str]
    events: list[AuditEvent]
    next_steps: list[str]  # "整改落实（zhangsan）": the open tasks and who holds each


def process_view(session: Session, instance_id: int, now: datetime) -> ProcessView:
    """The diagram of an instance's own version with its progress marked, and its timeline."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"流程实例 {instance_id} 不存在")
    version = session.get(SpecVersion, instance.spec_version_id)
    workflow = instances.restore(session, instance).workflow
    done, current = set(), set()
    for task in workflow.get_tasks():
        bpmn_id = getattr(task.task_spec, "bpmn_id", None)
        if not bpmn_id:
            continue
        if task.state == TaskState.COMPLETED:
            done.add(bpmn_id)
        elif task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
            current.add(bpmn_id)
    open_tasks = list(
        session.scalars(
            select(TaskRecord)
            .where(TaskRecord.instance_id == instance_id, TaskRecord.status == "open")
            .order_by(TaskRecord.created_at)
        )
    )
    late = {t.bpmn_id for t in open_tasks if t.due_at is not None and t.due_at <= now}
    next_steps = [f"{t.title}（{inbox.holder(t.assignee, t.lane, t.branch)}）" for t in open_tasks]
    events = audit.events(session, branches=None, instance_id=instance_id, limit=2000)
    return ProcessView(
        instance, version.bpmn_xml, sorted(done - current), sorted(current), sorted(late), events, next_steps
    )


@dataclass(frozen=True)
class DossierLine:
    """One task of a branch: when it was due, when and by whom it was done, and whether on time.

    A step that came back under the same deadline (a plan returned, training below 全覆盖, a self-check
    incomplete) is one task: `task` is its latest round, `rounds` how many times it was opened. A step
    given a new deadline (a fix sent back) is a new task."""

    task: TaskRecord
    on_time: bool | None  # None: no deadline, or still open and not yet due
    rounds: int = 1


def dossier(session: Session, branch: str, now: datetime, limit: int = 2000) -> list[DossierLine]:
    """Everything the branch was given to do, newest first, with its timeliness (a returned step once)."""
    rows = session.scalars(
        select(TaskRecord)
        .where(TaskRecord.branch == branch)
        .order_by(TaskRecord.created_at.desc(), TaskRecord.id)
        .limit(limit)
    )
    latest: dict[tuple, TaskRecord] = {}
    rounds: dict[tuple, int] = {}
    for task in rows:  # newest first: the first seen of a step is its latest round
        key = (task.instance_id, task.bpmn_id, task.due_at)
        latest.setdefault(key, task)
        rounds[key] = rounds.get(key, 0) + 1
    lines = []
    for key, task in latest.items():
        if task.due_at is None:
            on_time = None
        elif task.status == "open":
            on_time = False if task.due_at <= now else None
        else:
            on_time = task.completed_at is not None and task.completed_at <= task.due_at
        lines.append(DossierLine(task, on_time, rounds[key]))
    return lines
