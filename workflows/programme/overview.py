"""The company at a glance: each branch, where its programme stands, its open and overdue tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from workflows.engine.models import TaskRecord
from workflows.programme import org


@dataclass(frozen=True)
class BranchLine:
    """One branch on the overview."""

    code: str
    name: str
    classification: str | None
    demonstration: bool
    members: int
    open_tasks: int
    overdue_tasks: int
    current_steps: list[str]


def company(session: Session, now: datetime) -> list[BranchLine]:
    """Every active branch with its open and overdue task counts and its programme's current steps."""
    counts = {
        branch: (total, late)
        for branch, total, late in session.execute(
            select(
                TaskRecord.branch,
                func.count(),
                func.sum(case((TaskRecord.due_at <= now, 1), else_=0)),
            )
            .where(TaskRecord.status == "open")
            .group_by(TaskRecord.branch)
        )
    }
    steps: dict[str, list[str]] = {}
    for branch, title in session.execute(
        select(TaskRecord.branch, TaskRecord.title)
        .where(TaskRecord.status == "open", TaskRecord.process_id == "branch_programme")
        .order_by(TaskRecord.created_at)
    ):
        steps.setdefault(branch, []).append(title)
    return [
        BranchLine(
            b.code,
            b.name,
            b.classification,
            b.demonstration,
            b.member_count,
            counts.get(b.code, (0, 0))[0],
            int(counts.get(b.code, (0, 0))[1] or 0),
            steps.get(b.code, []),
        )
        for b in org.active_branches(session)
    ]
