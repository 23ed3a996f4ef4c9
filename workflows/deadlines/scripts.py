"""Functions the diagrams call for working-day deadlines and the escalation ladder, inside the current step.

Like `workflows.programme.scripts`, they use the step's own session (`spiff.current_step`), so what they
write (notifications, notices) commits or rolls back with the step.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from workflows.deadlines import calendar, escalation, notify
from workflows.engine.models import TaskRecord
from workflows.engine.spiff import current_step
from workflows.programme import org


def workday_deadline(deadline: str, offset: int = 0) -> str:
    """Timer instant for a date deadline moved by `offset` working days (rest days skipped)."""
    when, _ = calendar.deadline(calendar.load(current_step().session), deadline, offset)
    return when.isoformat()


def escalation_at(task_id: str, level: int, deadline: str) -> str:
    """Timer instant at which a task of this process reaches a level of its escalation ladder."""
    step = current_step()
    when, _ = escalation.instant(step.session, step.instance.process_id, task_id, level, deadline)
    return when


def escalate(
    task_id: str, level: int, assignee: str | None = None, deadline: str | None = None
) -> dict[str, Any]:
    """A ladder level was reached: notify its people and, where the ladder says so, file a notice.

    With a `deadline` each level is told once for that deadline, whatever loops the diagram makes (a
    step that comes back is the same task; a rejected fix gets a new deadline and a ladder of its own).
    The notifications are written after the step's timers are audited, so the trail reads cause first,
    and after the instance is saved, so a ladder that fires as the instance starts knows its id.
    """
    step = current_step()
    instance = step.instance
    entry = escalation.level(instance.process_id, task_id, level)
    people = escalation.recipients(step.session, entry["notify"], branch=instance.branch, assignee=assignee)

    limit = "整改时限" if instance.process_id == "rectification" else "期限"

    def tell() -> None:
        now = step.clock.now()
        if deadline is not None and not escalation.first_time(
            step.session, instance.id, task_id, level, date.fromisoformat(deadline), now
        ):
            return  # this level of this deadline was told before
        step_name = _step_title(step.session, instance.id, task_id)
        subject = instance.title or instance.process_id
        where = f"（{instance.branch}）" if instance.branch else ""
        notify.send(
            step.session,
            people,
            kind="escalation",
            title=f"【{entry['name']}】{subject}{where}",
            body=f"“{subject}”已到催办阶梯第 {level} 级（{entry['name']}），请及时处理。",
            now=now,
            actor="system:escalation",
            instance_id=instance.id,
            branch=instance.branch,
        )
        if entry.get("notice"):
            escalation.file_notice(
                step.session,
                branch=instance.branch,
                instance_id=instance.id,
                task_id=task_id,
                subject=subject,
                text=f"“{subject}”的“{step_name}”超过{limit} {entry['offset']} 个工作日仍未完成，通报批评。",
                now=now,
            )

    step.later(tell)
    return {"level": level, "name": entry["name"], "notified": people}


def _step_title(session, instance_id: int, bpmn_id: str) -> str:
    """The name people know a step of an instance by (from the task index), else its id."""
    title = session.scalar(
        select(TaskRecord.title)
        .where(TaskRecord.instance_id == instance_id, TaskRecord.bpmn_id == bpmn_id)
        .order_by(TaskRecord.created_at.desc())
        .limit(1)
    )
    return title or bpmn_id


_ITEM_NEWS = {
    "assigned": (
        "【整改任务】{subject}",
        "您是“{subject}”的整改责任人。整改措施：{measures}。整改时限：{deadline} 当天24时前。",
    ),
    "rejected": (
        "【整改退回】{subject}",
        "“{subject}”验收未通过：{comment}。请重新整改，新的整改时限：{deadline} 当天24时前。",
    ),
    "closed": ("【已销号】{subject}", "“{subject}”已验收通过并销号。"),
}


def notify_item(
    kind: str,
    responsible: str | None,
    measures: str | None = None,
    deadline: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """Tell the people of a rectification item what just happened to it: its responsible person when
    assigned, rejected and signed off, and the branch's secretary too when it is signed off."""
    step = current_step()
    instance = step.instance
    people = [responsible] if responsible else []
    if kind == "closed" and instance.branch:
        people += org.people_of(step.session, instance.branch, ("secretary",))
    people = list(dict.fromkeys(people))
    subject = instance.title or instance.process_id
    title, body = (
        text.format(subject=subject, measures=measures, deadline=deadline, comment=comment)
        for text in _ITEM_NEWS[kind]
    )

    def tell() -> None:
        notify.send(
            step.session,
            people,
            kind="rectification",
            title=title,
            body=body,
            now=step.clock.now(),
            actor="system:rectification",
            instance_id=instance.id,
            branch=instance.branch,
        )

    step.later(tell)
    return {"kind": kind, "notified": people}


# What the diagrams may call; registered with the engine by `workflows.plugins`.
FUNCTIONS = (workday_deadline, escalation_at, escalate, notify_item)
