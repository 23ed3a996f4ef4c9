"""Periods missed while no scheduler ran are created when one runs again, each exactly once, from the
programme's start (or the branch's creation, or the contact point's, if later) and never before."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.support import PROGRAMME_START, Company, Driver, build_company
from workflows.deadlines import jobs
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import transaction
from workflows.engine.models import ProcessInstance
from workflows.programme import obligations, org, units

MONTHLY = [
    o["code"] for o in obligations.catalogue() if o["frequency"] == "monthly" and o["scope"] == "branch"
]
QUARTERLY = [o["code"] for o in obligations.catalogue() if o["frequency"] == "quarterly"]
BACK = datetime(2026, 9, 10, 10, 0, tzinfo=LOCAL_TZ)  # the scheduler ran last on 1 June
# Per branch B1, B2: July, August, September of the monthly ones and committee1's visits; Q3 of the quarterly.
MADE_UP = 2 * (3 * len(MONTHLY) + 3 + len(QUARTERLY))


@pytest.fixture
def company(db_url, factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now(), ["B1", "B2"])
    driver = Driver(db_url, clock, "restored")
    units.start_programme(driver.factory(), 2026, None, actor="office1", clock=clock)
    clock.set(datetime(2026, 6, 1, 10, 0, tzinfo=LOCAL_TZ))
    units.generate_occurrences(driver.factory(), clock=clock)
    clock.set(BACK)
    yield Company(driver)
    driver.close()


def _occurrences(c: Company) -> list[obligations.Occurrence]:
    with c.driver.factory()() as session:
        return list(session.scalars(select(obligations.Occurrence)))


def _keys(rows) -> Counter:
    return Counter((o.obligation, o.branch_code, o.username, o.period) for o in rows)


def _missed_once(c: Company) -> None:
    """Every occurrence past its deadline and unrecorded has exactly one rectification item of its own."""
    rows = _occurrences(c)
    missed = [o for o in rows if o.due_at <= c.driver.clock.now() and o.recorded_at is None]
    with c.driver.factory()() as session:
        items = list(
            session.scalars(select(ProcessInstance.id).where(ProcessInstance.process_id == "rectification"))
        )
    assert sorted(o.rectification_id for o in missed) == sorted(items)
    assert all(o.rectification_id is None for o in rows if o.due_at > c.driver.clock.now())


def test_a_scheduler_back_after_two_months_makes_up_both_once(company):
    c, clock = company, company.driver.clock
    assert units.generate_occurrences(c.driver.factory(), clock=clock) == MADE_UP
    assert units.generate_occurrences(c.driver.factory(), clock=clock) == 0
    rows = _occurrences(c)
    assert max(_keys(rows).values()) == 1
    periods = {o.period for o in rows if o.obligation == "group_meeting" and o.branch_code == "B1"}
    assert periods == {"2026-06", "2026-07", "2026-08", "2026-09"}
    july = [o for o in rows if o.period == "2026-07"]
    assert len(july) == 2 * len(MONTHLY) + 2 and all(o.due_at < clock.now() for o in july)
    # The made-up past periods are missed: one rectification item each at the next sweep, none after.
    clock.set(datetime(2026, 9, 10, 10, 1, tzinfo=LOCAL_TZ))
    assert jobs.recompute_deadlines(c.driver.factory(), clock=clock, actor="t") == 0  # their timers stay put
    c.driver.tick()
    _missed_once(c)
    with c.driver.factory()() as session:
        first = {o.id: o.rectification_id for o in session.scalars(select(obligations.Occurrence))}
    c.driver.tick()
    assert units.generate_occurrences(c.driver.factory(), clock=clock) == 0
    c.driver.tick()
    _missed_once(c)
    with c.driver.factory()() as session:
        assert {o.id: o.rectification_id for o in session.scalars(select(obligations.Occurrence))} == first
    assert c.driver.mismatches() == [] and c.driver.verify().ok


def test_two_schedulers_back_at_once_make_each_period_once(company, db_url):
    c, clock = company, company.driver.clock
    drivers = [Driver(db_url, FixedClock(BACK), "straight") for _ in range(2)]
    barrier = threading.Barrier(2)
    made: list[object] = []

    def run(driver: Driver) -> None:
        factory = driver.factory()
        barrier.wait()
        try:
            made.append(units.generate_occurrences(factory, clock=driver.clock))
        except Exception as exc:  # noqa: BLE001 - the outcome itself is what is asserted
            made.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(n, int) for n in made), made
    assert sum(made) == MADE_UP
    assert max(_keys(_occurrences(c)).values()) == 1
    # Two sweeps at once too: each missed occurrence still becomes one item.
    later = datetime(2026, 9, 10, 10, 1, tzinfo=LOCAL_TZ)
    for each in (clock, *(d.clock for d in drivers)):
        each.set(later)
    sweeps = [threading.Thread(target=d.tick) for d in drivers]
    for thread in sweeps:
        thread.start()
    for thread in sweeps:
        thread.join(timeout=120)
    c.driver.tick()
    _missed_once(c)
    assert c.driver.mismatches() == [] and c.driver.verify().ok
    for driver in drivers:
        driver.close()


def test_never_before_the_branch_or_the_contact_point_existed(company):
    c, clock = company, company.driver.clock
    clock.set(datetime(2026, 8, 20, 9, 0, tzinfo=LOCAL_TZ))
    with transaction(c.driver.factory()) as session:
        org.add_branch(session, "B3", "第B3党支部", now=clock.now(), actor="office1")
        org.add_contact(session, "committee2", "B2", now=clock.now(), actor="office1")
    clock.set(BACK)
    units.generate_occurrences(c.driver.factory(), clock=clock)
    rows = _occurrences(c)
    b3 = {(o.obligation, o.period) for o in rows if o.branch_code == "B3"}
    assert {p for code, p in b3 if code == "theme_day"} == {"2026-08", "2026-09"}
    assert {p for code, p in b3 if code == "party_lecture"} == {"2026-Q3"}
    assert ("life_meeting", "2026") in b3
    visits = {o.period for o in rows if (o.username, o.branch_code) == ("committee2", "B2")}
    assert visits == {"2026-08", "2026-09"}


def test_before_any_programme_year_only_the_current_periods_are_made(db_url, factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now(), ["B1"])
    clock.set(datetime(2026, 9, 10, 10, 0, tzinfo=LOCAL_TZ))
    units.generate_occurrences(factory, clock=clock)
    with factory() as session:
        periods = set(session.scalars(select(obligations.Occurrence.period)))
    assert periods == {"2026-09", "2026-Q3", "2026"}


def test_a_programme_started_after_the_branch_starts_the_count(db_url, factory, clock):
    clock.set(datetime(2026, 1, 5, 9, 0, tzinfo=LOCAL_TZ))
    with transaction(factory) as session:
        build_company(session, clock.now(), ["B1"])
    clock.set(datetime(2026, 5, 20, 9, 0, tzinfo=LOCAL_TZ))
    units.start_programme(factory, 2026, None, actor="office1", clock=clock)
    clock.set(datetime(2026, 7, 2, 9, 0, tzinfo=LOCAL_TZ))
    units.generate_occurrences(factory, clock=clock)
    with factory() as session:
        periods = set(
            session.scalars(
                select(obligations.Occurrence.period).where(obligations.Occurrence.obligation == "theme_day")
            )
        )
        quarters = set(
            session.scalars(
                select(obligations.Occurrence.period).where(
                    obligations.Occurrence.obligation == "party_lecture"
                )
            )
        )
    assert periods == {"2026-05", "2026-06", "2026-07"} and quarters == {"2026-Q2", "2026-Q3"}


def test_periods_between():
    assert [p[0] for p in obligations.periods_between("monthly", *_days("2026-11-30", "2027-02-01"))] == [
        "2026-11",
        "2026-12",
        "2027-01",
        "2027-02",
    ]
    assert [p[0] for p in obligations.periods_between("quarterly", *_days("2026-06-01", "2026-07-01"))] == [
        "2026-Q2",
        "2026-Q3",
    ]
    assert obligations.periods_between("yearly", *_days("2026-06-01", "2026-05-01")) == []


def _days(first: str, last: str):
    return datetime.fromisoformat(first).date(), datetime.fromisoformat(last).date()
