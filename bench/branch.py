"""`branch_step_ms_10` / `_1000`: one branch task completed in a company of 10 or of 1,000 branches.

Each company gets its programme started (one branch programme instance per branch). The measured
step is the secretary's 动员部署、制定方案 (`mobilize`) of one of ten chosen branches; between
samples the office returns the plan (not measured) so the task comes back. Both companies run the
same cycles on the same number of branches, so instance state grows alike and only the company
size differs.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workflows.engine import runner, specs
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import TaskRecord
from workflows.migrations import init_db
from workflows.programme import catalog, org, units

SIZES = (10, 1000)
CHOSEN = 10  # branches cycled in each company
CYCLES = 12  # samples per chosen branch; the first cycle warms up
TARGET_SCALING = 1.2
PLAN = {
    "meeting_date": "2026-06-05",
    "attendees": 12,
    "plan": "对照手册逐项落实",
    "plan_items": [
        {"task": "规范三会一课", "measures": "建立台账", "deadline": "2026-12-31", "responsible": "书记"}
    ],
}


def _company(path: Path, size: int):
    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=LOCAL_TZ))
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        now = clock.now()
        specs.deploy_all(session, now=now, actor="bench")
        catalog.load(session, catalog.read_file(catalog.DEFAULT_CATALOG), now=now, actor="bench")
        org.add_user(session, "office1", password="Zhibu-test-2026", role="office", now=now, actor="bench")
        for n in range(size):
            code = f"B{n:04d}"
            org.add_branch(session, code, f"第{n}党支部", now=now, actor="bench", members=20)
            org.add_user(
                session,
                f"sec_{code}",
                password="Zhibu-test-2026",
                role="secretary",
                branch_code=code,
                now=now,
                actor="bench",
            )
    units.start_programme(factory, 2026, None, actor="office1", clock=clock)
    return engine, factory, clock


def _open_task(factory, bpmn_id: str, branch: str) -> str:
    with factory() as session:
        return session.scalar(
            select(TaskRecord.id).where(
                TaskRecord.status == "open", TaskRecord.bpmn_id == bpmn_id, TaskRecord.branch == branch
            )
        )


def bench_branch_step(workdir: Path, size: int) -> dict[str, Any]:
    """Median ms of completing `mobilize` in a company of `size` branches."""
    engine, factory, clock = _company(workdir / f"branches-{size}.db", size)
    try:
        chosen = [f"B{n:04d}" for n in range(0, size, max(1, size // CHOSEN))][:CHOSEN]
        samples = []
        for cycle in range(CYCLES):
            for code in chosen:
                task_id = _open_task(factory, "mobilize", code)
                started = time.perf_counter_ns()
                runner.complete(factory, task_id, PLAN, actor=f"sec_{code}", clock=clock)
                elapsed = (time.perf_counter_ns() - started) / 1e6
                if cycle:
                    samples.append(elapsed)
                review = _open_task(factory, "review_plan", code)
                runner.complete(
                    factory, review, {"approved": False, "comment": "请补充"}, actor="office1", clock=clock
                )
        return {"median": round(statistics.median(samples), 3), "n": len(samples)}
    finally:
        engine.dispose()
