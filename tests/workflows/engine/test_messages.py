"""Messages between instances: routed by name and correlation, in the sender's transaction when the
receiver waits, kept when it does not wait yet, delivered exactly once; event gateways' timers indexed.

Each scenario runs straight and through save/restore (a new engine and an empty spec cache per step).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests.support import Driver
from workflows.engine import runner, specs
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.instances import restore
from workflows.engine.models import Message, MessageWait, ProcessInstance

DIAGRAMS = Path(__file__).parent / "diagrams"
MODES = ["straight", "restored"]


@pytest.fixture
def relay(factory, clock, tmp_path):
    """The relay diagrams deployed (a sender, and a receiver waiting for its message or a deadline)."""
    (tmp_path / "forms").mkdir()
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="t", bpmn_dir=DIAGRAMS, forms_dir=tmp_path / "forms")
    return factory


def _receiver(driver: Driver, branch: str = "B1", *, wait: bool = True) -> int:
    iid = driver.start({"year": 2026, "branch": branch, "deadline": "2026-11-30"}, process="relay_receiver")
    if wait:
        driver.complete(driver.only_task(iid).id, {})
    return iid


def _send(driver: Driver, branch: str = "B1", note: str = "已完成") -> int:
    return driver.start({"year": 2026, "branch": branch, "note": note}, process="relay_sender")


def _messages(driver: Driver) -> list[Message]:
    with driver.factory()() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def _actions(driver: Driver, iid: int) -> list[str]:
    return [e.action for e in driver.events(iid) if e.action.startswith("message.")]


@pytest.mark.parametrize("mode", MODES)
def test_a_message_reaches_the_waiting_receiver_in_the_senders_step(mode, db_url, relay, clock):
    driver = Driver(db_url, clock, mode)
    receiver = _receiver(driver)
    assert driver.instance(receiver).next_due_at is not None  # the gateway's deadline is indexed
    sender = _send(driver, note="第一阶段完成")

    task = driver.only_task(receiver)
    assert task.bpmn_id == "after_message"
    assert driver.task_data(task.id)["reply"] == {"year": 2026, "branch": "B1", "note": "第一阶段完成"}
    assert driver.instance(receiver).next_due_at is None  # the message won: the deadline is gone
    [message] = _messages(driver)
    assert (message.status, message.sender_instance_id, message.receiver_instance_id) == (
        "delivered",
        sender,
        receiver,
    )
    assert json.loads(message.correlations) == {"year_branch": {"year": 2026, "branch": "B1"}}
    # One transaction: the send, the delivery on both timelines, the receiver's step.
    assert _actions(driver, sender) == ["message.sent", "message.delivered"]
    assert _actions(driver, receiver) == ["message.received"]
    sent = next(e for e in driver.events(sender) if e.action == "message.sent")
    received = next(e for e in driver.events(receiver) if e.action == "message.received")
    assert received.seq == sent.seq + 1
    assert driver.mismatches() == []
    assert driver.verify().ok
    driver.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_message_sent_before_the_receiver_waits_is_delivered_when_it_does(mode, db_url, relay, clock):
    driver = Driver(db_url, clock, mode)
    receiver = _receiver(driver, wait=False)  # still at "prepare"
    sender = _send(driver, note="提前到达")
    [message] = _messages(driver)
    assert message.status == "pending" and message.receiver_instance_id is None
    assert driver.only_task(receiver).bpmn_id == "prepare"
    assert driver.mismatches() == []

    driver.complete(driver.only_task(receiver).id, {})  # now it waits: the kept message is taken at once
    task = driver.only_task(receiver)
    assert task.bpmn_id == "after_message"
    assert driver.task_data(task.id)["reply"]["note"] == "提前到达"
    [message] = _messages(driver)
    assert (message.status, message.receiver_instance_id) == ("delivered", receiver)
    assert _actions(driver, sender) == ["message.sent", "message.delivered"]
    assert _actions(driver, receiver) == ["message.received"]
    with driver.factory()() as session:
        assert session.scalars(select(MessageWait)).all() == []
    assert driver.mismatches() == []
    driver.close()


@pytest.mark.parametrize("mode", MODES)
def test_correlation_keeps_a_message_from_another_branch_away(mode, db_url, relay, clock):
    driver = Driver(db_url, clock, mode)
    b1, b2 = _receiver(driver, "B1"), _receiver(driver, "B2")
    _send(driver, "B2", note="二支部")
    assert driver.open_tasks(b1) == []  # B1 still waits at its gateway
    assert driver.only_task(b2).bpmn_id == "after_message"
    _send(driver, "B3", note="没有人等")
    assert [m.status for m in _messages(driver)] == ["delivered", "pending"]
    _send(driver, "B1", note="一支部")
    assert driver.task_data(driver.only_task(b1).id)["reply"]["note"] == "一支部"
    assert driver.mismatches() == []
    driver.close()


@pytest.mark.parametrize("mode", MODES)
def test_the_gateways_timer_fires_at_its_time_and_a_later_message_waits(mode, db_url, relay, clock):
    driver = Driver(db_url, clock, mode)
    receiver = _receiver(driver)  # deadline 2026-11-30: fires at 12-01 00:00 Beijing time
    assert driver.instance(receiver).next_due_at == datetime(2026, 12, 1, tzinfo=LOCAL_TZ)
    clock.set(datetime(2026, 11, 30, 23, 59, tzinfo=LOCAL_TZ))
    assert driver.tick() == 0
    clock.set(datetime(2026, 12, 1, 0, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() == 1
    assert driver.only_task(receiver).bpmn_id == "after_timer"
    fired = [e for e in driver.events(receiver) if e.action == "timer.fired"]
    assert [e.bpmn_id for e in fired] == ["gw"]
    assert driver.tick() == 0  # once
    _send(driver, note="来晚了")
    assert [m.status for m in _messages(driver)] == ["pending"]
    assert driver.only_task(receiver).bpmn_id == "after_timer"
    assert driver.mismatches() == []
    driver.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_event_subprocess_takes_every_message_while_the_process_runs(mode, db_url, relay, clock):
    driver = Driver(db_url, clock, mode)
    collector = driver.start({"year": 2026}, process="relay_collector")
    other_year = driver.start({"year": 2027}, process="relay_collector")
    for note in ("一", "二", "三"):
        driver.start({"year": 2026, "note": note}, process="relay_reporter")
    assert _actions(driver, collector) == ["message.received"] * 3
    assert _actions(driver, other_year) == []
    with driver.factory()() as session:
        workflow = restore(session, session.get(ProcessInstance, collector)).workflow
        assert sorted(t.data["kept"] for t in workflow.get_tasks() if t.task_spec.bpmn_id == "keep") == [
            "一",
            "三",
            "二",
        ]
    assert driver.only_task(collector).bpmn_id == "work"  # the main flow never noticed
    driver.complete(driver.only_task(collector).id, {})
    assert driver.instance(collector).status == "completed"
    driver.start({"year": 2026, "note": "结束后"}, process="relay_reporter")
    assert [m.status for m in _messages(driver)] == ["delivered"] * 3 + ["pending"]
    assert driver.mismatches() == []
    driver.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_receiver_that_fails_never_undoes_the_senders_step(mode, db_url, relay, clock):
    driver = Driver(db_url, clock, mode)
    fragile = driver.start({"year": 2026, "branch": "B1"}, process="relay_fragile")
    sender = _send(driver, note="出错也要送达")  # the sender's step commits all the same
    assert driver.instance(sender).status == "completed"
    assert _actions(driver, sender) == ["message.sent"]
    [message] = _messages(driver)
    assert message.status == "pending"
    [failed] = [e for e in driver.events(fragile) if e.action == "step.failed"]
    assert "ZeroDivisionError" in failed.data and f'"message_id":{message.id}' in failed.data
    assert _actions(driver, fragile) == []  # nothing of the failed delivery stayed
    assert runner.deliver_messages(driver.factory(), clock=clock) == 0  # retried, failed again, counted
    with driver.factory()() as session:
        assert session.get(Message, message.id).attempts == 1
    assert driver.mismatches() == [] and driver.verify().ok
    driver.close()


def test_check_flags_a_waiting_timer_missing_from_the_index(db_url, relay, clock):
    driver = Driver(db_url, clock, "straight")
    receiver = _receiver(driver)
    assert driver.mismatches() == []
    with transaction(driver.factory()) as session:
        session.execute(text("UPDATE instances SET next_due_at = NULL WHERE id = :id"), {"id": receiver})
    problems = driver.mismatches()
    assert len(problems) == 1 and "next_due_at" in problems[0] and f"实例 {receiver}" in problems[0]
    with transaction(driver.factory()) as session:
        session.execute(text("DELETE FROM message_waits WHERE instance_id = :id"), {"id": receiver})
    assert any("relay_done" in line and "消息索引中没有" in line for line in driver.mismatches())
    driver.close()


def test_pending_messages_are_delivered_exactly_once_by_two_schedulers(db_url, relay, clock):
    """Receivers locked by other work while their messages are sent: the messages stay pending; two
    schedulers then race to deliver them, and each is delivered once, to its own receiver."""
    if not db_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: SQLite has no row locks to be skipped")
    driver = Driver(db_url, clock, "straight")
    branches = [f"B{n}" for n in range(12)]
    receivers = {code: _receiver(driver, code) for code in branches}
    holder = make_engine(db_url)
    with holder.connect() as conn:  # another step holds every receiver's row
        conn.execute(
            text("SELECT id FROM instances WHERE id = ANY(:ids) FOR UPDATE"),
            {"ids": list(receivers.values())},
        )
        for code in branches:
            _send(driver, code, note=f"{code} 的结果")
        conn.rollback()
    holder.dispose()
    assert [m.status for m in _messages(driver)] == ["pending"] * len(branches)

    barrier, outcomes = threading.Barrier(2), []

    def scheduler() -> None:
        engine = make_engine(db_url)
        factory = make_session_factory(engine)
        barrier.wait()
        total = 0
        for _ in range(3):
            total += runner.deliver_messages(factory, clock=FixedClock(clock.now()), batch=5)
        outcomes.append(total)
        engine.dispose()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(outcomes) == len(branches), outcomes
    delivered = _messages(driver)
    assert all(m.status == "delivered" for m in delivered)
    for code, iid in receivers.items():
        assert driver.task_data(driver.only_task(iid).id)["reply"]["note"] == f"{code} 的结果"
        assert _actions(driver, iid) == ["message.received"]
    assert not [e for e in driver.events() if e.action == "step.failed"]
    assert driver.mismatches() == []
    assert driver.verify().ok
    driver.close()
