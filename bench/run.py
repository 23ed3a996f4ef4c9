"""Benchmarks for `make bench`: one human step against SpiffWorkflow's floor, and the timer sweep's growth.

Measured in one process and written to `bench/results.json`:

* `step_ms_floor`: the raw SpiffWorkflow cost of one human step, all in memory: restore the stored
  state (json.loads + SERIALIZER.from_dict with the cached specs put back), complete the READY
  整改落实 (`fix`) task, run the engine to 验收销号 (`signoff`), serialize (to_dict + json.dumps).
* `step_ms_zhibu`: the same step through `runner.run_step` + `instances.complete_task` on a SQLite
  file: lock and load, validate the form, complete, sync the task index, append audit, commit.
* `sweep_ms_100_waiting` / `sweep_ms_10000_waiting`: one `runner.sweep` over a database holding
  100 (resp. 10,000) instances waiting on a deadline timer, exactly 10 of them due.

Figures are medians over many repetitions after a warm-up. Time comes from a `FixedClock`; nothing sleeps.
`python -m bench.run --profile` also prints a cProfile of our step (taken after, and apart from, the timings).
"""

from __future__ import annotations

import cProfile
import json
import platform
import pstats
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import SpiffWorkflow
import sqlalchemy
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Engine, delete, event, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from bench import branch
from workflows import consistency, instances, org, runner, specs, timers
from workflows.clock import LOCAL_TZ, FixedClock, end_of_day
from workflows.db import init_db, make_engine, make_session_factory, transaction
from workflows.engine import SCRIPT_ENGINE, SERIALIZER, running_at
from workflows.models import ProcessInstance, TaskRecord

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
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

STEP_DESCRIPTION = (
    "rectification: complete 整改落实 (fix) with its form data; the engine runs on to 验收销号 (signoff)"
)
STEP_WARMUP = 30
STEP_REPS = 300
SWEEP_DUE = 10
SWEEP_SIZES = (100, 10_000)
SWEEP_REPS = 9
TARGET_STEP_RATIO = 2.0
TARGET_SWEEP_GROWTH = 1.5


def assigned(deadline: str) -> dict[str, str]:
    """Form data for 明确责任 with the given deadline."""
    return {"responsible": "zhangsan", "measures": "补齐会议记录并建立台账", "deadline": deadline}


def open_database(path: Path, clock: FixedClock) -> tuple[Engine, sessionmaker[Session]]:
    """A fresh SQLite file with every table and bpmn/ + forms/ deployed."""
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="bench")
        org.add_branch(session, "一支部", "第一党支部", now=clock.now(), actor="bench")
        org.add_user(
            session,
            "zhangsan",
            password="secret1",
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
        factory, clock, lambda s: instances.start(s, "rectification", REGISTERED, actor="bench", clock=clock)
    )
    assign_id = open_task_id(factory, row.id, "assign")
    data = assigned(deadline)
    step(
        factory,
        clock,
        lambda s: instances.complete_task(s, assign_id, data, actor="bench", clock=clock),
        task_id=assign_id,
    )
    return row.id, open_task_id(factory, row.id, "fix")


def floor_step(state_json: str, task_id: str, deployed: specs.DeployedSpec, clock: FixedClock) -> str:
    """Spiff alone: restore as instances.restore does, run the task, serialize as instances._save does."""
    dct = json.loads(state_json)
    dct["spec"] = deployed.spec
    dct["subprocess_specs"] = deployed.subprocess_specs
    workflow = SERIALIZER.from_dict(dct)
    workflow.script_engine = SCRIPT_ENGINE
    task = workflow.get_task_from_id(uuid.UUID(task_id))
    task.data.update(FIXED)
    with running_at(clock):  # a context-variable set/reset; keeps the timers off the real clock
        task.run()
        workflow.do_engine_steps()
    return json.dumps(SERIALIZER.to_dict(workflow), ensure_ascii=False, separators=(",", ":"))


def zhibu_step(factory: sessionmaker[Session], task_id: str, clock: FixedClock) -> None:
    """Our full step: one transaction through runner.run_step and instances.complete_task."""
    step(
        factory,
        clock,
        lambda s: instances.complete_task(s, task_id, FIXED, actor="bench", clock=clock),
        task_id=task_id,
    )


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


def bench_step(workdir: Path, profile: bool = False) -> dict[str, Any]:
    """Floor and full step on the same instances, interleaved, the order alternating per repetition."""
    clock = FixedClock(START)
    engine, factory = open_database(workdir / "step.db", clock)
    try:
        total = STEP_WARMUP + STEP_REPS
        waiting = [start_at_fix(factory, clock, DUE_DEADLINE) for _ in range(total)]
        clock.advance(days=2)
        with factory() as session:
            states = dict(session.execute(select(ProcessInstance.id, ProcessInstance.state_json)).all())
            deployed = specs.as_deployed(specs.latest_version(session, "rectification"))
        # The floor must reach the same place as our step does: 验收销号 READY, the deadline timer gone.
        check = json.loads(floor_step(states[waiting[0][0]], waiting[0][1], deployed, clock))
        check.update(spec=deployed.spec, subprocess_specs=deployed.subprocess_specs)
        ready = SERIALIZER.from_dict(check).get_tasks(state=TaskState.READY, manual=True)
        assert [t.task_spec.bpmn_id for t in ready] == ["signoff"]
        floor_ms, zhibu_ms = [], []
        for rep, (instance_id, task_id) in enumerate(waiting):
            state = states[instance_id]
            floor = lambda s=state, t=task_id: floor_step(s, t, deployed, clock)  # noqa: E731
            ours = lambda t=task_id: zhibu_step(factory, t, clock)  # noqa: E731
            first, second = (floor, ours) if rep % 2 == 0 else (ours, floor)
            a, _ = timed_ms(first)
            b, _ = timed_ms(second)
            f, z = (a, b) if rep % 2 == 0 else (b, a)
            if rep >= STEP_WARMUP:
                floor_ms.append(f)
                zhibu_ms.append(z)
        for instance_id, _ in waiting[:: max(1, total // 10)]:
            open_task_id(factory, instance_id, "signoff")
        with factory() as session:
            assert list(consistency.mismatches(session, [i for i, _ in waiting[:20]])) == []
        if profile:
            profile_steps(factory, clock)
        return {
            "floor": summary(floor_ms),
            "zhibu": summary(zhibu_ms),
            "state_json_bytes": len(states[waiting[0][0]]),
        }
    finally:
        engine.dispose()


def profile_steps(factory: sessionmaker[Session], clock: FixedClock, count: int = 200) -> None:
    """Print where our step spends its time (cProfile over `count` fresh steps; not part of the figures)."""
    task_ids = [start_at_fix(factory, clock, DUE_DEADLINE)[1] for _ in range(count)]
    profiler = cProfile.Profile()
    profiler.enable()
    for task_id in task_ids:
        zhibu_step(factory, task_id, clock)
    profiler.disable()
    print(f"cProfile of {count} zhibu steps (cumulative, top 40):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(40)


def _filler_rewriter(template_state: str) -> tuple[list[str], Callable[[dict[str, str], str], str]]:
    """Rewrite a template state for a copy: fresh task ids, and a new deadline in data and timer."""
    task_ids = list(json.loads(template_state)["tasks"])
    old_due = end_of_day(LATER_DEADLINE).isoformat()
    assert template_state.count(f'"{LATER_DEADLINE}"') >= 1 and template_state.count(f'"{old_due}"') == 1
    pattern = re.compile("|".join(re.escape(t) for t in task_ids))

    def rewrite(ids: dict[str, str], deadline: str) -> str:
        """The template state with task ids mapped through `ids` and the deadline set to `deadline`."""
        text = pattern.sub(lambda m: ids[m.group(0)], template_state)
        text = text.replace(f'"{LATER_DEADLINE}"', f'"{deadline}"')
        return text.replace(f'"{old_due}"', f'"{end_of_day(deadline).isoformat()}"')

    return task_ids, rewrite


def build_population(path: Path, size: int) -> tuple[Engine, sessionmaker[Session], list[int]]:
    """`size` instances waiting at 整改落实 with a deadline timer; SWEEP_DUE of them due at SWEEP_AT.

    The due ones and one filler template go through the engine; the other fillers are copies of the
    template with fresh task ids and a deadline spread over the following year, inserted in bulk.
    """
    clock = FixedClock(START)
    engine, factory = open_database(path, clock)
    template_id, _ = start_at_fix(factory, clock, LATER_DEADLINE)
    due_ids = [start_at_fix(factory, clock, DUE_DEADLINE)[0] for _ in range(SWEEP_DUE)]
    inst_t, task_t = ProcessInstance.__table__, TaskRecord.__table__
    with engine.connect() as conn:
        template = conn.execute(select(inst_t).where(inst_t.c.id == template_id)).mappings().one()
        template_tasks = (
            conn.execute(select(task_t).where(task_t.c.instance_id == template_id)).mappings().all()
        )
        next_id = conn.scalar(select(sqlalchemy.func.max(inst_t.c.id))) + 1
    task_ids, rewrite = _filler_rewriter(template["state_json"])
    first_day = date.fromisoformat(DUE_DEADLINE) + timedelta(days=2)
    inst_rows, task_rows = [], []
    for n in range(size - SWEEP_DUE - 1):
        deadline = (first_day + timedelta(days=n % 365)).isoformat()
        due_at = end_of_day(deadline)
        ids = {t: str(uuid.uuid4()) for t in task_ids}
        new_id = next_id + n
        inst_rows.append(
            {**template, "id": new_id, "state_json": rewrite(ids, deadline), "next_due_at": due_at}
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


def bench_sweep(workdir: Path, size: int) -> dict[str, Any]:
    """Median time of one sweep firing the 10 due timers among `size` waiting instances."""
    engine, factory, due_ids = build_population(workdir / f"sweep-{size}.db", size)
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
            assert (result.fired, result.instances, result.failed) == (SWEEP_DUE, SWEEP_DUE, {}), result
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


def verdict(met: bool) -> str:
    """How a target reads in the summary."""
    return "met" if met else "NOT met"


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark, write bench/results.json, print a summary (`--profile` adds a cProfile)."""
    profile = "--profile" in (sys.argv[1:] if argv is None else argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zhibu-bench-") as tmp:
        workdir = Path(tmp)
        step_result = bench_step(workdir, profile)
        sweeps = {size: bench_sweep(workdir, size) for size in SWEEP_SIZES}
        branch_steps = {size: branch.bench_branch_step(workdir, size) for size in branch.SIZES}
    floor_ms, zhibu_ms = step_result["floor"]["median"], step_result["zhibu"]["median"]
    small, large = (sweeps[s]["sweep"]["median"] for s in SWEEP_SIZES)
    plan = sweeps[SWEEP_SIZES[-1]]["plan"]
    uses_index = sweeps[SWEEP_SIZES[-1]]["uses_index"]
    results = {
        "step_ms_floor": floor_ms,
        "step_ms_zhibu": zhibu_ms,
        "step_vs_floor_ratio": round(zhibu_ms / floor_ms, 3),
        "sweep_ms_100_waiting": small,
        "sweep_ms_10000_waiting": large,
        "sweep_growth_ratio": round(large / small, 3),
        **{f"branch_step_ms_{size}": branch_steps[size]["median"] for size in branch.SIZES},
        "branch_scaling_ratio": round(
            branch_steps[branch.SIZES[-1]]["median"] / branch_steps[branch.SIZES[0]]["median"], 3
        ),
        "notes": {
            "branch_step": "branch_programme: the secretary completes 动员部署、制定方案 (mobilize)",
            "branch_step_samples": {str(size): branch_steps[size]["n"] for size in branch.SIZES},
            "step": STEP_DESCRIPTION,
            "step_floor_ms": step_result["floor"],
            "step_zhibu_ms": step_result["zhibu"],
            "step_warmup": STEP_WARMUP,
            "state_json_bytes_before_step": step_result["state_json_bytes"],
            "sweep_due_instances": SWEEP_DUE,
            "sweep_ms": {str(size): sweeps[size]["sweep"] for size in SWEEP_SIZES},
            "sweep_warmup": 1,
            "due_query_ms": {str(size): sweeps[size]["query_ms"] for size in SWEEP_SIZES},
            "due_query_sql": sweeps[SWEEP_SIZES[-1]]["sql"],
            "due_query_plan": plan,
            "due_query_uses_next_due_at_index": uses_index,
            "targets": {
                "step_vs_floor_ratio": TARGET_STEP_RATIO,
                "sweep_growth_ratio": TARGET_SWEEP_GROWTH,
                "branch_scaling_ratio": branch.TARGET_SCALING,
            },
            "python": platform.python_version(),
            "spiffworkflow": getattr(SpiffWorkflow, "__version__", "3.2.x"),
            "sqlalchemy": sqlalchemy.__version__,
            "sqlite": sqlite3.sqlite_version,
            "machine": platform.machine(),
            "elapsed_s": round(time.perf_counter() - began, 1),
        },
    }
    RESULTS_PATH.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ratio, growth = results["step_vs_floor_ratio"], results["sweep_growth_ratio"]
    print(f"step (fix -> signoff), median of {STEP_REPS}:")
    print(f"  floor (Spiff in memory)   {floor_ms:8.3f} ms")
    print(f"  zhibu (full step, SQLite) {zhibu_ms:8.3f} ms")
    print(f"  ratio {ratio:.2f}  (target <= {TARGET_STEP_RATIO}: {verdict(ratio <= TARGET_STEP_RATIO)})")
    print(f"sweep firing {SWEEP_DUE} due timers, median of {SWEEP_REPS}:")
    for size in SWEEP_SIZES:
        sweep_ms, query_ms = sweeps[size]["sweep"]["median"], sweeps[size]["query_ms"]
        print(f"  {size:>6} waiting  {sweep_ms:8.3f} ms  (of which the due query alone {query_ms:.3f} ms)")
    met = verdict(growth <= TARGET_SWEEP_GROWTH)
    print(f"  growth {growth:.2f}  (target <= {TARGET_SWEEP_GROWTH}: {met})")
    scaling = results["branch_scaling_ratio"]
    print("one branch task (mobilize), median:")
    for size in branch.SIZES:
        print(f"  {size:>6} branches  {results[f'branch_step_ms_{size}']:8.3f} ms")
    met = verdict(scaling <= branch.TARGET_SCALING)
    print(f"  scaling {scaling:.2f}  (target <= {branch.TARGET_SCALING}: {met})")
    print("due-instances query plan (10,000 waiting):")
    print(f"  {results['notes']['due_query_sql']}")
    for line in plan:
        print(f"  {line}")
    print(f"  uses an index on instances.next_due_at: {'yes' if uses_index else 'NO (a scan: O(instances))'}")
    print(f"wrote {RESULTS_PATH} in {results['notes']['elapsed_s']} s")
    return 0 if uses_index else 1


if __name__ == "__main__":
    sys.exit(main())
