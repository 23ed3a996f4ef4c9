"""A late rectification item climbs every level of the ladder: who hears, which tasks appear, the trail."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.support import ASSIGNED, FIXED, REGISTERED, Company, Driver
from workflows.deadlines import escalation, notify
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction
from workflows.programme import ledger, org

DEADLINE = "2026-12-10"  # a Thursday; December 2026 has no holidays
LEVELS = [
    # (reached at, bpmn id of the timer, level, notified, new task for the office)
    (datetime(2026, 12, 8, tzinfo=LOCAL_TZ), "fix_remind", 1, ["zhangsan"], None),
    (
        datetime(2026, 12, 11, tzinfo=LOCAL_TZ),
        "fix_deadline",
        2,
        ["zhangsan", "secretary1", "committee1"],
        None,
    ),
    (datetime(2026, 12, 18, tzinfo=LOCAL_TZ), "fix_supervise", 3, ["office1", "secretary1"], "supervise"),
    (
        datetime(2026, 12, 25, tzinfo=LOCAL_TZ),
        "fix_interview",
        4,
        ["office1", "secretary1", "committee1"],
        "interview",
    ),
]


@pytest.fixture(params=["straight", "restored"])
def c(request, db_url, deployed, clock):
    with transaction(deployed) as session:
        org.add_user(
            session, "committee1", password="Zhibu-test-2026", role="committee", now=clock.now(), actor="t"
        )
        org.add_contact(session, "committee1", "一支部", now=clock.now(), actor="t")
    driver = Driver(db_url, clock, request.param)
    yield Company(driver)
    driver.close()


def unread(c: Company) -> dict[str, int]:
    """Unread escalation messages per person (the item's own news, e.g. 整改任务, is counted apart)."""
    with c.driver.factory()() as session:
        return {
            u: len(
                [n for n in notify.inbox(session, u, limit=500) if n.kind == "escalation" and not n.read_at]
            )
            for u in ("zhangsan", "secretary1", "committee1", "office1")
        }


def test_every_level_of_the_ladder(c):
    clock = c.driver.clock
    iid = c.driver.start(REGISTERED, actor="office1")
    c.driver.complete(c.driver.only_task(iid).id, {**ASSIGNED, "deadline": DEADLINE}, actor="secretary1")
    counts = dict.fromkeys(("zhangsan", "secretary1", "committee1", "office1"), 0)
    for at, timer, level, notified, _ in LEVELS:
        clock.set(at.replace(second=1))  # just after the level's instant
        before = len(c.driver.events(iid))
        assert c.driver.tick() == 1
        assert c.driver.tick() == 0  # once
        fix = [t for t in c.driver.open_tasks(iid) if t.bpmn_id == "fix"][0]
        assert (fix.escalation_level, fix.due_at) == (level, datetime(2026, 12, 11, tzinfo=LOCAL_TZ))
        new = c.driver.events(iid)[before:]
        expected = ["timer.fired", "notification.sent"] + (["notice.filed"] if level == 4 else [])
        assert [e.action for e in new] == expected  # cause first, then what it caused
        sent = json.loads(new[1].data)
        assert (new[1].actor, sent["to"], sent["kind"]) == ("system:escalation", notified, "escalation")
        assert new[0].bpmn_id == timer and new[0].actor == "system:timer"
        for username in notified:
            counts[username] += 1
        assert unread(c) == counts
        office = sorted(t[0] for t in c.todo("office1"))
        assert office == sorted(x[4] for x in LEVELS[:level] if x[4])
        assert c.todo("zhangsan") == [("fix", "一支部")]  # the item stays with its responsible person
        with c.driver.factory()() as session:
            notices = escalation.notices(session, "一支部")
        assert len(notices) == (1 if level == 4 else 0)
    assert "notice.filed" in [e.action for e in c.driver.events(iid)]
    with c.driver.factory()() as session:
        [message] = [n for n in notify.inbox(session, "committee1") if "约谈" in n.title]
        assert "支委会记录不全" in message.title and message.instance_id == iid
        assert notify.mark_read(session, "committee1", None, clock.now()) == 2
        session.commit()
        assert notify.unread_count(session, "committee1") == 0
    # Finally fixed and signed off: that ends the item, and with it the open 督办 and 约谈 tasks.
    c.do("zhangsan", "fix", FIXED)
    assert _ledger(c, iid) == ("待验收", "督办中、待约谈")
    c.do("office1", "signoff", {"approved": True})
    assert c.driver.instance(iid).status == "completed"
    assert c.driver.open_tasks(iid) == [] and c.todo("office1") == []
    assert _ledger(c, iid) == ("已销号", None)
    events = c.driver.events(iid)
    cancelled = [(e.action, e.bpmn_id, e.actor) for e in events if e.action == "task.cancelled"]
    assert sorted(cancelled) == [
        ("task.cancelled", "interview", "office1"),
        ("task.cancelled", "supervise", "office1"),
    ]
    assert [e.action for e in events][-5:] == [
        "task.completed",
        "task.cancelled",
        "task.cancelled",
        "notification.sent",  # the responsible person and the secretary hear of the sign-off
        "instance.completed",
    ]
    assert c.driver.mismatches() == [] and c.driver.verify().ok


def _ledger(c: Company, iid: int) -> tuple[str, str | None]:
    with c.driver.factory()() as session:
        [row] = [
            r
            for r in ledger.rows(session, branches=None, now=c.driver.clock.now())
            if r.item.instance_id == iid
        ]
        return row.item.status, row.supervision


def test_a_scheduler_down_across_three_levels_fires_each_once(c):
    clock = c.driver.clock
    iid = c.driver.start(REGISTERED, actor="office1")
    c.driver.complete(c.driver.only_task(iid).id, {**ASSIGNED, "deadline": DEADLINE}, actor="secretary1")
    clock.set(datetime(2026, 12, 20, 12, 0, tzinfo=LOCAL_TZ))  # reminder, deadline and supervision all passed
    assert c.driver.tick() == 3
    assert c.driver.tick() == 0
    fired = [e.bpmn_id for e in c.driver.events(iid) if e.action == "timer.fired"]
    assert fired == ["fix_remind", "fix_deadline", "fix_supervise"]
    assert [t for t in c.driver.open_tasks(iid) if t.bpmn_id == "fix"][0].escalation_level == 3
    assert unread(c) == {"zhangsan": 2, "secretary1": 2, "committee1": 1, "office1": 1}
    assert sorted(t[0] for t in c.todo("office1")) == ["supervise"]


def _counts(c: Company) -> tuple[dict[str, int], int]:
    with c.driver.factory()() as session:
        told = {
            u: len([n for n in notify.inbox(session, u, limit=500) if n.kind == "escalation"])
            for u in ("zhangsan", "secretary1", "committee1", "office1")
        }
        return told, len(escalation.notices(session, "一支部"))


def test_each_deadline_has_one_ladder_and_an_old_one_never_fires_again(c):
    clock = c.driver.clock
    iid = c.driver.start(REGISTERED, actor="office1")
    c.do("secretary1", "assign", {**ASSIGNED, "deadline": DEADLINE})
    assert _ledger(c, iid) == ("整改中", None)
    clock.set(datetime(2026, 12, 25, 0, 0, 1, tzinfo=LOCAL_TZ))  # past every level of 12-10's ladder
    assert c.driver.tick() == 4 and c.driver.tick() == 0
    once = {"zhangsan": 2, "secretary1": 3, "committee1": 2, "office1": 2}
    assert _counts(c) == (once, 1)
    assert _ledger(c, iid) == ("整改中", "督办中、待约谈")

    c.do("zhangsan", "fix", FIXED)
    assert _ledger(c, iid) == ("待验收", "督办中、待约谈")
    rejection = {"approved": False, "comment": "佐证不足", "deadline": "2026-12-31"}
    c.do("office1", "signoff", rejection)
    fix = c.task("zhangsan", "fix")
    assert (fix.escalation_level, fix.due_at) == (0, datetime(2027, 1, 1, tzinfo=LOCAL_TZ))
    assert _ledger(c, iid) == ("整改中", "督办中、待约谈")
    # Days pass again beyond every instant of the old ladder: nothing of 12-10's ladder fires anew.
    clock.set(datetime(2026, 12, 28, 23, 59, 0, tzinfo=LOCAL_TZ))
    assert c.driver.tick() == 0
    assert _counts(c) == (once, 1)
    # The new deadline's own ladder, each level once: the same people again, one more 通报.
    clock.set(datetime(2027, 1, 16, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert c.driver.tick() == 4 and c.driver.tick() == 0
    assert _counts(c) == ({name: 2 * n for name, n in once.items()}, 2)
    assert sorted(t[0] for t in c.todo("office1")) == ["interview", "interview", "supervise", "supervise"]
    with c.driver.factory()() as session:
        fired = session.execute(
            select(escalation.Escalation.deadline, escalation.Escalation.level).order_by(
                escalation.Escalation.deadline, escalation.Escalation.level
            )
        ).all()
    assert [(d.isoformat(), n) for d, n in fired] == [
        *[("2026-12-10", n) for n in (1, 2, 3, 4)],
        *[("2026-12-31", n) for n in (1, 2, 3, 4)],
    ]
    c.do("zhangsan", "fix", FIXED)
    c.do("office1", "signoff", {"approved": True})
    assert _ledger(c, iid) == ("已销号", None) and c.todo("office1") == []
    assert c.driver.mismatches() == [] and c.driver.verify().ok


def test_a_level_is_told_once_per_deadline(c):
    now = c.driver.clock.now()
    with transaction(c.driver.factory()) as session:
        day = datetime(2026, 12, 10).date()
        assert escalation.first_time(session, 1, "fix", 3, day, now)
        assert not escalation.first_time(session, 1, "fix", 3, day, now)
        assert escalation.first_time(session, 1, "fix", 3, datetime(2026, 12, 31).date(), now)
