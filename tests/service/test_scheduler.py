"""The scheduler process: two of them at once fire every due timer exactly once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from tests.support import Driver, deploy_timer_process
from workflows.engine.models import AuditEvent, ProcessInstance

DUE = 1000
ZHIBU = str(Path(sys.executable).with_name("zhibu"))


def test_two_schedulers_fire_each_of_1000_due_timers_once(db_url, factory, clock, tmp_path):
    deploy_timer_process(factory, clock, tmp_path, "ticker")
    driver = Driver(db_url, clock, "straight")
    for _ in range(DUE):
        driver.start(None, process="ticker")
    driver.close()
    env = {**os.environ, "ZHIBU_DATABASE_URL": db_url, "ZHIBU_NOW": "2026-11-25T09:00:00"}
    runs = [
        subprocess.Popen(
            [ZHIBU, "scheduler", "--once"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    fired = [int(re.search(r"触发定时器 (\d+) 个", out).group(1)) for out, _ in outputs]
    assert sum(fired) == DUE, fired
    if db_url.startswith("postgresql"):
        # Row locks with SKIP LOCKED let both work side by side. (SQLite has one writer at a time, and
        # the busy one may keep the lock all through, so there only exactly-once is the property.)
        assert min(fired) > 0, fired
    with factory() as session:
        events = session.execute(
            select(AuditEvent.instance_id, func.count())
            .where(AuditEvent.action == "timer.fired")
            .group_by(AuditEvent.instance_id)
        ).all()
        assert len(events) == DUE and {count for _, count in events} == {1}
        assert session.scalar(select(func.count()).where(AuditEvent.action == "step.failed")) == 0
        statuses = session.scalars(select(ProcessInstance.status).distinct()).all()
        assert statuses == ["completed"]
    again = subprocess.run(
        [ZHIBU, "scheduler", "--once"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "触发定时器 0 个" in again.stdout
