"""The office dashboard with the notices of criticism (通报) counted per branch.

The dashboard itself is the programme's (`workflows.programme.dashboard`); notices belong to the
escalation ladder, one layer up, so the two are put together here. Read-only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflows.deadlines.escalation import Notice
from workflows.programme import dashboard


def build(session: Session, now: datetime, year: int | None = None) -> dashboard.Dashboard:
    """The dashboard as of now, with each branch's notices of criticism counted."""
    counts = dict(
        session.execute(
            select(Notice.branch_code, func.count())
            .where(Notice.branch_code.is_not(None))
            .group_by(Notice.branch_code)
        ).all()
    )
    return dashboard.build(session, now, year, notices=counts)
