"""Recurring obligations: occurrences per branch and period, and missed ones as shortfalls."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from tests.support import PROGRAMME_START, Company, Driver, build_company
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction
from workflows.programme import obligations, org, units

BRANCH_OBLIGATIONS = [
    o for o in obligations.catalogue() if o["scope"] == "branch" and o["frequency"] != "term"
]
RECORD = {"date": "2026-06-20", "attendees": 9, "topic": "学习", "minutes": "会议记录"}


@pytest.mark.parametrize(
    "frequency,day,expected",
    [
        ("monthly", date(2026, 2, 14), ("2026-02", date(2026, 2, 1), date(2026, 2, 28))),
        ("quarterly", date(2026, 11, 24), ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31))),
        ("quarterly", date(2026, 4, 1), ("2026-Q2", date(2026, 4, 1), date(2026, 6, 30))),
        ("yearly", date(2027, 1, 1), ("2027", date(2027, 1, 1), date(2027, 12, 31))),
    ],
)
def test_periods(frequency, day, expected):
    assert obligations.period_of(frequency, day) == expected


@pytest.fixture
def company(db_url, factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now(), ["B1", "B2"])
        org.branch(session, "B1").term_end = date(2026, 8, 15)  # re-election falls due within 90 days
    driver = Driver(db_url, clock, "restored")
    yield Company(driver)
    driver.close()


def record(c: Company, user: str, name: str, data: dict = RECORD, branch: str = "B1") -> None:
    [task] = [
        t
        for t in c._box(user).todo
        if t.bpmn_id in ("record", "visit") and t.branch == branch and name in c.data(t.id)["title"]
    ]
    c.driver.complete(task.id, data, actor=user)


def test_occurrences_appear_on_schedule_once(company):
    c, clock = company, company.driver.clock
    created = units.generate_occurrences(c.driver.factory(), clock=clock)
    # per branch: the branch obligations; B1 also its re-election; committee1 visits both branches
    assert created == 2 * len(BRANCH_OBLIGATIONS) + 1 + 2
    assert units.generate_occurrences(c.driver.factory(), clock=clock) == 0
    assert sorted(t for t in c.todo("committee1") if t[0] == "visit") == [("visit", "B1"), ("visit", "B2")]
    assert len([t for t in c.todo("off_B1") if t[0] == "record"]) == len(BRANCH_OBLIGATIONS) + 1
    assert not [t for t in c.todo("sec_B1") if t[0] == "visit"]
    clock.set(datetime(2026, 7, 1, 8, 0, tzinfo=LOCAL_TZ))
    # July opens a month and a quarter: the monthly and quarterly obligations of both branches, two visits.
    new = [o for o in BRANCH_OBLIGATIONS if o["frequency"] in ("monthly", "quarterly")]
    expected = 2 * len(new) + 2
    assert units.generate_occurrences(c.driver.factory(), clock=clock) == expected
    with c.driver.factory()() as session:
        opened = session.scalars(
            select(obligations.Occurrence).where(obligations.Occurrence.period.in_(["2026-07", "2026-Q3"]))
        ).all()
    due = {o.period: o.due_at.astimezone(LOCAL_TZ).date() for o in opened}
    assert len(opened) == expected and due == {"2026-07": date(2026, 8, 1), "2026-Q3": date(2026, 10, 1)}


def test_a_missed_occurrence_is_a_shortfall_seen_by_the_self_check(company):
    c, clock = company, company.driver.clock
    units.generate_occurrences(c.driver.factory(), clock=clock)
    record(c, "sec_B1", "支部委员会会议")
    record(c, "committee1", "党委委员联系点调研指导")
    with c.driver.factory()() as session:
        assert obligations.missed(session, "B1", clock.now()) == []
    clock.set(datetime(2026, 7, 1, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert c.driver.tick() >= 2  # the June deadlines fired
    with c.driver.factory()() as session:
        missed = obligations.missed(session, "B1", clock.now())
    names = {(m["name"], m["period"], m["status"]) for m in missed}
    assert ("党小组会", "2026-06", "未开展") in names and ("主题党日", "2026-06", "未开展") in names
    assert not any(m["name"] in ("支部委员会会议", "党委委员联系点调研指导") for m in missed)
    assert {m["period"] for m in missed} == {"2026-06", "2026-Q2"}  # June closed a month and a quarter
    assert ("支部党员大会", "2026-Q2", "未开展") in names
    [late] = [t for t in c._box("grp_B1").todo if "党小组会" in c.data(t.id)["title"]]
    assert late.escalation_level == 1
    record(c, "grp_B1", "党小组会", {**RECORD, "date": "2026-07-01"})
    with c.driver.factory()() as session:
        statuses = {m["name"]: m["status"] for m in obligations.missed(session, "B1", clock.now())}
    assert statuses["党小组会"] == "逾期补记" and statuses["主题党日"] == "未开展"

    # The self-check of the branch programme shows the shortfalls next to the catalog.
    data = {"year": 2026, "branch": "B1", "title": "B1 标准化建设"}
    data.update(
        {
            f"phase{n}_deadline": d
            for n, d in enumerate(["2026-07-31", "2026-08-31", "2026-12-31", "2027-01-31"], 1)
        }
    )
    c.driver.start(data, process="branch_programme", actor="office1")
    item = {"task": "规范记录", "measures": "专人记录", "deadline": "2026-12-31", "responsible": "书记"}
    c.do(
        "sec_B1",
        "mobilize",
        {"meeting_date": "2026-07-02", "attendees": 9, "plan": "计划", "plan_items": [item]},
    )
    c.do("office1", "review_plan", {"approved": True}, "B1")
    people = ["sec_B1", "mem_B1", "grp_B1", "off_B1"]
    c.do("sec_B1", "training", {"sessions": [{"date": "2026-07-03", "topic": "手册"}], "trained": people})
    entry = {"title": "补齐记录", "measures": "补记", "responsible_unit": "支委会", "deadline": "2026-09-30"}
    c.do("sec_B1", "task_list", {"items": [entry]})
    c.do("sec_B1", "study", {"date": "2026-07-05", "attendees": 9, "notes": "学习"})
    seen = c.data(c.task("sec_B1", "self_check").id)["missed"]
    assert {(m["name"], m["status"]) for m in seen} >= {("党小组会", "逾期补记"), ("主题党日", "未开展")}
    assert {m["standard_item"] for m in seen} >= {"3.1", "3.3"}
