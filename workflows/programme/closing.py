"""Closing a programme year before it finished on its own, as a unit of work (`zhibu programme close`).

The office starts a `year_close` instance; its message 公司年度结束 interrupts the year's programme,
which ends every branch programme still running (each records where it stood) and carries the open
rectification items into the next year's ledger, all in the same transaction when the programme can be
locked at once (else the scheduler delivers the message at its next run). One transaction (`run_step`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import steps
from workflows.engine.clock import Clock
from workflows.engine.errors import Conflict, NotFound
from workflows.engine.runner import run_step
from workflows.programme import coordination, ledger, years


@dataclass(frozen=True)
class Closed:
    """What closing a year did (`closed` False: the programme was busy; the scheduler finishes it)."""

    year: int
    closed: bool
    carried: int
    ended: int


def close_programme(
    factory: sessionmaker[Session], year: int, reason: str, *, actor: str, clock: Clock
) -> Closed:
    """Close `year` now, with the office's reason; NotFound if it never started, Conflict if closed."""

    def step(session: Session) -> Closed:
        row = years.of_year(session, year)
        if row is None:
            raise NotFound(f"{year} 年度工作尚未启动")
        years.refuse_closed(row)
        steps.start(session, "year_close", {"year": year, "reason": reason}, actor=actor, clock=clock)
        session.refresh(row)
        carried = session.scalar(
            select(func.count())
            .select_from(ledger.Rectification)
            .where(ledger.Rectification.carried_from == year)
        )
        ended = session.scalar(
            select(func.count())
            .select_from(coordination.BranchYear)
            .where(coordination.BranchYear.year == year, coordination.BranchYear.end_state.is_not(None))
        )
        return Closed(year, row.closed_at is not None, carried or 0, ended or 0)

    if not reason.strip():
        raise Conflict("请写明结束年度的理由")
    return run_step(
        factory, step, clock=clock, actor=actor, context={"action": "programme.close", "year": year}
    )
