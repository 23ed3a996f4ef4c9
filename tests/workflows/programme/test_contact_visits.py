"""不达标不脱钩: a committee member's monthly visits go on until the branch's latest grade passes and
that grade's programme year has ended (its acceptance deadline passed)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from tests.support import PROGRAMME_START, build_company
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import transaction
from workflows.programme import dashboard, obligations, units

DEADLINES = ["2026-07-31", "2026-08-31", "2026-12-31", "2027-01-20"]  # acceptance ends 20 January


def at(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time().replace(hour=9), LOCAL_TZ)


@pytest.fixture
def company(factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now(), ["B1", "B2"])  # committee1 contacts both
    units.start_programme(factory, 2026, DEADLINES, actor="office1", clock=clock)
    return factory, clock


def visits(factory, branch: str) -> list[str]:
    with factory() as session:
        query = select(obligations.Occurrence.period).where(
            obligations.Occurrence.obligation == "contact_visit", obligations.Occurrence.branch_code == branch
        )
        return sorted(session.scalars(query))


def run_at(factory, clock: FixedClock, day: str) -> None:
    clock.set(at(day))
    units.generate_occurrences(factory, clock=clock)


def grade(factory, year: int, branch: str, grade: str, day: str) -> None:
    with transaction(factory) as session:
        dashboard.record_grade(session, year, branch, 85.0 if grade != "不达标" else 60.0, grade, at(day))


def test_visits_stop_once_the_branch_passed_and_its_year_ended(company):
    factory, clock = company
    run_at(factory, clock, "2026-12-01")
    grade(factory, 2026, "B1", "达标", "2027-01-10")
    grade(factory, 2026, "B2", "不达标", "2027-01-10")
    run_at(factory, clock, "2027-01-15")  # passed, but the year's acceptance has not ended yet
    assert visits(factory, "B1")[-1] == "2027-01"
    run_at(factory, clock, "2027-02-03")
    run_at(factory, clock, "2027-03-02")
    assert visits(factory, "B1")[-1] == "2027-01"  # detached: no visits after the year ended
    assert visits(factory, "B2")[-2:] == ["2027-02", "2027-03"]  # 不达标不脱钩


def test_a_scheduler_back_after_the_year_ended_makes_up_only_the_visits_before(company):
    factory, clock = company
    run_at(factory, clock, "2026-12-01")
    grade(factory, 2026, "B1", "示范", "2027-01-10")  # a passing band too
    run_at(factory, clock, "2027-03-02")
    assert visits(factory, "B1") == [f"2026-{m:02d}" for m in range(6, 13)] + ["2027-01"]
    assert visits(factory, "B2")[-3:] == ["2027-01", "2027-02", "2027-03"]


def test_a_later_failing_grade_attaches_the_branch_again_from_that_day(company):
    factory, clock = company
    grade(factory, 2026, "B1", "达标", "2027-01-10")
    run_at(factory, clock, "2027-02-03")
    grade(factory, 2027, "B1", "不达标", "2028-01-10")
    run_at(factory, clock, "2028-01-12")
    b1 = visits(factory, "B1")
    assert "2027-02" not in b1 and "2027-12" not in b1  # the detached months are not made up
    assert b1[-1] == "2028-01"


def test_a_branch_never_graded_or_failing_stays_attached():
    day = date(2027, 6, 1)
    assert obligations.attached_spans([], day) == [(None, None)]
    failed = obligations.Graded(2026, False, date(2027, 1, 31), date(2027, 1, 10))
    assert obligations.attached_spans([failed], day) == [(None, None)]
    passed = obligations.Graded(2026, True, date(2027, 1, 31), date(2027, 1, 10))
    assert obligations.attached_spans([passed], date(2027, 1, 31)) == [(None, None)]  # deadline day itself
    assert obligations.attached_spans([passed], date(2027, 2, 1)) == [(None, date(2027, 1, 31))]
    again = obligations.Graded(2027, False, date(2028, 1, 31), date(2028, 1, 10))
    assert obligations.attached_spans([again, passed], date(2028, 2, 1)) == [
        (None, date(2027, 1, 31)),
        (date(2028, 1, 10), None),
    ]


def test_the_year_end_is_the_acceptance_deadline_the_year_started_with(company):
    factory, _ = company
    with factory() as session:
        assert obligations.year_end(session, 2026) == date(2027, 1, 20)
        assert obligations.year_end(session, 2030) == date(2031, 1, 31)  # not started: the plan's date
        assert obligations.passing_grades(session, 2026) == {"示范", "达标"}
