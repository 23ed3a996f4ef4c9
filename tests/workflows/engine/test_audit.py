"""The audit chain: every step leaves an event, and any tampering is found."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import delete, select, update

from tests.support import ASSIGNED, FIXED, REGISTERED, Driver
from workflows.engine import audit, specs
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import AuditEvent, AuditHead

DEPLOYED = len(list(specs.BPMN_DIR.glob("*.bpmn")))  # one spec.deployed event per process


@pytest.fixture
def trail(db_url, deployed, clock):
    """A database with a short, valid trail: deploy, start, two completions, a timer."""
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED, actor="office1")
    driver.complete(driver.only_task(iid).id, ASSIGNED, actor="secretary1")
    clock.set(datetime(2026, 11, 26, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() == 1  # the ladder's reminder
    driver.complete(driver.only_task(iid).id, FIXED, actor="zhangsan")
    yield driver, deployed
    driver.close()


def ids(factory) -> list[int]:
    with factory() as s:
        return list(s.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))


def verify(factory) -> audit.Verification:
    with factory() as s:
        return audit.verify(s)


def test_every_step_is_an_event_with_actor_time_instance_task_and_data(trail):
    driver, _ = trail
    events = driver.events()
    assert [e.action for e in events] == [
        *["spec.deployed"] * DEPLOYED,
        "org.branch_added",
        "org.role_granted",
        "org.role_granted",
        "org.role_granted",
        "instance.started",
        "task.completed",
        "notification.sent",  # the responsible person is told of the assignment
        "timer.fired",
        "notification.sent",  # what the timer caused follows it
        "task.completed",
    ]
    started, assigned, told, fired, notified, fixed = events[DEPLOYED + 4 :]
    assert told.actor == "system:rectification" and '"to":["zhangsan"]' in told.data
    assert notified.actor == "system:escalation" and '"to":["zhangsan"]' in notified.data
    assert started.actor == "office1" and started.instance_id is not None
    assert '"title":"支委会记录不全"' in started.data
    assert (assigned.actor, assigned.bpmn_id, assigned.branch) == ("secretary1", "assign", "一支部")
    assert assigned.task_id is not None and '"deadline":"2026-11-30"' in assigned.data
    assert fired.actor == "system:timer" and fired.bpmn_id == "fix_remind"
    assert fixed.occurred_at == driver.clock.now()
    result = driver.verify()
    assert result.ok and result.events == DEPLOYED + 10


def test_edit_is_detected(trail):
    _, factory = trail
    target = ids(factory)[2]
    with transaction(factory) as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == target).values(actor="someone-else"))
    result = verify(factory)
    assert not result.ok and result.broken_event_id == target and "被修改" in result.reason


def test_delete_is_detected(trail):
    _, factory = trail
    doomed = ids(factory)[2]
    with transaction(factory) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == doomed))
    result = verify(factory)
    assert not result.ok and result.broken_event_id == doomed + 1


def test_delete_of_last_event_is_detected(trail):
    _, factory = trail
    last = ids(factory)[-1]
    with transaction(factory) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == last))
    result = verify(factory)
    assert not result.ok and "末尾" in result.reason


def test_insert_is_detected(trail):
    _, factory = trail
    with transaction(factory) as s:
        first = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
        head = s.get(AuditHead, 1)
        forged = AuditEvent(
            seq=head.seq + 1,
            occurred_at=first.occurred_at,
            actor="forger",
            action="task.completed",
            instance_id=first.instance_id,
            task_id=None,
            bpmn_id="signoff",
            branch="一支部",
            data="{}",
            prev_hash=head.hash,
            hash="0" * 64,
        )
        s.add(forged)
        s.flush()
        forged_id = forged.id
    result = verify(factory)
    assert not result.ok and result.broken_event_id == forged_id


def test_reorder_is_detected(trail):
    _, factory = trail
    a, b = ids(factory)[1:3]
    columns = ["seq", "occurred_at", "actor", "action", "instance_id", "task_id", "bpmn_id", "branch", "data"]
    columns += ["prev_hash", "hash"]
    with transaction(factory) as s:
        row_a, row_b = s.get(AuditEvent, a), s.get(AuditEvent, b)
        values_a = {c: getattr(row_a, c) for c in columns}
        values_b = {c: getattr(row_b, c) for c in columns}
        s.execute(update(AuditEvent).where(AuditEvent.id == a).values(**{**values_b, "seq": -1}))
        s.execute(update(AuditEvent).where(AuditEvent.id == b).values(**values_a))
        s.execute(update(AuditEvent).where(AuditEvent.id == a).values(seq=values_b["seq"]))
    result = verify(factory)
    assert not result.ok and result.broken_event_id == a


def test_untouched_chain_verifies_after_many_writers(trail):
    driver, factory = trail
    for _ in range(3):
        driver.start(REGISTERED)
    result = verify(factory)
    assert result.ok and result.events == DEPLOYED + 13


def _append(factory, clock, action: str, *, commit: bool = True) -> int:
    session = factory()
    try:
        seq = audit.append(session, action=action, actor="tester", occurred_at=clock.now())
        session.commit() if commit else session.rollback()
        return seq
    finally:
        session.close()


def test_appends_from_two_connections_interleave_into_one_chain(engine, clock):
    # Each connection remembers the head it last wrote; the other's appends must make it re-read.
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        mine, theirs = make_session_factory(engine), make_session_factory(other)
        seqs = [_append(f, clock, f"test.{n}") for n, f in enumerate([mine, theirs, mine, mine, theirs])]
        assert seqs == [1, 2, 3, 4, 5]
        result = verify(mine)
        assert result.ok and result.events == 5
    finally:
        other.dispose()


def test_an_append_rolled_back_is_not_remembered_as_the_head(factory, clock):
    assert _append(factory, clock, "test.kept") == 1
    assert _append(factory, clock, "test.dropped", commit=False) == 2
    assert _append(factory, clock, "test.after") == 2
    with factory() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
        head = s.get(AuditHead, 1)
        assert (head.seq, head.hash) == (2, s.scalar(select(AuditEvent.hash).where(AuditEvent.seq == 2)))
    assert actions == ["test.kept", "test.after"]
    assert verify(factory).ok


def test_every_event_comes_in_chain_order_and_pages_agree(trail):
    driver, factory = trail
    with factory() as s:
        everything = [e.seq for e in audit.each_event(s, branches=None)]
        paged = [
            e.seq for page in range(0, 30, 4) for e in audit.events(s, branches=None, limit=4, offset=page)
        ]
        branch = [e.seq for e in audit.each_event(s, branches=None, branch="一支部", actor="system:timer")]
        hidden = list(audit.each_event(s, branches=frozenset({"二支部"})))
    assert everything == paged == list(range(1, DEPLOYED + 11))
    assert len(branch) == 1 and hidden == []
