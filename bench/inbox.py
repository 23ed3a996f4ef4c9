"""`inbox_p95_ms`: a secretary's inbox page with 1,000,000 task rows in the database, 50,000 of them open.

The rows are inserted in bulk (1,000 branches, 20,000 instances); the measured call is what the inbox
page runs: `inbox.search(view="todo")` (the page of tasks and the counts of every tab). The plans of
its statements are printed, to show they are served from indexes.
"""

from __future__ import annotations

import statistics
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert

from bench.common import timed_ms
from workflows.engine import specs
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import ProcessInstance, TaskRecord
from workflows.migrations import init_db
from workflows.programme import inbox, org

ROWS, OPEN, BRANCHES, INSTANCES = 1_000_000, 50_000, 1_000, 20_000
REPS = 200
TARGET_P95_MS = 20.0
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ)
LANES = ["党支部书记", "党支部", "整改责任人", "党委工作室"]


def _populate(path: Path):
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        version_id = specs.deploy_all(session, now=NOW, actor="bench")[0].id
        for n in range(BRANCHES):
            session.add(
                org.Branch(
                    code=f"B{n:04d}",
                    name=f"第{n}党支部",
                    member_count=20,
                    demonstration=False,
                    active=True,
                    created_at=NOW,
                )
            )
        session.flush()
        org.add_user(
            session,
            "sec_B0007",
            password="Zhibu-test-2026",
            role="secretary",
            branch_code="B0007",
            now=NOW,
            actor="bench",
        )
    inst_t, task_t = ProcessInstance.__table__, TaskRecord.__table__
    with engine.begin() as conn:
        conn.execute(
            insert(inst_t),
            [
                {
                    "id": i + 1,
                    "process_id": "rectification",
                    "spec_version_id": version_id,
                    "spec_hash": "bench",
                    "status": "running",
                    "branch": f"B{i % BRANCHES:04d}",
                    "title": f"问题{i}",
                    "state_json": "{}",
                    "version": 1,
                    "next_due_at": None,
                    "started_by": "bench",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "timer_failures": 0,
                }
                for i in range(INSTANCES)
            ],
        )
        batch = []
        for n in range(ROWS):
            is_open = n < OPEN
            instance = n % INSTANCES + 1
            branch = f"B{(instance - 1) % BRANCHES:04d}"
            lane = LANES[(n // INSTANCES) % len(LANES)]  # every branch gets every lane
            batch.append(
                {
                    "id": str(uuid.UUID(int=n + 1)),
                    "instance_id": instance,
                    "process_id": "rectification",
                    "bpmn_id": "fix" if lane == "整改责任人" else "assign",
                    "title": "整改落实",
                    "subject": f"问题{instance}",
                    "lane": lane,
                    "form_key": None,
                    "branch": branch,
                    "due_at": NOW + timedelta(hours=n % 2000 - 500),
                    "escalation_level": 0,
                    "assignee": f"user{n % 5000}" if lane == "整改责任人" else None,
                    "status": "open" if is_open else "completed",
                    "created_at": NOW - timedelta(minutes=n % 100000),
                    "completed_at": None if is_open else NOW,
                    "completed_by": None if is_open else f"user{n % 5000}",
                }
            )
            if len(batch) == 20_000:
                conn.execute(insert(task_t), batch)
                batch = []
        if batch:
            conn.execute(insert(task_t), batch)
        conn.exec_driver_sql("ANALYZE")
    return engine, factory


def bench_inbox(workdir: Path) -> dict[str, Any]:
    """p95 and median ms of a secretary's inbox (todo tab) over REPS calls, with the query plans."""
    engine, factory = _populate(workdir / "inbox.db")
    try:
        with factory() as session:
            first = inbox.search(session, "sec_B0007", view="todo", now=NOW)
            assert first.total > 0 and all(t.branch == "B0007" for t, _ in first.rows), first.total
            samples = [
                timed_ms(lambda: inbox.search(session, "sec_B0007", view="todo", now=NOW))[0]
                for _ in range(REPS)
            ]
        plans = _plans(engine, factory)
        deciles = statistics.quantiles(samples, n=20)
        return {
            "p95": round(deciles[-1], 3),
            "median": round(statistics.median(samples), 3),
            "todo_total": first.total,
            "plans": plans,
        }
    finally:
        engine.dispose()


def _plans(engine, factory) -> list[str]:
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM tasks" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with factory() as session:
            inbox.search(session, "sec_B0007", view="todo", now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    lines = []
    with engine.connect() as conn:
        for statement, parameters in seen:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            lines.append(" | ".join(row[-1] for row in rows))
    return lines


def uses_indexes(plans: list[str]) -> bool:
    """No statement scans the whole tasks table."""
    return all("SCAN tasks" not in plan.replace("SCAN tasks USING", "") for plan in plans)
