"""Claiming, giving back and handing over role tasks, and comments on a task."""

from __future__ import annotations

import re

import pytest

from tests.support import Company, Driver, seed_neighbours
from workflows.engine.db import transaction
from workflows.engine.errors import Forbidden, InvalidInput
from workflows.programme import actions

from .test_app import app_for, signed_in

RECORD = {
    "branch": "一支部",
    "obligation": "theme_day",
    "title": "主题党日（2026-11）",
    "period": "2026-11",
    "due": "2026-11-30",
    "assignee": None,
}


@pytest.fixture
def c(db_url, deployed, clock):
    with transaction(deployed) as session:
        seed_neighbours(session, clock.now())
    driver = Driver(db_url, clock, "restored")
    driver.start(RECORD, process="obligation", actor="office1")
    yield Company(driver)
    driver.close()


def task_id(c: Company) -> str:
    return c.task("zhangsan", "record").id


def act(c: Company, fn, *args):
    with transaction(c.driver.factory()) as session:
        fn(session, *args, clock=c.driver.clock)


def test_claim_give_back_hand_over(c):
    tid = task_id(c)
    assert c.todo("secretary1") == [("record", "一支部")] and c.todo("zhangsan") == [("record", "一支部")]
    act(c, actions.claim, "zhangsan", tid)
    assert c.todo("zhangsan") == [("record", "一支部")]
    assert c.todo("secretary1") == [] and c.watching("secretary1") == [("record", "一支部")]
    with pytest.raises(Forbidden):
        act(c, actions.claim, "secretary1", tid)
    with pytest.raises(Forbidden):
        act(c, actions.unclaim, "secretary1", tid)
    act(c, actions.unclaim, "zhangsan", tid)
    assert c.todo("secretary1") == [("record", "一支部")]
    with pytest.raises(InvalidInput, match="不是本党支部人员"):
        act(c, actions.reassign, "secretary1", tid, "secretary2")
    with pytest.raises(Forbidden):
        act(c, actions.reassign, "secretary2", tid, "zhangsan")
    act(c, actions.reassign, "secretary1", tid, "zhangsan")
    assert c.todo("secretary1") == [] and c.todo("zhangsan") == [("record", "一支部")]
    act(c, actions.reassign, "office1", tid, "secretary2")  # the office may hand over to anyone
    assert c.todo("secretary2") == [("record", "一支部")] and c.todo("zhangsan") == []
    assert c.driver.mismatches() == []  # the holder lives in the workflow; the index agrees after restore
    actions_seen = [e.action for e in c.driver.events() if e.action.startswith("task.")]
    assert actions_seen == ["task.claimed", "task.unclaimed", "task.reassigned", "task.reassigned"]
    c.driver.complete(
        tid, {"date": "2026-11-20", "attendees": 9, "topic": "学习", "minutes": "记录"}, actor="secretary2"
    )
    assert c.driver.verify().ok


def test_the_pages_for_claim_and_comments(db_url, c):
    tid = task_id(c)
    app = app_for(db_url, c.driver.clock)
    member = signed_in(app.test_client(), "zhangsan")
    page = member.get(f"/tasks/{tid}").get_data(as_text=True)
    assert "签收" in page and "转办" not in page
    token = re.search(r'csrf_token" value="([^"]+)"', page).group(1)
    assert "已签收" in member.post(
        f"/tasks/{tid}/claim", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    said = member.post(
        f"/tasks/{tid}/comments",
        data={"csrf_token": token, "text": "会议记录稍后补传"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "意见已记录" in said and "会议记录稍后补传" in said
    secretary = signed_in(app.test_client(), "secretary1")
    page = secretary.get(f"/tasks/{tid}").get_data(as_text=True)
    assert "会议记录稍后补传" in page and "转办" in page and "办理人：zhangsan" in page
    token = re.search(r'csrf_token" value="([^"]+)"', page).group(1)
    assert secretary.post(f"/tasks/{tid}/claim", data={"csrf_token": token}).status_code == 403
    outsider = signed_in(app.test_client(), "secretary2")
    token = re.search(r'csrf_token" value="([^"]+)"', outsider.get("/inbox").get_data(as_text=True)).group(1)
    assert outsider.post(f"/tasks/{tid}/comments", data={"csrf_token": token, "text": "x"}).status_code == 403
    token = re.search(
        r'csrf_token" value="([^"]+)"', member.get(f"/tasks/{tid}").get_data(as_text=True)
    ).group(1)
    empty = member.post(
        f"/tasks/{tid}/comments", data={"csrf_token": token, "text": " "}, follow_redirects=True
    )
    assert "意见内容不能为空" in empty.get_data(as_text=True)
