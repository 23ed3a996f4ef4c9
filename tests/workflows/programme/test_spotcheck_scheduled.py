"""Scheduled spot checks (定期抽查): started when their date comes, each once (two schedulers too), drawn
with a seed derived from the schedule entry and reproducible from the audit trail like the random draw."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.support import COMPANY_BRANCHES, PROGRAMME_START, Company, Driver, build_company
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import transaction
from workflows.engine.errors import InvalidInput
from workflows.engine.models import AuditEvent, ProcessInstance
from workflows.programme import spotcheck, units
from workflows.programme.units import start_programme


def at(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=LOCAL_TZ)


@pytest.fixture
def company(db_url, factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now())
    driver = Driver(db_url, clock, "restored")
    start_programme(driver.factory(), 2026, None, actor="office1", clock=clock)
    yield Company(driver)
    driver.close()


def drawn_events(c: Company) -> list[dict]:
    with c.driver.factory()() as session:
        query = select(AuditEvent).where(AuditEvent.action == "spotcheck.drawn").order_by(AuditEvent.seq)
        return [json.loads(e.data) for e in session.scalars(query)]


def runs(c: Company) -> list[spotcheck.SpotCheckRun]:
    with c.driver.factory()() as session:
        query = select(spotcheck.SpotCheckRun).order_by(spotcheck.SpotCheckRun.scheduled_on)
        return list(session.scalars(query))


def spot_checks(c: Company) -> dict[int, ProcessInstance]:
    with c.driver.factory()() as session:
        query = select(ProcessInstance).where(ProcessInstance.process_id == "spot_check")
        return {row.id: row for row in session.scalars(query)}


def test_a_scheduled_check_starts_on_its_date_once_with_a_seed_from_its_entry(company):
    c, clock = company, company.driver.clock
    clock.set(at(6, 24))
    assert units.start_scheduled_spot_checks(c.driver.factory(), clock=clock) == 0
    clock.set(at(6, 25))
    assert units.start_scheduled_spot_checks(c.driver.factory(), clock=clock) == 1
    assert units.start_scheduled_spot_checks(c.driver.factory(), clock=clock) == 0
    [payload] = drawn_events(c)
    seed = hashlib.sha256(b"2026:Q2").hexdigest()
    assert (payload["kind"], payload["seed"], payload["count"]) == ("定期抽查", seed, 2)
    assert payload["candidates"] == COMPANY_BRANCHES
    assert payload["drawn"] == spotcheck.draw(COMPANY_BRANCHES, 2, seed)
    assert payload["schedule"] == {"year": 2026, "id": "Q2", "name": "二季度定期抽查", "date": "2026-06-25"}
    assert spotcheck.reproduce(payload)
    [run] = runs(c)
    instances = json.loads(run.drawn)
    assert list(instances) == payload["drawn"] and run.seed == seed
    checks = spot_checks(c)
    assert sorted(checks) == sorted(instances.values())
    assert {(checks[i].branch, checks[i].title) for i in instances.values()} == {
        (code, f"二季度定期抽查（2026年）：{code}") for code in payload["drawn"]
    }
    assert sorted(t[1] for t in c.todo("office1") if t[0] == "inspect") == sorted(payload["drawn"])
    assert c.driver.mismatches() == [] and c.driver.verify().ok


def test_checks_missed_while_no_scheduler_ran_start_on_its_return_and_never_before_the_programme(company):
    c, clock = company, company.driver.clock
    clock.set(at(12, 20))
    assert units.start_scheduled_spot_checks(c.driver.factory(), clock=clock) == 3  # Q2, Q3, Q4 of 2026
    assert [(r.year, r.entry) for r in runs(c)] == [(2026, "Q2"), (2026, "Q3"), (2026, "Q4")]  # not Q1
    clock.set(at(3, 25, 2027))
    assert units.start_scheduled_spot_checks(c.driver.factory(), clock=clock) == 1
    payloads = drawn_events(c)
    assert [p["seed"] for p in payloads] == [
        spotcheck.scheduled_seed(year, entry)
        for year, entry in ((2026, "Q2"), (2026, "Q3"), (2026, "Q4"), (2027, "Q1"))
    ]
    assert all(spotcheck.reproduce(p) for p in payloads)
    assert len(spot_checks(c)) == 4 * 2


def test_two_schedulers_at_once_start_each_check_once(company, db_url):
    c = company
    drivers = [Driver(db_url, FixedClock(at(12, 20)), "straight") for _ in range(2)]
    barrier = threading.Barrier(2)
    started: list[object] = []

    def run(driver: Driver) -> None:
        factory = driver.factory()
        barrier.wait()
        try:
            started.append(units.start_scheduled_spot_checks(factory, clock=driver.clock))
        except Exception as exc:  # noqa: BLE001 - the outcome itself is what is asserted
            started.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(n, int) for n in started) and sum(started) == 3, started
    assert len(runs(c)) == 3 and len(drawn_events(c)) == 3 and len(spot_checks(c)) == 3 * 2
    assert c.driver.mismatches() == [] and c.driver.verify().ok
    for driver in drivers:
        driver.close()


def test_a_scheduled_seed_that_is_not_its_entrys_does_not_reproduce():
    payload = spotcheck.record("定期抽查", COMPANY_BRANCHES, 2, "chosen-by-someone")
    payload["schedule"] = {"year": 2026, "id": "Q3", "name": "三季度定期抽查", "date": "2026-09-25"}
    assert spotcheck.draw(COMPANY_BRANCHES, 2, "chosen-by-someone") == payload["drawn"]
    assert not spotcheck.reproduce(payload)  # the draw fits its seed, but the seed is not the entry's
    honest = spotcheck.record("定期抽查", COMPANY_BRANCHES, 2, spotcheck.scheduled_seed(2026, "Q3"))
    assert spotcheck.reproduce({**honest, "schedule": payload["schedule"]})


@pytest.mark.parametrize(
    "checks,message",
    [
        ([{"id": "Q1", "date": "03-25", "count": 2}, {"id": "Q1", "date": "06-25", "count": 2}], "不重复"),
        ([{"id": "Q1", "date": "02-29", "count": 2}], "月-日"),
        ([{"id": "Q1", "date": "2026-03-25", "count": 2}], "月-日"),
        ([{"id": "Q1", "date": "03-25", "count": -1}], "不小于 0"),
        ([{"id": "Q1", "date": "03-25", "count": True}], "不小于 0"),
    ],
)
def test_a_bad_schedule_is_refused_in_chinese(checks, message):
    with pytest.raises(InvalidInput, match=message):
        spotcheck.read_schedule({"checks": checks})


def test_the_schedule_file_is_valid():
    assert [c["id"] for c in spotcheck.schedule()] == ["Q1", "Q2", "Q3", "Q4"]


def test_both_kinds_of_draw_reproduce_from_the_trail(company):
    c, clock = company, company.driver.clock
    clock.set(at(6, 8))
    c.do("office1", "training", {"date": "2026-06-08", "topic": "标准化手册", "participants": 60})
    rows = [{"branch": b, "classification": "一般", "focus": "同步推进"} for b in COMPANY_BRANCHES]
    c.do("office1", "classify", {"classifications": rows, "contacts": []})
    c.do("office1", "pick_demonstration", {"branches": ["B1", "B2"], "reason": "基础较好"})
    c.do("office1", "spot_checks", {"kind": "随机抽查", "count": 2, "finished": False})
    clock.set(at(9, 26))
    assert units.start_scheduled_spot_checks(c.driver.factory(), clock=clock) == 2  # Q2 and Q3
    payloads = drawn_events(c)
    assert [p["kind"] for p in payloads] == ["随机抽查", "定期抽查", "定期抽查"]
    assert all(spotcheck.reproduce(p) for p in payloads)
    assert len(spot_checks(c)) == 3 * 2
    assert c.driver.verify().ok
