"""The office dashboard: where each branch stands in the five phases, what is late, grades, obligations kept.

Read-only aggregates over recorded facts: each branch's year (`coordination.BranchYear`, the projection of
its programme: phase, position, classification and track), the task index, the grade records and the
obligation occurrences. Notices (通报) are counted by the deadlines layer, which passes them in.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import ForeignKey, Integer, String, case, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine.models import Base, TaskRecord, UTCDateTime
from workflows.programme import coordination, obligations, org
from workflows.programme.years import ProgrammeYear

PHASES = {1: "组织发动", 2: "对标自查", 3: "争创达标", 4: "总结验收", 5: "巩固提升"}
PLAN_FILE = Path(__file__).resolve().parents[2] / "data" / "plan_steps.json"


class BranchGrade(Base):
    """A branch's acceptance result for a programme year (written by the grading step)."""

    __tablename__ = "branch_grades"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), primary_key=True)
    total: Mapped[float]
    grade: Mapped[str] = mapped_column(String(20))
    graded_at: Mapped[datetime] = mapped_column(UTCDateTime)


def record_grade(session: Session, year: int, branch: str, total: float, grade: str, now: datetime) -> None:
    """Keep (or replace) a branch's grade for a year."""
    row = session.get(BranchGrade, (year, branch)) or BranchGrade(year=year, branch_code=branch)
    row.total, row.grade, row.graded_at = total, grade, now
    session.add(row)
    session.flush()


@lru_cache(maxsize=1)
def phase_of_step() -> dict[str, int]:
    """Which phase each branch-programme step belongs to, from the plan mapping."""
    steps = json.loads(PLAN_FILE.read_text(encoding="utf-8"))["steps"]
    return {bpmn_id: s["phase"] for s in steps for bpmn_id in s["elements"].get("branch_programme", [])}


@dataclass
class BranchStatus:
    """One branch on the dashboard."""

    code: str
    name: str
    phase: int | None
    open_tasks: int
    overdue: int
    obligations_kept: int = 0
    obligations_due: int = 0
    grade: str | None = None
    position: str | None = None  # the open steps, or what the programme waits for
    status: str | None = None
    classification: str | None = None
    track: str | None = None
    notices: int = 0


@dataclass
class Dashboard:
    """Everything the dashboard draws."""

    branches: list[BranchStatus]
    phases: dict[int, int] = field(default_factory=dict)  # phase → number of branches in it
    grades: dict[str, int] = field(default_factory=dict)


def build(
    session: Session, now: datetime, year: int | None = None, notices: dict[str, int] | None = None
) -> Dashboard:
    """The dashboard as of now, for `year` (else the latest programme year); `notices` per branch."""
    counts = {
        branch: (total, int(late or 0))
        for branch, total, late in session.execute(
            select(TaskRecord.branch, func.count(), func.sum(case((TaskRecord.due_at <= now, 1), else_=0)))
            .where(TaskRecord.status == "open")
            .group_by(TaskRecord.branch)
        )
    }
    kept: dict[str, tuple[int, int]] = {}
    occ = obligations.Occurrence
    for branch, due, ok in session.execute(
        select(occ.branch_code, func.count(), func.sum(case((occ.on_time.is_(True), 1), else_=0)))
        .where(occ.due_at <= now)
        .group_by(occ.branch_code)
    ):
        kept[branch] = (int(ok or 0), due)
    if year is None:
        year = session.scalar(select(func.max(ProgrammeYear.year))) or session.scalar(
            select(func.max(BranchGrade.year))
        )
    facts = coordination.of_year(session, year) if year is not None else {}
    grades = {
        g.branch_code: g.grade for g in session.scalars(select(BranchGrade).where(BranchGrade.year == year))
    }
    lines = []
    for branch in org.active_branches(session):
        total, late = counts.get(branch.code, (0, 0))
        ok, due = kept.get(branch.code, (0, 0))
        fact = facts.get(branch.code)
        lines.append(
            BranchStatus(
                branch.code,
                branch.name,
                fact.phase if fact else None,
                total,
                late,
                ok,
                due,
                grades.get(branch.code),
                position=fact.position if fact else None,
                status=fact.status if fact else None,
                classification=(fact.classification if fact else None) or branch.classification,
                track=fact.track if fact else None,
                notices=(notices or {}).get(branch.code, 0),
            )
        )
    phase_counts = Counter(line.phase for line in lines if line.phase)
    return Dashboard(lines, dict(sorted(phase_counts.items())), dict(Counter(grades.values())))
