"""The rectification loop end to end, each scenario straight and through save/restore."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support import ASSIGNED, FIXED, REGISTERED, Driver
from workflows.engine.clock import LOCAL_TZ, end_of_day
from workflows.engine.errors import Conflict, FormInvalid

DEADLINE_END = datetime(2026, 12, 1, 0, 0, tzinfo=LOCAL_TZ)  # deadline 2026-11-30, a working day
REMIND_AT = datetime(2026, 11, 26, 0, 0, tzinfo=LOCAL_TZ)  # ladder level 1: 3 working days before
SUPERVISE_AT = datetime(2026, 12, 8, 0, 0, tzinfo=LOCAL_TZ)  # level 3: 5 working days after 11-30


@pytest.fixture(params=["straight", "restored"])
def driver(request, db_url, deployed, clock):
    drv = Driver(db_url, clock, request.param)
    yield drv
    drv.close()


def assert_index_matches(driver: Driver, instance_id: int) -> None:
    assert driver.mismatches(instance_id) == []
    truth, due = driver.workflow_truth(instance_id)
    assert {t.id for t in driver.open_tasks(instance_id)} == set(truth)
    assert driver.instance(instance_id).next_due_at == due


def reach_fix(driver: Driver) -> tuple[int, str]:
    iid = driver.start(REGISTERED)
    assign = driver.only_task(iid)
    assert (assign.bpmn_id, assign.title, assign.lane) == ("assign", "明确责任", "党支部书记")
    assert assign.form_key == "rectification-assign"
    assert_index_matches(driver, iid)
    driver.complete(assign.id, ASSIGNED, actor="secretary1")
    fix = driver.only_task(iid)
    assert (fix.bpmn_id, fix.lane, fix.due_at) == ("fix", "整改责任人", DEADLINE_END)
    assert fix.escalation_level == 0
    assert driver.instance(iid).next_due_at == REMIND_AT  # the ladder's first level comes first
    assert_index_matches(driver, iid)
    return iid, fix.id


def test_accepted_first_time(driver):
    iid, fix_id = reach_fix(driver)
    driver.clock.advance(days=1)
    driver.complete(fix_id, FIXED, actor="zhangsan")
    signoff = driver.only_task(iid)
    assert (signoff.bpmn_id, signoff.lane) == ("signoff", "党委工作室")
    assert driver.instance(iid).next_due_at is None  # the deadline timer left with the fix task
    assert_index_matches(driver, iid)
    driver.complete(signoff.id, {"approved": True, "comment": "材料齐全"}, actor="office1")
    inst = driver.instance(iid)
    assert inst.status == "completed" and inst.completed_at == driver.clock.now()
    assert driver.open_tasks(iid) == []
    assert_index_matches(driver, iid)
    actions = [(e.action, e.actor, e.bpmn_id) for e in driver.events(iid)]
    assert actions == [
        ("instance.started", "tester", "rectification"),
        ("task.completed", "secretary1", "assign"),
        ("notification.sent", "system:rectification", None),  # the responsible person: assigned
        ("task.completed", "zhangsan", "fix"),
        ("task.completed", "office1", "signoff"),
        ("notification.sent", "system:rectification", None),  # responsible and secretary: signed off
        ("instance.completed", "office1", "rectification"),
    ]
    assert driver.verify().ok


def test_rejected_twice_then_accepted(driver):
    iid, fix_id = reach_fix(driver)
    seen_fix_ids = {fix_id}
    for round_no in (1, 2):
        driver.complete(fix_id, {**FIXED, "done": f"第{round_no}次整改"}, actor="zhangsan")
        signoff = driver.only_task(iid)
        with pytest.raises(FormInvalid) as err:  # rejecting needs a reason and a new deadline
            driver.complete(signoff.id, {"approved": False}, actor="office1")
        assert err.value.errors == {"comment": "请填写“验收意见”", "deadline": "请填写“新的整改时限”"}
        new_deadline = ("2026-12-10", "2026-12-18")[round_no - 1]  # working days (Thursday, Friday)
        rejection = {"approved": False, "comment": f"第{round_no}次退回：佐证不足", "deadline": new_deadline}
        driver.complete(signoff.id, rejection, actor="office1")
        fix = driver.only_task(iid)
        assert fix.bpmn_id == "fix" and fix.id not in seen_fix_ids
        assert driver.task_data(fix.id)["comment"] == f"第{round_no}次退回：佐证不足"
        assert fix.due_at == end_of_day(new_deadline) and fix.escalation_level == 0
        assert_index_matches(driver, iid)
        seen_fix_ids.add(fix.id)
        fix_id = fix.id
    driver.complete(fix_id, FIXED, actor="zhangsan")
    driver.complete(driver.only_task(iid).id, {"approved": True}, actor="office1")
    assert driver.instance(iid).status == "completed"
    assert_index_matches(driver, iid)
    completed = [e.bpmn_id for e in driver.events(iid) if e.action == "task.completed"]
    assert completed == ["assign", "fix", "signoff", "fix", "signoff", "fix", "signoff"]
    assert driver.verify().ok


def test_deadline_missed(driver):
    iid, fix_id = reach_fix(driver)
    driver.clock.set(datetime(2026, 11, 25, 23, 59, 59, tzinfo=LOCAL_TZ))
    assert driver.tick() == 0
    driver.clock.set(datetime(2026, 11, 26, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() == 1  # reminder
    fix = driver.only_task(iid)
    assert (fix.escalation_level, fix.due_at) == (1, DEADLINE_END)
    assert driver.instance(iid).next_due_at == DEADLINE_END
    driver.clock.set(datetime(2026, 11, 30, 23, 59, 59, tzinfo=LOCAL_TZ))
    assert driver.tick() == 0
    driver.clock.set(datetime(2026, 12, 1, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() == 1  # overdue
    assert driver.tick() == 0  # fires once
    fix = driver.only_task(iid)
    assert (fix.id, fix.escalation_level, fix.due_at) == (fix_id, 2, DEADLINE_END)
    assert driver.instance(iid).next_due_at == SUPERVISE_AT
    assert_index_matches(driver, iid)
    fired = [e for e in driver.events(iid) if e.action == "timer.fired"]
    assert [(e.actor, e.bpmn_id, e.task_id is not None) for e in fired] == [
        ("system:timer", "fix_remind", True),
        ("system:timer", "fix_deadline", True),
    ]
    assert fired[-1].occurred_at == driver.clock.now()
    # Fixed late and rejected: the rejection must give a new deadline after today, and the ladder
    # restarts for it; the passed deadline is never re-armed (nothing fires at once).
    driver.complete(fix_id, FIXED, actor="zhangsan")
    assert driver.instance(iid).next_due_at is None  # the ladder left with the fix task
    signoff = driver.only_task(iid)
    for stale in (None, "2026-11-30", "2026-12-01"):  # none, the passed one, today
        rejection = {"approved": False, "comment": "逾期且不完整", **({"deadline": stale} if stale else {})}
        with pytest.raises(FormInvalid) as err:
            driver.complete(signoff.id, rejection, actor="office1")
        assert set(err.value.errors) == {"deadline"}, stale
    retry = {"approved": False, "comment": "逾期且不完整", "deadline": "2026-12-31"}
    driver.complete(signoff.id, retry, actor="office1")
    third = driver.only_task(iid)
    assert (third.escalation_level, third.due_at) == (0, datetime(2027, 1, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() == 0
    assert len([e for e in driver.events(iid) if e.action == "timer.fired"]) == 2
    assert_index_matches(driver, iid)
    driver.complete(third.id, FIXED, actor="zhangsan")
    driver.complete(driver.only_task(iid).id, {"approved": True}, actor="office1")
    assert driver.instance(iid).status == "completed"
    assert driver.verify().ok


def test_started_without_data_begins_with_registration(driver):
    iid = driver.start(None)
    register = driver.only_task(iid)
    assert (register.bpmn_id, register.title, register.lane) == ("register", "登记问题", "党委工作室")
    with pytest.raises(FormInvalid) as err:
        driver.complete(register.id, {"source": "路边", "branch": "一支部"})
    assert err.value.errors == {
        "description": "请填写“问题描述”",
        "title": "请填写“问题标题”",
        "source": "请从以下选项中选择：自查、督查抽查、考核验收、意见反馈、例行工作、其他",
    }
    driver.complete(register.id, REGISTERED)
    assert driver.only_task(iid).bpmn_id == "assign"
    inst = driver.instance(iid)
    assert (inst.branch, inst.title) == ("一支部", "支委会记录不全")
    assert_index_matches(driver, iid)


def test_completing_twice_is_a_conflict(driver):
    iid = driver.start(REGISTERED)
    assign = driver.only_task(iid)
    driver.complete(assign.id, ASSIGNED)
    with pytest.raises(Conflict):
        driver.complete(assign.id, ASSIGNED)
    assert [e.bpmn_id for e in driver.events(iid) if e.action == "task.completed"] == ["assign"]
