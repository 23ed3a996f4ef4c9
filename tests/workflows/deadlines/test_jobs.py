"""Scheduler jobs: deadlines follow calendar changes; daily digests go out once per person and day."""

from __future__ import annotations

from datetime import date, datetime

from tests.support import ASSIGNED, REGISTERED, Driver
from workflows.deadlines import calendar, jobs, notify
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction


def test_open_deadlines_move_when_the_calendar_changes(db_url, deployed, clock):
    driver = Driver(db_url, clock, "restored")
    iid = driver.start(REGISTERED, actor="office1")
    driver.complete(driver.only_task(iid).id, {**ASSIGNED, "deadline": "2027-01-08"}, actor="secretary1")
    other = driver.start(REGISTERED, actor="office1")  # no timer yet: untouched
    fix = driver.only_task(iid)
    assert fix.due_at == datetime(2027, 1, 9, tzinfo=LOCAL_TZ)  # a Friday, by the weekday fallback
    with driver.factory()() as session:
        assert not calendar.load(session).confirmed_until(date(2026, 11, 24), date(2027, 1, 8))
    with transaction(driver.factory()) as session:  # the State Council's schedule arrives: 1/8 is a holiday
        calendar.add_day(session, date(2027, 1, 8), "holiday", "假设的假日", now=clock.now(), actor="office1")
    assert jobs.recompute_deadlines(driver.factory(), clock=clock, actor="office1") == 1
    fix = driver.only_task(iid)
    assert fix.due_at == datetime(2027, 1, 12, tzinfo=LOCAL_TZ)  # moved to Monday 1/11
    # The reminder stays: 3 working days before Monday 1/11, skipping the holiday, is still 1/5.
    assert driver.instance(iid).next_due_at == datetime(2027, 1, 6, tzinfo=LOCAL_TZ)
    [event] = [e for e in driver.events(iid) if e.action == "timer.recomputed"]
    assert "2027-01-12" in event.data and event.actor == "office1"
    assert not [e for e in driver.events(other) if e.action == "timer.recomputed"]
    assert (
        jobs.recompute_deadlines(driver.factory(), clock=clock, actor="office1") == 0
    )  # nothing moves twice
    with driver.factory()() as session:
        assert calendar.load(session).confirmed_until(date(2026, 11, 24), date(2027, 1, 8))
    assert driver.mismatches() == []
    driver.close()


def test_daily_digest_once_per_person_and_day(db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    late = driver.start(REGISTERED, actor="office1")
    soon = driver.start({**REGISTERED, "title": "党课记录不全"}, actor="office1")
    driver.complete(driver.only_task(late).id, {**ASSIGNED, "deadline": "2026-11-25"}, actor="secretary1")
    driver.start(
        {**REGISTERED, "title": "公开栏未更新"}, actor="office1"
    )  # secretary1's own 明确责任, no deadline
    clock.set(datetime(2026, 11, 26, 8, 0, tzinfo=LOCAL_TZ))
    driver.tick()
    with transaction(driver.factory()) as session:
        notify.set_preferences(session, "zhangsan", digest_enabled=True)
    # secretary1 has no deadline in the inbox yet; zhangsan is not a secretary: nobody gets one
    assert jobs.send_digests(driver.factory(), clock=clock) == 0
    clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=LOCAL_TZ))
    driver.complete(
        driver.only_task(soon).id, {**ASSIGNED, "responsible": "secretary1", "deadline": "2026-12-01"}
    )
    assert jobs.send_digests(driver.factory(), clock=clock) == 1
    assert jobs.send_digests(driver.factory(), clock=clock) == 0  # once a day
    with driver.factory()() as session:
        [digest] = [n for n in notify.inbox(session, "secretary1") if n.kind == "digest"]
    assert digest.title == "每日待办提醒：逾期 0 项，即将到期 1 项"
    assert "整改落实：党课记录不全" in digest.body and "12-01 24时前" in digest.body
    clock.set(datetime(2026, 12, 2, 8, 0, tzinfo=LOCAL_TZ))
    driver.tick()
    with transaction(driver.factory()) as session:
        notify.set_preferences(session, "secretary1", digest_enabled=False)
    assert jobs.send_digests(driver.factory(), clock=clock) == 0  # opted out
    driver.close()
