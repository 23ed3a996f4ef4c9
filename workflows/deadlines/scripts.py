"""Functions the diagrams call for working-day deadlines and the escalation ladder, inside the current step.

Like `workflows.programme.scripts`, they use the step's own session (`spiff.current_step`), so what they
write (notifications, notices) commits or rolls back with the step.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from workflows.deadlines import calendar, escalation, notify
from workflows.engine.spiff import current_step


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
    rejected fix gets a new deadline and a ladder of its own). The notifications are written after the
    step's timers are audited, so the trail reads cause first.
    """
    step = current_step()
    instance = step.instance
    entry = escalation.level(instance.process_id, task_id, level)
    if deadline is not None:
        day = date.fromisoformat(deadline)
        if not escalation.first_time(step.session, instance.id, task_id, level, day, step.clock.now()):
            return {"level": level, "name": entry["name"], "notified": [], "repeat": True}
    people = escalation.recipients(step.session, entry["notify"], branch=instance.branch, assignee=assignee)

    def tell() -> None:
        now = step.clock.now()
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
                text=f"“{subject}”超过整改时限 {entry['offset']} 个工作日仍未完成，予以通报批评。",
                now=now,
            )

    step.later(tell)
    return {"level": level, "name": entry["name"], "notified": people}


# What the diagrams may call; registered with the engine by `workflows.plugins`.
FUNCTIONS = (workday_deadline, escalation_at, escalate)
