"""The timer sweep at growing numbers of waiting instances with a fixed number due.

Populations are built fast: the due instances and one template go through the engine, the other
waiting instances are copies of the template with fresh task ids and their own deadline (data and
every ladder timer rewritten), inserted in bulk and spot-checked against the consistency check.
"""

from __future__ import annotations

import json
import re
import statistics
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, delete, event, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bench.common import (
    DUE_DEADLINE,
    LATER_DEADLINE,
    START,
    SWEEP_AT,
    open_database,
    start_at_fix,
    summary,
    timed_ms,
)
from workflows.deadlines import calendar, escalation
from workflows.engine import consistency, runner, timers
from workflows.engine.clock import FixedClock
from workflows.engine.models import ProcessInstance, TaskRecord

SWEEP_REPS = 9


def _ladder_instants(deadline: str) -> list[str]:
    """The instants of 整改落实's ladder timers for a deadline, as stored in the workflow state."""
    cal = calendar.WorkCalendar()
    return [
        calendar.deadline(cal, deadline, level["offset"])[0].isoformat()
        for level in escalation.ladder("rectification", "fix")
    ]


def _filler_rewriter(template_state: str) -> tuple[list[str], Callable[[dict[str, str], str], str]]:
    """Rewrite a template state for a copy: fresh task ids, a new deadline in data and every ladder timer."""
    task_ids = list(json.loads(template_state)["tasks"])
    old = _ladder_instants(LATER_DEADLINE)
    assert template_state.count(f'"{LATER_DEADLINE}"') >= 1
    assert all(template_state.count(f'"{instant}"') == 1 for instant in old), "ladder instants not found once"
    pattern = re.compile("|".join(re.escape(t) for t in task_ids))

    def rewrite(ids: dict[str, str], deadline: str) -> str:
        """The template state with task ids mapped through `ids` and the deadline set to `deadline`."""
        text = pattern.sub(lambda m: ids[m.group(0)], template_state)
        text = text.replace(f'"{LATER_DEADLINE}"', f'"{deadline}"')
        for before, after in zip(old, _ladder_instants(deadline), strict=True):
            text = text.replace(f'"{before}"', f'"{after}"')
        return text

    return task_ids, rewrite


def build_population(path: Path, size: int, due: int) -> tuple[Engine, sessionmaker[Session], list[int]]:
    """`size` instances waiting at 整改落实 with its ladder of timers; `due` of them due at SWEEP_AT.

    The due ones and one filler template go through the engine; the other fillers are copies of the
    template with fresh task ids and a deadline spread over the following year, inserted in bulk.
    """
    clock = FixedClock(START)
    engine, factory = open_database(path, clock)
    template_id, _ = start_at_fix(factory, clock, LATER_DEADLINE)
    due_ids = [start_at_fix(factory, clock, DUE_DEADLINE)[0] for _ in range(due)]
    inst_t, task_t = ProcessInstance.__table__, TaskRecord.__table__
    with engine.connect() as conn:
        template = conn.execute(select(inst_t).where(inst_t.c.id == template_id)).mappings().one()
        template_tasks = (
            conn.execute(select(task_t).where(task_t.c.instance_id == template_id)).mappings().all()
        )
        next_id = conn.scalar(select(sqlalchemy.func.max(inst_t.c.id))) + 1
    task_ids, rewrite = _filler_rewriter(template["state_json"])
    first_day = date.fromisoformat(DUE_DEADLINE) + timedelta(days=14)  # even their reminders come later
    inst_rows, task_rows = [], []
    for n in range(size - due - 1):
        deadline = (first_day + timedelta(days=n % 365)).isoformat()
        instants = [datetime.fromisoformat(i) for i in _ladder_instants(deadline)]
        due_at = instants[
            [lv.get("deadline", False) for lv in escalation.ladder("rectification", "fix")].index(True)
        ]
        ids = {t: str(uuid.uuid4()) for t in task_ids}
        new_id = next_id + n
        inst_rows.append(
            {**template, "id": new_id, "state_json": rewrite(ids, deadline), "next_due_at": min(instants)}
        )
        for row in template_tasks:
            fields = {**row, "id": ids[row["id"]], "instance_id": new_id}
            if row["status"] == "open":
                fields["due_at"] = due_at
            task_rows.append(fields)
    with engine.begin() as conn:
        for i in range(0, len(inst_rows), 2000):
            conn.execute(insert(inst_t), inst_rows[i : i + 2000])
        for i in range(0, len(task_rows), 4000):
            conn.execute(insert(task_t), task_rows[i : i + 4000])
    with factory() as session:
        count = session.scalar(select(sqlalchemy.func.count()).select_from(ProcessInstance))
        waiting = session.scalar(
            select(sqlalchemy.func.count()).where(ProcessInstance.next_due_at.is_not(None))
        )
        assert count == waiting == size, (count, waiting, size)
        sample = [template_id, next_id, next_id + len(inst_rows) - 1, *due_ids]
        assert list(consistency.mismatches(session, sample)) == [], (
            "copied instances disagree with their index"
        )
    return engine, factory, due_ids


def due_query_plan(
    engine: Engine, factory: sessionmaker[Session], now: datetime
) -> tuple[str, list[str], list[str]]:
    """The SQL `timers.due_instance_ids` emits, SQLite's EXPLAIN QUERY PLAN for it, and the indexes
    of `instances` that lead with `next_due_at` (which the plan should name)."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        """Record each statement sent to SQLite with its parameters."""
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with factory() as session:
            timers.due_instance_ids(session, now)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in seen if "next_due_at" in s)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        names = [row[1] for row in conn.exec_driver_sql("PRAGMA index_list('instances')")]
        leading = [
            n for n in names if conn.exec_driver_sql(f"PRAGMA index_info('{n}')").first()[2] == "next_due_at"
        ]
    return " ".join(statement.split()), [row[-1] for row in rows], leading


def snapshot_rows(engine: Engine, instance_ids: list[int]) -> tuple[list[dict], list[dict]]:
    """The instance and task-index rows of some instances, to put back after a sweep."""
    inst_t, task_t = ProcessInstance.__table__, TaskRecord.__table__
    with engine.connect() as conn:
        inst = [dict(r) for r in conn.execute(select(inst_t).where(inst_t.c.id.in_(instance_ids))).mappings()]
        task = [
            dict(r)
            for r in conn.execute(select(task_t).where(task_t.c.instance_id.in_(instance_ids))).mappings()
        ]
    return inst, task


def restore_rows(engine: Engine, saved: tuple[list[dict], list[dict]]) -> None:
    """Put instances and their task-index rows back as snapshotted (their timers wait again)."""
    inst_rows, task_rows = saved
    inst_t, task_t = ProcessInstance.__table__, TaskRecord.__table__
    ids = [r["id"] for r in inst_rows]
    with engine.begin() as conn:
        conn.execute(delete(task_t).where(task_t.c.instance_id.in_(ids)))
        for row in inst_rows:
            conn.execute(update(inst_t).where(inst_t.c.id == row["id"]).values(**row))
        conn.execute(insert(task_t), task_rows)


def bench_sweep(workdir: Path, size: int, due: int) -> dict[str, Any]:
    """Median time of one sweep over `size` waiting instances, `due` of them due (reminder and deadline)."""
    engine, factory, due_ids = build_population(workdir / f"sweep-{size}.db", size, due)
    try:
        clock = FixedClock(SWEEP_AT)
        with factory() as session:
            assert sorted(i for _, i in timers.due_instance_ids(session, clock.now())) == sorted(due_ids)
        sql, plan, indexes = due_query_plan(engine, factory, clock.now())
        query_ms = []
        with factory() as session:
            for _ in range(50):
                query_ms.append(timed_ms(lambda: timers.due_instance_ids(session, clock.now()))[0])
        saved = snapshot_rows(engine, due_ids)
        samples = []
        for rep in range(SWEEP_REPS + 1):  # the first sweep warms up and is not counted
            elapsed, result = timed_ms(lambda: runner.sweep(factory, clock=clock))
            assert (result.fired, result.instances, result.failed) == (2 * due, due, {}), result
            if rep == 0:
                with factory() as session:
                    assert list(consistency.mismatches(session, due_ids)) == []
                    assert timers.due_instance_ids(session, clock.now()) == []
            else:
                samples.append(elapsed)
            restore_rows(engine, saved)
        uses_index = any(f"INDEX {name} " in f"{line} " for line in plan for name in indexes)
        return {
            "sweep": summary(samples),
            "query_ms": round(statistics.median(query_ms), 3),
            "plan": plan,
            "sql": sql,
            "uses_index": uses_index,
        }
    finally:
        engine.dispose()
