"""`zhibu check` agrees with a healthy database and finds every kind of corrupted index row."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, update

from tests.support import ASSIGNED, REGISTERED, Driver
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction
from workflows.engine.models import ProcessInstance, TaskRecord


@pytest.fixture
def world(db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    waiting = driver.start(REGISTERED)
    timed = driver.start(REGISTERED)
    driver.complete(driver.only_task(timed).id, ASSIGNED)
    yield driver, deployed, waiting, timed
    driver.close()


def test_healthy_database_has_no_mismatches(world):
    driver, *_ = world
    assert driver.mismatches() == []


def test_wrong_due_date_is_found(world):
    driver, factory, _, timed = world
    task_id = driver.only_task(timed).id
    with transaction(factory) as s:
        s.execute(
            update(TaskRecord)
            .where(TaskRecord.id == task_id)
            .values(due_at=datetime(2030, 1, 1, tzinfo=LOCAL_TZ))
        )
    problems = driver.mismatches()
    assert len(problems) == 1 and task_id in problems[0] and "due_at" in problems[0]


def test_missing_row_is_found(world):
    driver, factory, waiting, _ = world
    task_id = driver.only_task(waiting).id
    with transaction(factory) as s:
        s.execute(delete(TaskRecord).where(TaskRecord.id == task_id))
    problems = driver.mismatches()
    assert len(problems) == 1 and task_id in problems[0] and "没有" in problems[0]


def test_extra_row_is_found(world):
    driver, factory, waiting, _ = world
    row = driver.only_task(waiting)
    with transaction(factory) as s:
        s.add(
            TaskRecord(
                id="00000000-0000-0000-0000-000000000001",
                instance_id=waiting,
                process_id="rectification",
                bpmn_id="signoff",
                title="验收销号",
                lane="党委工作室",
                status="open",
                escalation_level=0,
                created_at=row.created_at,
            )
        )
    problems = driver.mismatches()
    assert len(problems) == 1 and "00000000-0000-0000-0000-000000000001" in problems[0]


def test_completed_row_marked_open_again_is_found(world):
    driver, factory, _, timed = world
    with transaction(factory) as s:
        s.execute(
            update(TaskRecord)
            .where(TaskRecord.bpmn_id == "assign", TaskRecord.instance_id == timed)
            .values(status="open")
        )
    problems = driver.mismatches()
    assert len(problems) == 1 and "并未就绪" in problems[0]


def test_wrong_timer_index_is_found(world):
    driver, factory, _, timed = world
    correct = driver.instance(timed).next_due_at
    with transaction(factory) as s:
        s.execute(
            update(ProcessInstance)
            .where(ProcessInstance.id == timed)
            .values(next_due_at=correct + timedelta(hours=1))
        )
    problems = driver.mismatches()
    assert len(problems) == 1 and "next_due_at" in problems[0] and f"实例 {timed}" in problems[0]
