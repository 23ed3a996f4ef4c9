"""Who sees and who may act: secretaries their own branch, committee members their contact branches
read-only, the office everything; named assignees their own tasks."""

from __future__ import annotations

import pytest

from tests.support import ASSIGNED, REGISTERED, Company, Driver, seed_neighbours
from workflows.engine.db import transaction
from workflows.engine.errors import FormInvalid
from workflows.programme import inbox


@pytest.fixture
def c(db_url, deployed, clock):
    with transaction(deployed) as session:
        seed_neighbours(session, clock.now())
    driver = Driver(db_url, clock, "straight")
    yield Company(driver)
    driver.close()


def test_branch_finding_goes_to_its_secretary_then_to_the_responsible_person(c):
    iid = c.driver.start(REGISTERED, actor="office1")
    assign = c.driver.only_task(iid)
    assert c.todo("secretary1") == [("assign", "一支部")] and c.todo("secretary2") == []
    assert (
        c.watching("secretary2") == []
        and c.todo("office1") == []
        and c.watching("office1") == [("assign", "一支部")]
    )
    assert c.todo("committee1") == [] and c.watching("committee1") == [("assign", "一支部")]
    assert c.todo("leader1") == [] and c.watching("leader1") == [("assign", "一支部")]
    assert c.todo("inspector1") == [] and c.watching("inspector1") == [("assign", "一支部")]
    with c.driver.factory()() as session:
        assert inbox.can_act(session, "secretary1", assign.id)
        for other in ("secretary2", "committee1", "leader1", "inspector1", "zhangsan", "office1"):
            assert not inbox.can_act(session, other, assign.id), other
        assert not inbox.can_see(session, "secretary2", assign.id)
    c.driver.complete(assign.id, ASSIGNED, actor="secretary1")
    fix = c.driver.only_task(iid)
    assert fix.assignee == "zhangsan"
    assert c.todo("zhangsan") == [("fix", "一支部")] and c.todo("secretary1") == []
    assert c.watching("secretary1") == [("fix", "一支部")]  # the secretary follows it, read-only
    with c.driver.factory()() as session:
        assert inbox.can_act(session, "zhangsan", fix.id) and not inbox.can_act(session, "secretary1", fix.id)


def test_company_level_finding_is_assigned_by_the_office(c):
    data = {k: v for k, v in REGISTERED.items() if k != "branch"}
    iid = c.driver.start(data, actor="office1")
    assert c.todo("office1") == [("assign", "")]
    assert c.todo("secretary1") == [] and c.watching("secretary1") == []
    c.do("office1", "assign", {**ASSIGNED, "responsible": "secretary2"})  # anyone, for company-level work
    assert c.driver.only_task(iid).assignee == "secretary2" and c.todo("secretary2") == [("fix", "")]


def test_the_responsible_person_must_belong_to_the_branch(c):
    iid = c.driver.start(REGISTERED, actor="office1")
    task = c.driver.only_task(iid)
    for who, message in (("secretary2", "不是本党支部人员"), ("nobody", "不存在")):
        with pytest.raises(FormInvalid) as caught:
            c.driver.complete(task.id, {**ASSIGNED, "responsible": who}, actor="secretary1")
        assert message in caught.value.errors["responsible"]
    assert c.driver.only_task(iid).id == task.id and c.driver.mismatches() == []


def test_unknown_branch_in_start_data_is_a_field_error(c):
    with pytest.raises(FormInvalid) as caught:
        c.driver.start({**REGISTERED, "branch": "九支部"}, actor="office1")
    assert "九支部" in caught.value.errors["branch"]
