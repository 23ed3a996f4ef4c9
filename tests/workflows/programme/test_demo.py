"""The demo company: twelve branches, every role, a programme year in flight with some work overdue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from workflows.engine import consistency
from workflows.engine.audit import verify
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.models import ProcessInstance, TaskRecord
from workflows.programme import demo, org


def test_demo_loads_once_and_shows_a_programme_in_flight(factory):
    made = demo.run(factory, FixedClock(datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ)))
    assert made is not None and made["year"] == 2026
    with factory() as session:
        assert len(org.active_branches(session)) == 12
        roles = {role for (role,) in session.execute(select(org.RoleGrant.role))}
        assert roles == set(org.ROLES)
        grouped = select(ProcessInstance.process_id, func.count()).group_by(ProcessInstance.process_id)
        processes = {process_id: count for process_id, count in session.execute(grouped)}
        assert processes["programme"] == 1 and processes["branch_programme"] == 12
        assert (
            processes["rectification"] >= 3 and processes["spot_check"] == 2 and processes["obligation"] > 100
        )
        late = session.scalars(
            select(TaskRecord).where(TaskRecord.status == "open", TaskRecord.escalation_level > 0)
        ).all()
        assert {(t.bpmn_id, t.branch) for t in late} >= {
            ("training", "WZ01"),
            ("self_check", "GC01"),
            ("fix", "JX01"),
        }
        assert list(consistency.mismatches(session)) == [] and verify(session).ok
    assert demo.run(factory, FixedClock(datetime(2026, 11, 25, tzinfo=LOCAL_TZ))) is None


def test_demo_before_june_shows_last_years_programme():
    assert demo.programme_year(datetime(2027, 3, 1).date()) == 2026
    assert demo.programme_year(datetime(2027, 6, 1).date()) == 2027
