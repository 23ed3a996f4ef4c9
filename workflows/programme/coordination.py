"""What the programme year records about each branch: where its programme stands, how it is classified,
every grading round, and the feedback it sent up.

- `branch_years`: one row per year and branch, a projection of the branch programme (rewritten in every
  step of it, like the ledger: its phase and position come from the process's real position), plus the
  office's classification (先进/一般/软弱) and track (示范点/薄弱攻坚/同步推进) for that year.
- `grade_rounds`: every grading of a branch — the acceptance, each 复验, a closing with 不达标 — kept.
- `feedback_items`: each problem, suggestion and unsuitable indicator a branch reported, one row each.

Functions never commit; the projection runs in the step's transaction.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine.models import Base, InstanceRow, UTCDateTime

PROCESS_ID = "branch_programme"
PLAN_FILE = Path(__file__).resolve().parents[2] / "data" / "plan_steps.json"
TRACKS = ("示范点", "薄弱攻坚", "同步推进")
# Where a branch programme waits without a human task, and what that means for people.
WAITING = {
    "phase3_end": (3, "等待总结验收"),
    "wait_items": (4, "限期改正中：等待整改事项销号"),
}
SIDE_STEPS = {"demonstration", "feedback", "consolidate", "forward"}  # beside the main line


class BranchYear(Base):
    """One branch in one programme year."""

    __tablename__ = "branch_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(Integer, index=True)
    classification: Mapped[str | None] = mapped_column(String(10))
    track: Mapped[str | None] = mapped_column(String(10))
    demonstration_told: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="进行中")
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    end_state: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GradeRound(Base):
    """One grading of a branch for a year: 验收, 复验, or 不达标结案 (with the office's reason)."""

    __tablename__ = "grade_rounds"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    total: Mapped[float | None] = mapped_column(Float)
    grade: Mapped[str | None] = mapped_column(String(20))
    passed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    graded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedbackItem(Base):
    """One item of a branch's feedback: a problem, a suggestion, or an indicator that does not fit."""

    __tablename__ = "feedback_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # 问题 | 建议 | 不适用指标
    text: Mapped[str] = mapped_column(Text)
    catalog_item: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


def fact(session: Session, year: int, branch: str) -> BranchYear:
    """The row of a branch in a year (made when first needed)."""
    row = session.get(BranchYear, (year, branch))
    if row is None:
        row = BranchYear(
            year=year, branch_code=branch, status="进行中", settled=False, demonstration_told=False
        )
        session.add(row)
    return row


@lru_cache(maxsize=1)
def _phase_of() -> dict[str, int]:
    steps = json.loads(PLAN_FILE.read_text(encoding="utf-8"))["steps"]
    return {bpmn_id: s["phase"] for s in steps for bpmn_id in s["elements"].get(PROCESS_ID, [])}


def _year(workflow: BpmnWorkflow) -> int | None:
    year = workflow.get_tasks(spec_name="Start")[0].data.get("year")
    return year if isinstance(year, int) and not isinstance(year, bool) else None


def project(session: Session, row: InstanceRow, workflow: BpmnWorkflow, open_steps: set[str], now: datetime):
    """Rewrite a branch's row for the year from where its programme stands (every step of it)."""
    year = _year(workflow)
    if year is None or row.branch is None:
        return
    found = fact(session, year, row.branch)
    found.instance_id, found.updated_at = row.id, now
    if row.status == "completed":
        found.phase, found.position = 5, found.end_state or "本年度流程已结束（巩固提升长期坚持）"
        return
    names = {t.task_spec.bpmn_id: t.task_spec.bpmn_name for t in workflow.get_tasks(state=TaskState.READY)}
    main = sorted(open_steps - SIDE_STEPS, key=lambda s: _phase_of().get(s, 9))
    waiting = [bpmn_id for bpmn_id in WAITING if _waits_at(workflow, bpmn_id)]
    phases = [_phase_of()[s] for s in main if s in _phase_of()] + [WAITING[w][0] for w in waiting]
    beside = sorted(open_steps & SIDE_STEPS, key=lambda s: _phase_of().get(s, 9))
    if phases:
        found.phase = min(phases)
    elif beside:
        found.phase = max(_phase_of().get(s, 4) for s in beside)
    words = [names.get(s) or s for s in main] + [WAITING[w][1] for w in waiting]
    words += [names.get(s) or s for s in beside]
    found.position = "、".join(words)[:300] or found.position


def _waits_at(workflow: BpmnWorkflow, bpmn_id: str) -> bool:
    return any(
        t.task_spec.bpmn_id == bpmn_id and t.state == TaskState.WAITING
        for t in workflow.event_manager.tasks.values()
    )


def record_round(
    session: Session,
    year: int,
    branch: str,
    kind: str,
    outcome: dict[str, Any],
    now: datetime,
    *,
    instance_id: int | None,
    reason: str | None = None,
) -> GradeRound:
    """Keep one grading round (the acceptance, a 复验, or closing with 不达标) and the branch's status."""
    passed = bool(outcome.get("passed"))
    entry = GradeRound(
        year=year,
        branch_code=branch,
        kind=kind,
        total=outcome.get("total"),
        grade=outcome.get("grade"),
        passed=passed,
        reason=reason,
        instance_id=instance_id,
        graded_at=now,
    )
    session.add(entry)
    row = fact(session, year, branch)
    row.settled = passed or kind == "不达标结案"
    row.status = "已达标" if passed else ("不达标结案" if kind == "不达标结案" else "限期改正中")
    session.flush()
    return entry


def rounds(session: Session, year: int, branch: str | None = None) -> list[GradeRound]:
    """The grading history of a year (one branch, or all), oldest first."""
    query = select(GradeRound).where(GradeRound.year == year)
    if branch is not None:
        query = query.where(GradeRound.branch_code == branch)
    return list(session.scalars(query.order_by(GradeRound.graded_at, GradeRound.id)))


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def record_feedback(session: Session, payload: dict[str, Any], instance_id: int | None, now: datetime) -> int:
    """Keep every item of a branch's feedback message; returns how many were kept."""
    year, branch = payload.get("year"), payload.get("branch")
    if not isinstance(year, int) or not isinstance(branch, str):
        return 0
    rows = [
        FeedbackItem(
            year=year, branch_code=branch, kind=kind, text=text, instance_id=instance_id, received_at=now
        )
        for kind, key in (("问题", "problems"), ("建议", "suggestions"))
        for text in _texts(payload.get(key))
    ]
    for unfit in payload.get("unfit") or []:
        if isinstance(unfit, dict) and unfit.get("item"):
            rows.append(
                FeedbackItem(
                    year=year,
                    branch_code=branch,
                    kind="不适用指标",
                    text=str(unfit["item"]),
                    catalog_item=str(unfit["item"])[:200],
                    reason=unfit.get("reason"),
                    instance_id=instance_id,
                    received_at=now,
                )
            )
    session.add_all(rows)
    session.flush()
    return len(rows)


def feedback(session: Session, year: int) -> list[FeedbackItem]:
    """Every feedback item of a year, by branch then arrival."""
    query = select(FeedbackItem).where(FeedbackItem.year == year)
    return list(session.scalars(query.order_by(FeedbackItem.branch_code, FeedbackItem.id)))


def unfit_counts(session: Session, year: int) -> dict[str, int]:
    """How many branches reported each catalog item as unsuitable."""
    pairs = {(f.catalog_item, f.branch_code) for f in feedback(session, year) if f.kind == "不适用指标"}
    return dict(Counter(item for item, _ in pairs if item))


def of_year(session: Session, year: int) -> dict[str, BranchYear]:
    """Every branch's row for a year, by branch code."""
    return {r.branch_code: r for r in session.scalars(select(BranchYear).where(BranchYear.year == year))}


FEEDBACK_HEADERS = (
    "党支部编号",
    "党支部",
    "类别",
    "内容",
    "分析研判",
    "报告该指标不适用的党支部数",
    "报送时间",
)


def feedback_table(session: Session, year: int, names: dict[str, str]) -> list[tuple]:
    """Every feedback item of a year as rows of the summary sent up to 集团公司党委组织部."""
    counts = unfit_counts(session, year)
    return [
        (
            f.branch_code,
            names.get(f.branch_code, f.branch_code),
            f.kind,
            f.text,
            f.reason or "",
            counts.get(f.catalog_item, "") if f.kind == "不适用指标" else "",
            f.received_at,
        )
        for f in feedback(session, year)
    ]
