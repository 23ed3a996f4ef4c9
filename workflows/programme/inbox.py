"""Who sees and who may act on which open task: the inbox of each person.

A task belongs to a lane; `data/lanes.json` says which roles a lane stands for and whether it is a
company lane, a branch lane (the role must be held in the task's branch) or an assignee lane (the
person the task names). A named assignee always wins. Branch-lane tasks of company-level work (no
branch) fall to the office. Beyond what they may act on, people watch tasks read-only: the office,
the leadership group and inspectors watch everything, a committee member the contact branches, and
branch people their own branch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select
from sqlalchemy.orm import Session

from workflows.engine.models import TaskRecord
from workflows.programme import org

LANES_FILE = Path(__file__).resolve().parents[2] / "data" / "lanes.json"
WATCH_ALL = ("office", "leader", "inspector")


@lru_cache(maxsize=1)
def lanes() -> dict[str, dict]:
    """Lane name → {"scope": company|branch|assignee, "roles": [...]}, from the data file."""
    return json.loads(LANES_FILE.read_text(encoding="utf-8"))


def _lanes_for(role: str, scope: str) -> list[str]:
    return [name for name, lane in lanes().items() if lane["scope"] == scope and role in lane["roles"]]


@dataclass(frozen=True)
class Person:
    """A person's grants, resolved once per request."""

    username: str
    company_roles: frozenset[str]
    branch_roles: dict[str, frozenset[str]]  # role → branch codes
    contact_branches: frozenset[str]

    @property
    def branches(self) -> frozenset[str]:
        return frozenset().union(*self.branch_roles.values()) if self.branch_roles else frozenset()


def person(session: Session, username: str) -> Person:
    """Resolve a person's roles and contact branches (NotFound for an unknown username)."""
    org.user(session, username)
    company, by_role = set(), {}
    for role, branch_code in org.grants(session, username):
        if branch_code is None:
            company.add(role)
        else:
            by_role.setdefault(role, set()).add(branch_code)
    contacts = org.contact_branches(session, username) if "committee" in company else []
    return Person(
        username,
        frozenset(company),
        {role: frozenset(codes) for role, codes in by_role.items()},
        frozenset(contacts),
    )


def actionable(who: Person) -> ColumnElement[bool]:
    """SQL condition: open tasks this person may complete."""
    mine = TaskRecord.assignee == who.username
    # Written as a function of the column on purpose: `assignee IS NULL` matches most open tasks, and an
    # index on it would be chosen over the selective branch/lane indexes that each term below has.
    unassigned = func.coalesce(TaskRecord.assignee, "") == ""
    terms: list[ColumnElement[bool]] = [mine]
    for role in who.company_roles:
        company_lanes = _lanes_for(role, "company")
        if company_lanes:
            terms.append(and_(unassigned, TaskRecord.lane.in_(company_lanes)))
    for role, codes in who.branch_roles.items():
        branch_lanes = _lanes_for(role, "branch")
        if branch_lanes:
            terms.append(and_(unassigned, TaskRecord.lane.in_(branch_lanes), TaskRecord.branch.in_(codes)))
    if "office" in who.company_roles:
        fallback = [name for name, lane in lanes().items() if lane["scope"] in ("branch", "assignee")]
        terms.append(and_(unassigned, TaskRecord.lane.in_(fallback), TaskRecord.branch.is_(None)))
    return or_(*terms)


def visible(who: Person) -> ColumnElement[bool]:
    """SQL condition: open tasks this person may see (act on or watch)."""
    if who.company_roles & set(WATCH_ALL):
        return TaskRecord.id.is_not(None)
    watched = who.branches | who.contact_branches
    return or_(actionable(who), TaskRecord.branch.in_(watched) if watched else false())


@dataclass(frozen=True)
class Inbox:
    """What a person's inbox shows: tasks to do, and tasks to follow read-only."""

    todo: list[TaskRecord]
    watching: list[TaskRecord]


def inbox(session: Session, username: str, *, limit: int = 500) -> Inbox:
    """A person's open tasks, soonest due first: to do, then read-only (at most `limit` in all)."""
    who = person(session, username)
    # CASE, not NOT(...): the condition is NULL for unassigned rows, and NOT NULL would drop them.
    may_act = case((actionable(who), True), else_=False).label("may_act")
    rows = session.execute(
        select(TaskRecord, may_act)
        .where(TaskRecord.status == "open", visible(who))
        .order_by(
            may_act.desc(),
            TaskRecord.due_at.is_(None),
            TaskRecord.due_at,
            TaskRecord.created_at,
            TaskRecord.id,
        )
        .limit(limit)
    ).all()
    return Inbox([r for r, act in rows if act], [r for r, act in rows if not act])


def can_act(session: Session, username: str, task_id: str) -> bool:
    """Whether this person may complete this open task."""
    who = person(session, username)
    found = session.scalar(
        select(TaskRecord.id).where(TaskRecord.id == task_id, TaskRecord.status == "open", actionable(who))
    )
    return found is not None


def can_see(session: Session, username: str, task_id: str) -> bool:
    """Whether this person may see this task (open or closed)."""
    who = person(session, username)
    return session.scalar(select(TaskRecord.id).where(TaskRecord.id == task_id, visible(who))) is not None


@dataclass(frozen=True)
class Listing:
    """One page of an inbox view with its counts."""

    rows: list[tuple[TaskRecord, bool]]  # (task, may act)
    total: int
    counts: dict[str, int]


def search(
    session: Session,
    username: str,
    *,
    view: str = "todo",
    process: str | None = None,
    branch: str | None = None,
    text: str | None = None,
    phase_steps: list[str] | None = None,
    now=None,
    limit: int = 50,
    offset: int = 0,
) -> Listing:
    """A person's tasks: `todo` (may act), `watching` (read-only), `overdue` or `done` (completed by them)."""
    who = person(session, username)
    is_open = TaskRecord.status == "open"
    views = {
        "todo": and_(is_open, actionable(who)),
        "watching": and_(is_open, visible(who), ~case((actionable(who), True), else_=False)),
        "overdue": and_(is_open, actionable(who), TaskRecord.due_at <= now) if now else false(),
        "done": TaskRecord.completed_by == username,
    }
    filters = []
    if process:
        filters.append(TaskRecord.process_id == process)
    if branch:
        filters.append(TaskRecord.branch == branch)
    if phase_steps is not None:  # a phase of the programme: its steps in the branch programme
        filters.append(and_(TaskRecord.process_id == "branch_programme", TaskRecord.bpmn_id.in_(phase_steps)))
    if text:
        like = f"%{text}%"
        filters.append(or_(TaskRecord.title.like(like), TaskRecord.subject.like(like)))
    counts = {
        name: session.scalar(select(func.count()).select_from(TaskRecord).where(condition, *filters))
        for name, condition in views.items()
    }
    query = select(TaskRecord).where(views[view], *filters)
    if view == "done":
        query = query.order_by(TaskRecord.completed_at.desc(), TaskRecord.id)
    else:
        query = query.order_by(*urgency(now), TaskRecord.created_at, TaskRecord.id)
    rows = list(session.scalars(query.limit(limit).offset(offset)))
    return Listing([(row, view in ("todo", "overdue")) for row in rows], counts[view], counts)


def holder(assignee: str | None, lane: str | None, branch: str | None) -> str:
    """Who holds an open task, in words: its person, else its lane's role; a branch lane's task of a
    company-level item is the office's (as `actionable` has it)."""
    if assignee:
        return assignee
    if branch is None and lanes().get(lane or "", {}).get("scope") in ("branch", "assignee"):
        return "党委工作室"
    return lane or "—"


def urgency(now) -> tuple:
    """Most urgent first: overdue, then work that has no deadline yet (a new 明确责任 sets the item's
    deadline, so it must not sink below routine work due months ahead), then the nearest deadline."""
    if now is None:
        return (TaskRecord.due_at.is_(None), TaskRecord.due_at)
    rank = case((TaskRecord.due_at <= now, 0), (TaskRecord.due_at.is_(None), 1), else_=2)
    return (rank, TaskRecord.due_at)


def visible_tasks(
    session: Session, who: Person, condition: ColumnElement[bool], limit: int = 1000, offset: int = 0
) -> list[TaskRecord]:
    """Tasks this person may see that also meet `condition`, soonest due first (one page)."""
    query = select(TaskRecord).where(visible(who), condition)
    order = (TaskRecord.due_at.is_(None), TaskRecord.due_at, TaskRecord.created_at, TaskRecord.id)
    return list(session.scalars(query.order_by(*order).limit(limit).offset(offset)))


READ_ONLY = frozenset({"leader", "inspector"})


def read_only(who: Person) -> bool:
    """Whether this person only reads (the leadership group, inspectors): they write nothing, not even
    a comment, so what they inspect is only what others did."""
    return bool(who.company_roles) and who.company_roles <= READ_ONLY and not who.branch_roles


def actionable_ids(session: Session, who: Person, task_ids: list[str]) -> set[str]:
    """Which of these tasks this person may complete now."""
    if not task_ids:
        return set()
    query = select(TaskRecord.id).where(
        TaskRecord.id.in_(task_ids), TaskRecord.status == "open", actionable(who)
    )
    return set(session.scalars(query))


def count_visible(session: Session, who: Person, condition: ColumnElement[bool]) -> int:
    """How many tasks this person may see meet `condition` (all pages)."""
    query = select(func.count()).select_from(TaskRecord).where(visible(who), condition)
    return session.scalar(query) or 0


def readable_branches(who: Person) -> frozenset[str] | None:
    """Branches whose records (ledger, trail) this person may read; None means all of them."""
    if who.company_roles & set(WATCH_ALL):
        return None
    return who.branches | who.contact_branches
