"""What a signed-in person does to a task, checked and done in the same transaction.

The order of checks gives each failure its meaning: an unknown task is NotFound (404), a task the
person may not act on is Forbidden (403), a task that is no longer open is a Conflict (409), and
bad form data is FormInvalid (400). Functions never commit; the request owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit, details, instances, interventions, specs, steps
from workflows.engine.clock import Clock
from workflows.engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from workflows.engine.models import Base, TaskRecord, UTCDateTime
from workflows.programme import evidence, inbox, items, org


def readable_item(session: Session, username: str, instance_id: int) -> items.Item:
    """A rectification item this person may read (its branch is theirs to read), or NotFound / Forbidden."""
    whole = items.item(session, instance_id)
    branches = inbox.readable_branches(inbox.person(session, username))
    branch = whole.row.branch if whole.row is not None else whole.problem.get("branch")
    if branches is not None and branch not in branches:
        raise Forbidden("无权查看该整改事项")
    return whole


def visible_task(session: Session, username: str, task_id: str) -> TaskRecord:
    """A task the person may see, or NotFound / Forbidden."""
    record = session.get(TaskRecord, task_id)
    if record is None:
        raise NotFound(f"任务 {task_id} 不存在")
    if not inbox.can_see(session, username, task_id):
        raise Forbidden("无权查看该任务")
    return record


def came_back(session: Session, done: instances.CompletedTask) -> tuple[TaskRecord, str] | None:
    """The same step opened again by the completion (a check sent it back), and why; else None."""
    again = session.scalars(
        select(TaskRecord).where(
            TaskRecord.instance_id == done.instance_id,
            TaskRecord.bpmn_id == done.bpmn_id,
            TaskRecord.status == "open",
        )
    ).first()
    if again is None:
        return None
    returned = details.task_details(session, again)["data"].get("returned")
    why = returned.get("why") if isinstance(returned, dict) and returned.get("step") == again.bpmn_id else ""
    return again, why or "请按提示修改后再次提交"


def complete_as(
    session: Session, username: str, task_id: str, data: dict[str, Any] | None, *, clock: Clock
) -> instances.CompletedTask:
    """Complete a task as this person, if it is theirs (or their role's) and still open.

    Files uploaded to the task are added to its form's `evidence` list, so the submitted data (and the
    trail) names them.
    """
    # Lock the instance first and read the task under that lock: a concurrent completion has then
    # either committed (this one is a 409) or not started, never half-seen as "not yours" (403).
    # The lock's row has the instance as it is now, but on PostgreSQL its task columns may predate the
    # wait for the lock: the task is read again.
    locked = instances.lock_task(session, task_id)  # NotFound for an unknown task
    record = session.get(TaskRecord, task_id, populate_existing=True)
    if record.status != "open":
        raise Conflict(f"任务“{record.title}”已办结，不能重复提交")
    if not inbox.can_act(session, username, task_id):
        raise Forbidden("该任务不由您办理")
    files = evidence.of_task(session, task_id)
    if files and isinstance(data, dict):
        schema = details.task_details(session, record)["schema"] or {}
        if "evidence" in schema.get("properties", {}):
            listed = data.get("evidence") if isinstance(data.get("evidence"), list) else []
            data = {**data, "evidence": listed + [f"{f.name} [/files/{f.id}]" for f in files]}
    return steps.complete_task(session, task_id, data, actor=username, clock=clock, locked=locked)


@dataclass(frozen=True)
class Permissions:
    """What a person may do to one task, for the page to offer only that."""

    act: bool
    claim: bool
    unclaim: bool
    reassign: bool
    comment: bool = True


def attach_evidence(
    session: Session,
    username: str,
    task_id: str,
    files: list[tuple[str, bytes]],
    *,
    now: datetime,
    root: Path,
) -> list[evidence.EvidenceFile]:
    """Keep evidence files for a task its person is doing; InvalidInput names a refused file."""
    record = visible_task(session, username, task_id)
    if record.status != "open" or not inbox.can_act(session, username, task_id):
        raise Forbidden("只有任务办理人可以上传佐证材料")
    if not files:
        raise InvalidInput("请选择要上传的文件")
    return [
        evidence.store(
            session, content=content, name=name, task=record, uploaded_by=username, now=now, root=root
        )
        for name, content in files
    ]


def permissions(session: Session, username: str, record: TaskRecord) -> Permissions:
    """The actions on a task this person would be allowed (each action checks again when taken)."""
    who = inbox.person(session, username)
    if record.status != "open":
        return Permissions(False, False, False, False, comment=not inbox.read_only(who))
    act = inbox.can_act(session, username, record.id)
    named_by_form = inbox.lanes().get(record.lane or "", {}).get("scope") == "assignee"
    is_office = "office" in who.company_roles
    is_secretary = record.branch is not None and record.branch in who.branch_roles.get(
        "secretary", frozenset()
    )
    return Permissions(
        act=act,
        claim=act and record.assignee is None,
        unclaim=record.assignee is not None
        and not named_by_form
        and (record.assignee == username or is_office),
        reassign=is_office or is_secretary,
        comment=not inbox.read_only(who),
    )


REGISTRATION_FIELDS = ("source", "branch", "title", "description", "standard_item", "deadline")


def registering_branches(session: Session, username: str) -> frozenset[str] | None:
    """For which branches a person may register problems: None for any (the office, inspectors, who
    find problems anywhere), else the branches they are secretary of (possibly none)."""
    who = inbox.person(session, username)
    if who.company_roles & {"office", "inspector"}:
        return None
    return who.branch_roles.get("secretary", frozenset())


def registration_form(session: Session) -> dict[str, Any]:
    """The JSON Schema of 登记问题 (the rectification process's start form, its latest version)."""
    deployed = specs.as_deployed(specs.latest_version(session, items.PROCESS_ID))
    return deployed.form_schema(steps.start_form(deployed)) or {}


def register_rectification(
    session: Session, username: str, data: dict[str, Any], *, clock: Clock
) -> instances.InstanceRow:
    """Put a problem in the ledger: the office and inspectors for any branch (or the company), a
    secretary for their own."""
    allowed = registering_branches(session, username)
    branch = data.get("branch")
    if allowed is not None and not (isinstance(branch, str) and branch in allowed):
        raise Forbidden("只有党委工作室、督查验收人员或本支部书记可以登记问题")
    fields = {k: v for k, v in data.items() if v not in (None, "")}
    return steps.start(session, "rectification", fields, actor=username, clock=clock)


def claim(session: Session, username: str, task_id: str, *, clock: Clock) -> None:
    """Take a role task (签收): it leaves the others' to-do lists until it is given back."""
    record = _open_task(session, task_id)
    if record.assignee is not None or not inbox.can_act(session, username, task_id):
        raise Forbidden("只能签收本角色尚未有人签收的任务")
    interventions.set_claim(session, task_id, username, actor=username, clock=clock, action="task.claimed")


def unclaim(session: Session, username: str, task_id: str, *, clock: Clock) -> None:
    """Give a claimed task back to its role (退回签收): the one who holds it, or the office."""
    record = _open_task(session, task_id)
    who = inbox.person(session, username)
    if record.assignee != username and "office" not in who.company_roles:
        raise Forbidden("只能退回自己签收的任务")
    interventions.set_claim(session, task_id, None, actor=username, clock=clock, action="task.unclaimed")


def reassign(session: Session, username: str, task_id: str, to: str, *, clock: Clock) -> None:
    """Hand a task to someone else (转办): the office to anyone, a secretary within their branch."""
    record = _open_task(session, task_id)
    who = inbox.person(session, username)
    is_office = "office" in who.company_roles
    is_secretary = record.branch is not None and record.branch in who.branch_roles.get(
        "secretary", frozenset()
    )
    if not (is_office or is_secretary):
        raise Forbidden("只有党委工作室或本支部书记可以转办任务")
    if not to or session.get(org.User, to) is None:
        raise InvalidInput(f"没有用户“{to}”")
    if not is_office and to not in org.people_of(session, record.branch):
        raise InvalidInput(f"“{to}”不是本党支部人员，不能转办给他")
    interventions.set_claim(session, task_id, to, actor=username, clock=clock, action="task.reassigned")


def comment(session: Session, username: str, task_id: str, text: str, *, clock: Clock) -> TaskComment:
    """Leave a remark on a task anyone who may see it can read; it is part of the trail."""
    record = visible_task(session, username, task_id)
    if inbox.read_only(inbox.person(session, username)):
        raise Forbidden("督查验收、领导小组为只读角色，不能发表意见")
    text = text.strip()
    if not text:
        raise InvalidInput("意见内容不能为空")
    if len(text) > 2000:
        raise InvalidInput("意见内容不能超过 2000 字")
    now = clock.now()
    note = TaskComment(
        task_id=task_id, instance_id=record.instance_id, author=username, text=text, created_at=now
    )
    session.add(note)
    session.flush()
    audit.append(
        session,
        action="task.commented",
        actor=username,
        occurred_at=now,
        instance_id=record.instance_id,
        task_id=task_id,
        bpmn_id=record.bpmn_id,
        branch=record.branch,
        data={"text": text},
    )
    return note


def comments(session: Session, task_id: str) -> list[TaskComment]:
    """A task's remarks, oldest first."""
    query = select(TaskComment).where(TaskComment.task_id == task_id)
    return list(session.scalars(query.order_by(TaskComment.created_at, TaskComment.id)))


def _open_task(session: Session, task_id: str) -> TaskRecord:
    record = session.get(TaskRecord, task_id)
    if record is None:
        raise NotFound(f"任务 {task_id} 不存在")
    if record.status != "open":
        raise Conflict(f"任务“{record.title}”已办结")
    return record


class TaskComment(Base):
    """A remark on a task (e.g. the secretary asking the responsible person for more evidence)."""

    __tablename__ = "task_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)
    instance_id: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
