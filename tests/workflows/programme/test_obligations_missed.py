"""A missed occurrence becomes one rectification item (source 例行工作), whatever ticks or restarts follow;
a late record still completes the occurrence and makes no second item."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from tests.support import PROGRAMME_START, Company, Driver, build_company
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction
from workflows.engine.models import ProcessInstance
from workflows.programme import ledger, obligations, org, units

RECORD = {"date": "2026-06-20", "attendees": 9, "topic": "学习", "minutes": "会议记录"}
JULY_FIRST = datetime(2026, 7, 1, 0, 0, 1, tzinfo=LOCAL_TZ)


@pytest.fixture(params=["straight", "restored"])
def company(request, db_url, factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now(), ["B1", "B2"])
        org.user(session, "committee1").display_name = "周委员"
    driver = Driver(db_url, clock, request.param)
    yield Company(driver)
    driver.close()


def _record(c: Company, user: str, name: str, data: dict = RECORD, branch: str = "B1") -> None:
    [task] = [
        t
        for t in c._box(user).todo
        if t.bpmn_id in ("record", "visit") and t.branch == branch and name in c.data(t.id)["title"]
    ]
    c.driver.complete(task.id, data, actor=user)


def _occurrences(c: Company) -> list[obligations.Occurrence]:
    with c.driver.factory()() as session:
        return list(session.scalars(select(obligations.Occurrence).order_by(obligations.Occurrence.id)))


def _items(c: Company) -> dict[int, ledger.Rectification]:
    with c.driver.factory()() as session:
        return {r.instance_id: r for r in session.scalars(select(ledger.Rectification))}


def _rectification_instances(c: Company) -> int:
    with c.driver.factory()() as session:
        query = select(func.count()).where(ProcessInstance.process_id == "rectification")
        return session.scalar(query)


def test_each_missed_occurrence_becomes_one_rectification_item(company):
    c, clock = company, company.driver.clock
    units.generate_occurrences(c.driver.factory(), clock=clock)
    _record(c, "sec_B1", "支部委员会会议")
    _record(c, "committee1", "党委委员联系点调研指导")  # B1's visit; B2's is missed
    clock.set(datetime(2026, 6, 30, 23, 59, tzinfo=LOCAL_TZ))
    c.driver.tick()
    assert _rectification_instances(c) == 0  # nothing is missed before the period's last day ends

    clock.set(JULY_FIRST)
    c.driver.tick()
    for _ in range(3):  # later ticks, on fresh engines in "restored" mode, find nothing more to do
        c.driver.tick()
    due = [o for o in _occurrences(c) if o.due_at <= clock.now()]
    missed = [o for o in due if o.recorded_at is None]
    assert {(o.obligation, o.branch_code) for o in due if o.recorded_at} == {
        ("committee_meeting", "B1"),
        ("contact_visit", "B1"),
    }
    items = _items(c)
    assert len(items) == len(missed) == _rectification_instances(c)
    assert sorted(o.rectification_id for o in missed) == sorted(items)  # each occurrence keeps its item's id
    assert all(o.rectification_id is None for o in due if o.recorded_at)

    [meeting] = [o for o in missed if (o.obligation, o.branch_code) == ("group_meeting", "B1")]
    item = items[meeting.rectification_id]
    assert (item.title, item.branch, item.source, item.standard_item, item.status) == (
        "例行工作缺项：党小组会（2026-06）",
        "B1",
        "例行工作",
        "3.1",
        "待分派",
    )
    assert "2026-06-01 至 2026-06-30" in item.description and "未记录" in item.description
    [visit] = [o for o in missed if o.obligation == "contact_visit"]
    assert items[visit.rectification_id].title == "例行工作缺项：党委委员联系点调研指导（2026-06，周委员）"
    assert items[visit.rectification_id].branch == "B2"
    # The branch secretary takes the item on (明确责任), like any other problem.
    assigned = [t for t in c._box("sec_B1").todo if t.bpmn_id == "assign"]
    assert len(assigned) == len([o for o in missed if o.branch_code == "B1"])
    with c.driver.factory()() as session:
        listed = obligations.missed(session, "B1", clock.now())
    assert {m["rectification_id"] for m in listed} == {
        o.rectification_id for o in missed if o.branch_code == "B1"
    }
    assert c.driver.mismatches() == [] and c.driver.verify().ok


def test_a_late_record_completes_the_occurrence_and_makes_no_second_item(company):
    c, clock = company, company.driver.clock
    units.generate_occurrences(c.driver.factory(), clock=clock)
    clock.set(JULY_FIRST)
    c.driver.tick()
    before = _rectification_instances(c)
    [meeting] = [
        o
        for o in _occurrences(c)
        if (o.obligation, o.branch_code, o.period) == ("group_meeting", "B1", "2026-06")
    ]
    clock.set(datetime(2026, 7, 3, 10, 0, tzinfo=LOCAL_TZ))
    _record(c, "grp_B1", "党小组会", {**RECORD, "date": "2026-07-02"})
    c.driver.tick()
    [late] = [o for o in _occurrences(c) if o.id == meeting.id]
    assert late.recorded_at == clock.now() and late.on_time is False
    assert late.rectification_id == meeting.rectification_id is not None
    assert _rectification_instances(c) == before
    assert c.driver.instance(late.instance_id).status == "completed"
    with c.driver.factory()() as session:
        statuses = {m["name"]: m["status"] for m in obligations.missed(session, "B1", clock.now())}
    assert statuses["党小组会"] == "逾期补记"
    assert c.driver.mismatches() == [] and c.driver.verify().ok


def test_an_obligation_started_by_hand_has_no_occurrence_and_no_item(company):
    c, clock = company, company.driver.clock
    data = {
        "branch": "B1",
        "obligation": "theme_day",
        "title": "主题党日",
        "period": "x",
        "due": "2026-06-10",
    }
    data["assignee"] = None
    iid = c.driver.start(data, process="obligation", actor="office1")
    clock.set(datetime(2026, 6, 11, 8, 0, tzinfo=LOCAL_TZ))
    c.driver.tick()
    assert _rectification_instances(c) == 0
    assert [t.bpmn_id for t in c.driver.open_tasks(iid)] == ["record"]  # still open for a late record


def test_the_item_is_in_the_register_with_the_new_source():
    schema = obligations.json.loads(
        (obligations.OBLIGATIONS_FILE.parents[1] / "forms" / "rectification-register-schema.json").read_text(
            "utf-8"
        )
    )
    assert obligations.SHORTFALL_SOURCE in schema["properties"]["source"]["enum"]
    assert date(2026, 6, 30) == obligations.period_of("monthly", date(2026, 6, 5))[2]
