"""The rectification ledger (整改台账): one row per rectification item, kept with the workflow.

The row is a projection of the item's workflow, rewritten in the same transaction as every step
(`project`, called when an instance is saved), so the ledger never disagrees with the process.
Status follows the open step: 待分派 (register/assign), 整改中 (fix), 待验收 (signoff), 已销号 (done).
Functions never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Date, Integer, Select, String, Text, bindparam, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit
from workflows.engine.clock import LOCAL_TZ, end_of_day
from workflows.engine.errors import EngineError
from workflows.engine.models import Base, TaskRecord, UTCDateTime
from workflows.engine.prepared import Prepared
from workflows.programme import years
from workflows.programme.inbox import holder

PROCESS_ID = "rectification"
STATUS_BY_STEP = {"register": "待分派", "assign": "待分派", "fix": "整改中", "signoff": "待验收"}
CLOSED = "已销号"
STATUSES = ("待分派", "整改中", "待验收", CLOSED)
# Supervision runs beside the main steps once the ladder reaches it; the ledger marks the item meanwhile.
SUPERVISION = {"supervise": "督办中", "interview": "待约谈"}


class Rectification(Base):
    """One item of the ledger."""

    __tablename__ = "rectifications"

    instance_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    branch: Mapped[str | None] = mapped_column(String(50), index=True)
    source: Mapped[str | None] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    standard_item: Mapped[str | None] = mapped_column(String(50))
    responsible: Mapped[str | None] = mapped_column(String(100))
    measures: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), index=True)
    rounds: Mapped[int] = mapped_column(Integer, default=0)  # times sent back to be fixed again
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The programme year whose ledger holds the item; an item still open when a year closes moves on to
    # the next year's ledger (same item, its history kept) and remembers the year it came from.
    year: Mapped[int | None] = mapped_column(Integer, index=True)
    carried_from: Mapped[int | None] = mapped_column(Integer)


_TABLE = Rectification.__table__
_FIELDS = ("source", "title", "description", "standard_item", "responsible", "measures")
_WRITTEN = (*_FIELDS, "branch", "deadline", "status", "rounds", "updated_at", "closed_at")
# Prebuilt with bind parameters: this runs in every rectification step, and building the statement
# from literal values each time costs more than executing it.
_UPDATE = Prepared(
    update(_TABLE)
    .where(_TABLE.c.instance_id == bindparam("row_id"))
    .values({name: bindparam(name) for name in _WRITTEN})
)
_INSERT = insert(_TABLE)


def _latest_data(workflow) -> dict[str, Any]:
    task = workflow.last_task or workflow.get_tasks(spec_name="Start")[0]
    return task.data


def status_of(completed: bool, open_steps: set[str], signed_off: bool = False) -> str:
    """The item's status from where its process stands; a position the ledger does not know is an error.

    Exactly one of the main steps is open while the item runs; 督办/约谈 run beside it (see `SUPERVISION`).
    Items started on a diagram version whose 已销号 did not yet end them may still have 督办/约谈 open
    after an approved sign-off: they are closed all the same.
    """
    if completed or (signed_off and open_steps and open_steps <= SUPERVISION.keys()):
        return CLOSED
    main = [STATUS_BY_STEP[step] for step in ("signoff", "fix", "assign", "register") if step in open_steps]
    unknown = open_steps - STATUS_BY_STEP.keys() - SUPERVISION.keys()
    if unknown or len(main) != 1:
        raise EngineError(f"整改台账无法识别流程的当前位置：{sorted(open_steps) or '没有待办步骤'}")
    return main[0]


def project(session: Session, row, workflow, open_steps: set[str], now: datetime) -> None:
    """Rewrite an item's ledger row from its workflow (called with every save of a rectification)."""
    data = _latest_data(workflow)
    status = status_of(row.status == "completed", open_steps, signed_off=data.get("approved") is True)
    deadline = data.get("deadline")
    signoffs = sum(
        1
        for t in workflow.tasks.values()
        if t.task_spec.bpmn_id == "signoff" and t.state == TaskState.COMPLETED
    )
    values = {
        **{name: data.get(name) if isinstance(data.get(name), str) else None for name in _FIELDS},
        "branch": row.branch,
        "deadline": date.fromisoformat(deadline) if isinstance(deadline, str) else None,
        "status": status,
        "rounds": max(0, signoffs - (1 if status == CLOSED else 0)),
        "updated_at": now,
        "closed_at": now if status == CLOSED else None,
    }
    conn = session.connection()
    if _UPDATE.run(conn, {**values, "row_id": row.id}) == 0:
        year = years.current_year(session, now)
        conn.execute(_INSERT, {**values, "instance_id": row.id, "created_at": now, "year": year})


def carry_over(session: Session, year: int, *, now: datetime, actor: str) -> list[int]:
    """Move the items of `year` that are not signed off into the next year's ledger; returns their ids."""
    ids = list(
        session.scalars(
            select(Rectification.instance_id).where(
                Rectification.year == year, Rectification.status != CLOSED
            )
        )
    )
    if ids:
        session.execute(
            update(_TABLE).where(_TABLE.c.instance_id.in_(ids)).values(year=year + 1, carried_from=year)
        )
    for instance_id in ids:
        audit.append(
            session,
            action="item.carried_over",
            actor=actor,
            occurred_at=now,
            instance_id=instance_id,
            branch=session.scalar(
                select(Rectification.branch).where(Rectification.instance_id == instance_id)
            ),
            data={"from_year": year, "to_year": year + 1},
        )
    return ids


@dataclass(frozen=True)
class LedgerRow:
    """A ledger row with its overdue flag as of now, and its supervision marker (督办中 / 待约谈)."""

    item: Rectification
    overdue: bool
    supervision: str | None = None
    next_step: str | None = None  # who acts next: "整改落实（zhangsan）"

    def as_json(self) -> dict[str, Any]:
        """The row as the API returns it."""
        item = self.item
        return {
            "id": item.instance_id,
            "instance_id": item.instance_id,
            "branch": item.branch,
            "source": item.source,
            "title": item.title,
            "standard_item": item.standard_item,
            "responsible": item.responsible,
            "deadline": item.deadline.isoformat() if item.deadline else None,
            "status": item.status,
            "supervision": self.supervision,
            "next_step": self.next_step,
            "overdue": self.overdue,
            "rounds": item.rounds,
            "created_at": item.created_at.isoformat(),
            "closed_at": item.closed_at.isoformat() if item.closed_at else None,
        }


def rows(
    session: Session,
    *,
    branches: frozenset[str] | None,
    now: datetime,
    limit: int = 500,
    offset: int = 0,
    **filters: Any,
) -> list[LedgerRow]:
    """One page of the ledger rows a reader may see (`branches` None: all), newest first, filtered.

    Filters: `branch`, `status`, `overdue` (see `each_row`).
    """
    query = _ledger(branches, now, **filters).limit(limit).offset(offset)
    return _with_flags(session, list(session.scalars(query)), now)


def each_row(
    session: Session, *, branches: frozenset[str] | None, now: datetime, **filters: Any
) -> Iterator[LedgerRow]:
    """Every ledger row a reader may see, newest first, read from the database in batches (for exports)."""
    query = _ledger(branches, now, **filters).execution_options(yield_per=500)
    for batch in session.scalars(query).partitions(500):
        yield from _with_flags(session, batch, now)


def _ledger(
    branches: frozenset[str] | None,
    now: datetime,
    *,
    branch: str | None = None,
    status: str | None = None,
    overdue: bool = False,
) -> Select:
    query = select(Rectification)
    if branches is not None:
        query = query.where(Rectification.branch.in_(branches))
    if branch:
        query = query.where(Rectification.branch == branch)
    if status:
        query = query.where(Rectification.status == status)
    if overdue:  # the same rule as `_with_flags`: open, and past the midnight that ends its deadline day
        today = now.astimezone(LOCAL_TZ).date()
        query = query.where(Rectification.status != CLOSED, Rectification.deadline < today)
    return query.order_by(Rectification.created_at.desc(), Rectification.instance_id.desc())


def _with_flags(session: Session, items: list[Rectification], now: datetime) -> list[LedgerRow]:
    """Overdue flags, and from the items' open tasks: supervision markers and who acts next."""
    marks: dict[int, list[str]] = {}
    nexts: dict[int, list[str]] = {}
    branches = {item.instance_id: item.branch for item in items}
    if items:
        open_tasks = (
            select(
                TaskRecord.instance_id,
                TaskRecord.bpmn_id,
                TaskRecord.title,
                TaskRecord.assignee,
                TaskRecord.lane,
            )
            .where(
                TaskRecord.status == "open", TaskRecord.instance_id.in_([item.instance_id for item in items])
            )
            .order_by(TaskRecord.created_at)
        )
        for instance_id, step, title, assignee, lane in session.execute(open_tasks):
            if step in SUPERVISION:
                marks.setdefault(instance_id, []).append(SUPERVISION[step])
            else:
                nexts.setdefault(instance_id, []).append(
                    f"{title}（{holder(assignee, lane, branches[instance_id])}）"
                )
    rows = []
    for item in items:
        overdue = item.status != CLOSED and item.deadline is not None and end_of_day(item.deadline) <= now
        mark = "、".join(sorted(set(marks.get(item.instance_id, [])), key=list(SUPERVISION.values()).index))
        rows.append(
            LedgerRow(item, overdue, mark or None, "、".join(nexts.get(item.instance_id, [])) or None)
        )
    return rows
