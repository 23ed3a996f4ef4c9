"""What the benchmarks share: a fresh database, the way steps are run, timing and summaries."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import runner, specs, steps
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import TaskRecord
from workflows.migrations import init_db
from workflows.programme import org

START = datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ)
SWEEP_AT = datetime(2026, 12, 1, 0, 0, 1, tzinfo=LOCAL_TZ)  # just after the due deadline's midnight
DUE_DEADLINE = "2026-11-30"  # expires 2026-12-01 00:00 Beijing time: due at SWEEP_AT
LATER_DEADLINE = "2027-06-30"  # the filler template's deadline, rewritten per copy
REGISTERED = {
    "source": "自查",
    "branch": "一支部",
    "title": "支委会记录不全",
    "description": "三季度缺两次支委会记录",
}
FIXED = {"done": "已补齐记录", "evidence": ["支委会记录-10月.pdf"]}


def assigned(deadline: str) -> dict[str, str]:
    """Form data for 明确责任 with the given deadline."""
    return {"responsible": "zhangsan", "measures": "补齐会议记录并建立台账", "deadline": deadline}


def open_database(where: Path | str, clock: FixedClock) -> tuple[Engine, sessionmaker[Session]]:
    """A fresh database (a SQLite file at a path, or an empty database URL) with every table and
    bpmn/ + forms/ deployed."""
    engine = make_engine(where if isinstance(where, str) else f"sqlite:///{where}")
    init_db(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="bench")
        org.add_branch(session, "一支部", "第一党支部", now=clock.now(), actor="bench")
        org.add_user(
            session,
            "zhangsan",
            password="Zhibu-test-2026",
            role="branch_member",
            branch_code="一支部",
            now=clock.now(),
            actor="bench",
        )
    return engine, factory


def step(
    factory: sessionmaker[Session], clock: FixedClock, fn: Callable[[Session], Any], **context: Any
) -> Any:
    """Run one unit of work the way entry points do."""
    return runner.run_step(factory, fn, clock=clock, actor="bench", context=context)


def open_task_id(factory: sessionmaker[Session], instance_id: int, bpmn_id: str) -> str:
    """The id of the single open index row of an instance, checking it is `bpmn_id`."""
    with factory() as session:
        rows = session.scalars(
            select(TaskRecord).where(TaskRecord.instance_id == instance_id, TaskRecord.status == "open")
        ).all()
    assert [r.bpmn_id for r in rows] == [bpmn_id], [r.bpmn_id for r in rows]
    return rows[0].id


def start_at_fix(factory: sessionmaker[Session], clock: FixedClock, deadline: str) -> tuple[int, str]:
    """Start a rectification through the engine and complete 明确责任; return (instance id, fix task id)."""
    row = step(
        factory, clock, lambda s: steps.start(s, "rectification", REGISTERED, actor="bench", clock=clock)
    )
    assign_id = open_task_id(factory, row.id, "assign")
    data = assigned(deadline)
    step(
        factory,
        clock,
        lambda s: steps.complete_task(s, assign_id, data, actor="bench", clock=clock),
        task_id=assign_id,
    )
    return row.id, open_task_id(factory, row.id, "fix")


def timed_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Call `fn` once; return (elapsed milliseconds, its result)."""
    t0 = time.perf_counter_ns()
    result = fn()
    return (time.perf_counter_ns() - t0) / 1e6, result


def summary(samples: list[float]) -> dict[str, float]:
    """Median, 10th and 90th percentile, min of a list of milliseconds."""
    deciles = statistics.quantiles(samples, n=10)
    return {
        "median": round(statistics.median(samples), 3),
        "p10": round(deciles[0], 3),
        "p90": round(deciles[-1], 3),
        "min": round(min(samples), 3),
        "n": len(samples),
    }
