"""The timer sweep reads only instances whose `next_due_at` has passed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text

from tests.support import ASSIGNED, REGISTERED, Driver, deploy_timer_process
from workflows.engine import interventions, runner, specs, timers
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction


def test_sweep_loads_only_due_instances(db_url, deployed, clock, engine):
    driver = Driver(db_url, clock, "straight")
    due_ids, later_ids = [], []
    for day, bucket in (("2026-11-26", due_ids), ("2026-11-27", due_ids), ("2026-12-21", later_ids)) * 2:
        iid = driver.start(REGISTERED)
        driver.complete(driver.only_task(iid).id, {**ASSIGNED, "deadline": day})
        bucket.append(iid)
    idle = [driver.start(REGISTERED) for _ in range(3)]  # no timer at all
    clock.set(datetime(2026, 11, 28, 9, 0, tzinfo=LOCAL_TZ))

    loaded: list[int] = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        if "state_json" in statement and statement.lstrip().upper().startswith("SELECT"):
            loaded.append(parameters)

    event.listen(engine, "before_cursor_execute", spy)
    try:
        result = runner.sweep(deployed, clock=clock)
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    # Deadline 11-26: its reminder fired when the task opened (already past), now the deadline fires.
    # Deadline 11-27: reminder and deadline both fire now. Each instance is loaded once all the same.
    assert (result.fired, result.instances, result.failed) == (6, 4, {})
    assert len(loaded) == 4  # one state read per due instance; never the 5 that are not due
    for iid in due_ids:
        assert driver.only_task(iid).escalation_level == 2
        assert driver.instance(iid).next_due_at > clock.now()  # the ladder's next level
    for iid in later_ids + idle:
        assert driver.only_task(iid).escalation_level == 0
    assert driver.mismatches() == []
    driver.close()


@pytest.mark.parametrize("paged", [False, True])
def test_due_query_uses_the_next_due_index(paged, engine, factory, clock):
    after = (clock.now(), 7) if paged else None
    query = timers.due_query(clock.now(), after=after, limit=500)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with factory() as session:
        if engine.dialect.name == "sqlite":
            explain = "EXPLAIN QUERY PLAN "
        else:  # an empty table is always scanned; forbid that to see whether the index can serve
            session.execute(text("SET LOCAL enable_seqscan = off"))
            explain = "EXPLAIN "
        plan = " ".join(str(row) for row in session.execute(text(explain + sql)))
        assert "ix_instances_next_due_at" in plan, plan
        assert "SCAN instances" not in plan and "Seq Scan" not in plan, plan
        assert timers.due_instance_ids(session, clock.now(), after=after) == []


def test_sweep_pages_through_more_due_instances_than_one_batch(db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    ids = []
    for _ in range(5):
        iid = driver.start(REGISTERED)
        driver.complete(driver.only_task(iid).id, ASSIGNED)
        ids.append(iid)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=LOCAL_TZ))
    result = runner.sweep(deployed, clock=clock, batch=2)
    assert (result.fired, result.instances) == (10, 5)  # reminder and deadline of each
    assert all(driver.only_task(iid).escalation_level == 2 for iid in ids)
    assert runner.sweep(deployed, clock=clock, batch=2).instances == 0
    driver.close()


def test_a_failing_timer_backs_off_then_parks_and_can_be_retried(db_url, factory, clock, tmp_path):
    deploy_timer_process(factory, clock, tmp_path, "failing_timer", script="result = 1 / 0")
    healthy = Driver(db_url, clock, "straight")
    iid = healthy.start(None, process="failing_timer")
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=LOCAL_TZ))
    waits = []
    for attempt in range(1, timers.MAX_FAILURES + 1):
        result = runner.sweep(factory, clock=clock)
        assert (result.instances, result.fired, list(result.failed)) == (1, 0, [iid])
        inst = healthy.instance(iid)
        assert inst.timer_failures == attempt and "ZeroDivisionError" in inst.timer_error
        if attempt < timers.MAX_FAILURES:
            assert runner.sweep(factory, clock=clock).instances == 0  # not again before its backoff
            waits.append(inst.next_due_at - clock.now())
            clock.set(inst.next_due_at)
    assert waits == [timedelta(minutes=m) for m in (1, 4, 16, 64)]
    assert healthy.instance(iid).next_due_at is None  # parked
    clock.advance(days=30)
    assert runner.sweep(factory, clock=clock).instances == 0
    with factory() as session:
        assert [p.id for p in timers.parked(session)] == [iid]
    assert healthy.mismatches() == []
    failed = [e for e in healthy.events(iid) if e.action == "step.failed"]
    assert len(failed) == timers.MAX_FAILURES
    with transaction(factory) as session:  # the office fixed the cause (here: nothing) and retries
        interventions.retry_timers(session, iid, actor="office1", clock=clock)
    assert healthy.instance(iid).timer_failures == 0 and healthy.instance(iid).next_due_at is not None
    assert runner.sweep(factory, clock=clock).failed == {iid: healthy.instance(iid).timer_error}
    assert healthy.instance(iid).timer_failures == 1
    healthy.close()


DIAGRAMS = Path(__file__).parent / "diagrams"


@pytest.mark.parametrize("mode", ["straight", "restored"])
def test_timers_in_subprocesses_and_multiple_boundary_events_are_indexed_and_fire(
    mode, db_url, factory, clock, tmp_path
):
    (tmp_path / "forms").mkdir()
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="t", bpmn_dir=DIAGRAMS, forms_dir=tmp_path / "forms")
    driver = Driver(db_url, clock, mode)
    nested = driver.start({}, process="timer_in_subprocess")
    bounded = driver.start({}, process="timer_or_message_boundary")
    assert driver.instance(nested).next_due_at == datetime(2026, 11, 25, tzinfo=LOCAL_TZ)
    assert driver.instance(bounded).next_due_at == datetime(2026, 11, 26, tzinfo=LOCAL_TZ)
    assert driver.mismatches() == []
    clock.set(datetime(2026, 11, 25, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() == 1
    assert driver.only_task(nested).bpmn_id == "after_inner"
    assert driver.only_task(bounded).bpmn_id == "work"
    clock.set(datetime(2026, 11, 26, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() == 1  # the boundary's timer interrupts the task
    assert driver.only_task(bounded).bpmn_id == "cut_off"
    assert driver.tick() == 0
    assert [e.bpmn_id for e in driver.events(nested) if e.action == "timer.fired"] == ["inner_wait"]
    assert driver.mismatches() == []
    driver.close()


@pytest.mark.parametrize("mode", ["straight", "restored"])
def test_a_timer_already_due_when_its_task_opens_fires_in_that_step(mode, db_url, factory, clock, tmp_path):
    """Spiff's last timer refresh of a step can make an overdue boundary event ready without running it;
    the step runs the engine until nothing is left ready, so such a timer fires at once, and is never
    left ready with nothing in the index to sweep it."""
    (tmp_path / "forms").mkdir()
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="t", bpmn_dir=DIAGRAMS, forms_dir=tmp_path / "forms")
    driver = Driver(db_url, clock, mode)
    late = driver.start({}, process="already_due_boundary")
    assert [e.bpmn_id for e in driver.events(late) if e.action == "timer.fired"] == ["already_due"]
    task = driver.only_task(late)
    assert task.bpmn_id == "late_task" and task.escalation_level == 1
    assert driver.task_data(task.id).get("noted_late") is None  # the side path ran on its own token
    assert driver.instance(late).next_due_at is None and driver.tick() == 0
    assert driver.mismatches() == []
    driver.close()
