"""Benchmarks for `make bench`: one human step against SpiffWorkflow's floor, and the timer sweep's growth.

Measured in one run and written to `bench/results.json`:

* `step_ms_floor`: the raw SpiffWorkflow cost of one human step, all in memory: restore the stored
  state (json.loads + SERIALIZER.from_dict with the cached specs put back), complete the READY
  整改落实 (`fix`) task, run the engine to 验收销号 (`signoff`), serialize (to_dict + json.dumps).
* `step_ms_zhibu`: the same step through `runner.run_step` + `steps.complete_task` on a SQLite
  file: lock and load, validate the form, complete, sync the task index, append audit, commit.
* `sweep_ms_100_waiting` / `sweep_ms_10000_waiting`: one `runner.sweep` over a database holding
  100 (resp. 10,000) instances waiting on a deadline timer, exactly 10 of them due.
* `step_ms_zhibu_postgres` / `step_vs_floor_ratio_postgres`: the same floor and step measured the same
  way on a fresh PostgreSQL schema (`bench.postgres` says which server), beside the SQLite figures.
* `api_complete_per_s`, `api_vs_engine_ratio`, `worker_scaling_ratio`: tasks completed over HTTP
  through gunicorn on PostgreSQL (`bench.api` defines each figure).

Without a reachable PostgreSQL the PostgreSQL figures are null and `notes.postgres` says why.

Figures are medians over many repetitions after a warm-up. Time comes from a `FixedClock`; nothing sleeps
(but the HTTP figures: gunicorn runs on the real clock).
`python -m bench.run --profile` also prints a cProfile of our step (taken after, and apart from, the timings).
"""

from __future__ import annotations

import cProfile
import json
import platform
import pstats
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import SpiffWorkflow
import sqlalchemy
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench import api, branch, inbox, postgres, sweep
from bench.common import (
    DUE_DEADLINE,
    FIXED,
    START,
    open_database,
    open_task_id,
    start_at_fix,
    step,
    summary,
    timed_ms,
)
from workflows.engine import consistency, specs, steps
from workflows.engine.clock import FixedClock
from workflows.engine.models import ProcessInstance
from workflows.engine.spiff import SCRIPT_ENGINE, SERIALIZER, running_at

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"
STEP_DESCRIPTION = (
    "rectification: complete 整改落实 (fix) with its form data; the engine runs on to 验收销号 (signoff)"
)
STEP_WARMUP = 30
STEP_REPS = 300
# (waiting instances, due among them): growth 100 → 10,000 with 10 due; 1,000 → 100,000 with 100 due
SWEEP_GROWTH = ((100, 10), (10_000, 10))
SWEEP_WAITING = ((1_000, 100), (100_000, 100))
TARGET_STEP_RATIO = 2.0
TARGET_SWEEP_GROWTH = 1.5
TARGET_SWEEP_WAITING = 1.3
BUSY_ELSEWHERE = 0.25  # cores used by other work during an HTTP measurement worth a warning
API_KEYS = ("api_complete_per_s", "api_vs_engine_ratio", "worker_scaling_ratio")


def floor_step(state_json: str, task_id: str, deployed: specs.DeployedSpec, clock: FixedClock) -> str:
    """Spiff alone: restore as instances.restore does, run the task, serialize as instances.save does."""
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
    """Our full step: one transaction through runner.run_step and steps.complete_task."""
    step(
        factory,
        clock,
        lambda s: steps.complete_task(s, task_id, FIXED, actor="bench", clock=clock),
        task_id=task_id,
    )


def bench_step(where: Path | str, profile: bool = False) -> dict[str, Any]:
    """Floor and full step on the same instances, interleaved, the order alternating per repetition;
    on a fresh SQLite file (a path) or an empty PostgreSQL schema (a URL)."""
    clock = FixedClock(START)
    engine, factory = open_database(where, clock)
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


def bench_postgres(workdir: Path) -> dict[str, Any]:
    """The step on a fresh PostgreSQL schema, then the HTTP figures on another; the reason instead when
    PostgreSQL cannot be reached."""
    url = postgres.postgres_url()
    about: dict[str, Any] = {"url": postgres.shown(url), "unavailable": postgres.unreachable(url)}
    if about["unavailable"] is not None:
        return {"about": about}
    about["server_version"] = postgres.server_version(url)
    began = time.perf_counter()
    with postgres.fresh_schema(url, "zhibu_bench_step") as schema_url:
        step_result = bench_step(schema_url)
    api_result = api.bench_api(url, workdir)
    about["elapsed_s"] = round(time.perf_counter() - began, 1)
    return {"about": about, "step": step_result, "api": api_result}


def postgres_figures(pg: dict[str, Any]) -> dict[str, Any]:
    """The PostgreSQL keys of results.json (null without PostgreSQL)."""
    if "step" not in pg:
        return dict.fromkeys(("step_ms_zhibu_postgres", "step_vs_floor_ratio_postgres", *API_KEYS))
    floor_ms, zhibu_ms = pg["step"]["floor"]["median"], pg["step"]["zhibu"]["median"]
    return {
        "step_ms_zhibu_postgres": zhibu_ms,
        "step_vs_floor_ratio_postgres": round(zhibu_ms / floor_ms, 3),
        **{key: pg["api"][key] for key in API_KEYS},
    }


def verdict(met: bool) -> str:
    """How a target reads in the summary."""
    return "met" if met else "NOT met"


def print_postgres(results: dict[str, Any], pg: dict[str, Any]) -> None:
    """The PostgreSQL part of the summary."""
    about = pg["about"]
    if "step" not in pg:
        print(f"PostgreSQL ({about['url']}) unavailable, its figures are null: {about['unavailable']}")
        return
    print(f"PostgreSQL {about['server_version']} ({about['url']}):")
    floor_ms, zhibu_ms = pg["step"]["floor"]["median"], pg["step"]["zhibu"]["median"]
    print(f"  step (fix -> signoff), median of {STEP_REPS}: floor {floor_ms:.3f} ms, zhibu {zhibu_ms:.3f} ms")
    pg_ratio, sqlite_ratio = results["step_vs_floor_ratio_postgres"], results["step_vs_floor_ratio"]
    print(f"  ratio {pg_ratio:.2f} (SQLite: {sqlite_ratio:.2f}; no target on PostgreSQL)")
    notes = pg["api"]["notes"]
    for workers, run in notes["throughput_by_workers"].items():
        cores = ", ".join(f"{name} {value}" for name, value in run["cores_busy"].items())
        print(
            f"  {api.CLIENTS} clients, {workers} worker(s): {run['per_s']:7.1f} completions/s "
            f"(median latency {run['latency_ms']['median']:.1f} ms; cores busy: {cores})"
        )
    print(f"  api_complete_per_s {results['api_complete_per_s']} ({api.WORKERS} workers)")
    runs = [*notes["throughput_by_workers"].values(), {"cores_busy": notes["one_client_cores_busy"]}]
    elsewhere = max(run["cores_busy"]["other"] for run in runs)
    if elsewhere > BUSY_ELSEWHERE:
        print(f"  WARNING: other work on this machine kept up to {elsewhere:.2f} cores busy meanwhile")
    scaling = results["worker_scaling_ratio"]
    met = verdict(scaling >= api.TARGET_SCALING)
    print(f"  worker scaling 2/1 {scaling:.2f}  (target >= {api.TARGET_SCALING}: {met})")
    http_ms = notes["api_complete_ms_one_client"]["median"]
    engine_ms = notes["engine_complete_ms_same_schema"]["median"]
    ratio = results["api_vs_engine_ratio"]
    print(
        f"  one completion: HTTP {http_ms:.3f} ms, engine {engine_ms:.3f} ms, ratio {ratio:.2f}  "
        f"(target <= {api.TARGET_RATIO}: {verdict(ratio <= api.TARGET_RATIO)})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark, write bench/results.json, print a summary (`--profile` adds a cProfile)."""
    profile = "--profile" in (sys.argv[1:] if argv is None else argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zhibu-bench-") as tmp:
        workdir = Path(tmp)
        step_result = bench_step(workdir / "step.db", profile)
        sweeps = {config: sweep.bench_sweep(workdir, *config) for config in SWEEP_GROWTH + SWEEP_WAITING}
        branch_steps = {size: branch.bench_branch_step(workdir, size) for size in branch.SIZES}
        inbox_result = inbox.bench_inbox(workdir)
        pg = bench_postgres(workdir)
    floor_ms, zhibu_ms = step_result["floor"]["median"], step_result["zhibu"]["median"]
    small, large = (sweeps[c]["sweep"]["median"] for c in SWEEP_GROWTH)
    fewer, most = (sweeps[c]["sweep"]["median"] for c in SWEEP_WAITING)
    biggest = SWEEP_WAITING[-1]
    plan, uses_index = sweeps[biggest]["plan"], sweeps[biggest]["uses_index"]
    on_postgres = postgres_figures(pg)
    results = {
        "step_ms_floor": floor_ms,
        "step_ms_zhibu": zhibu_ms,
        "step_vs_floor_ratio": round(zhibu_ms / floor_ms, 3),
        "step_ms_zhibu_postgres": on_postgres["step_ms_zhibu_postgres"],
        "step_vs_floor_ratio_postgres": on_postgres["step_vs_floor_ratio_postgres"],
        "sweep_ms_100_waiting": small,
        "sweep_ms_10000_waiting": large,
        "sweep_growth_ratio": round(large / small, 3),
        "sweep_ms_1000_waiting": fewer,
        "sweep_ms_100000_waiting": most,
        "sweep_waiting_ratio": round(most / fewer, 3),
        **{f"branch_step_ms_{size}": branch_steps[size]["median"] for size in branch.SIZES},
        "branch_scaling_ratio": round(
            branch_steps[branch.SIZES[-1]]["median"] / branch_steps[branch.SIZES[0]]["median"], 3
        ),
        "inbox_p95_ms": inbox_result["p95"],
        **{key: on_postgres[key] for key in API_KEYS},
        "notes": {
            "inbox": f"inbox.search(view='todo'), a secretary; {inbox.ROWS:,} rows, {inbox.OPEN:,} open",
            "inbox_median_ms": inbox_result["median"],
            "inbox_query_plans": inbox_result["plans"],
            "branch_step": "branch_programme: the secretary completes 动员部署、制定方案 (mobilize)",
            "branch_step_samples": {str(size): branch_steps[size]["n"] for size in branch.SIZES},
            "step": STEP_DESCRIPTION,
            "step_floor_ms": step_result["floor"],
            "step_zhibu_ms": step_result["zhibu"],
            "step_warmup": STEP_WARMUP,
            "step_floor_ms_postgres": pg["step"]["floor"] if "step" in pg else None,
            "step_zhibu_ms_postgres": pg["step"]["zhibu"] if "step" in pg else None,
            "step_postgres": "the step above, measured the same way on a fresh PostgreSQL schema; its "
            "ratio is to the floor measured beside it in that run",
            "state_json_bytes_before_step": step_result["state_json_bytes"],
            "sweep": "one runner.sweep; each due instance fires two ladder timers (reminder and deadline)",
            "sweep_ms": {f"{n}_waiting_{d}_due": sweeps[(n, d)]["sweep"] for n, d in sweeps},
            "sweep_warmup": 1,
            "due_query_ms": {f"{n}_waiting_{d}_due": sweeps[(n, d)]["query_ms"] for n, d in sweeps},
            "due_query_sql": sweeps[biggest]["sql"],
            "due_query_plan": plan,
            "due_query_uses_next_due_at_index": uses_index,
            "targets": {
                "step_vs_floor_ratio": TARGET_STEP_RATIO,
                "sweep_growth_ratio": TARGET_SWEEP_GROWTH,
                "sweep_waiting_ratio": TARGET_SWEEP_WAITING,
                "inbox_p95_ms": inbox.TARGET_P95_MS,
                "branch_scaling_ratio": branch.TARGET_SCALING,
                "api_vs_engine_ratio": api.TARGET_RATIO,
                "worker_scaling_ratio": api.TARGET_SCALING,
            },
            "postgres": pg["about"],
            "api": pg["api"]["notes"] if "api" in pg else None,
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
    print(f"sweep, median of {sweep.SWEEP_REPS}:")
    for (size, due), result in sweeps.items():
        sweep_ms, query_ms = result["sweep"]["median"], result["query_ms"]
        print(
            f"  {size:>7} waiting, {due:>3} due  {sweep_ms:9.3f} ms  (the due query alone {query_ms:.3f} ms)"
        )
    met = verdict(growth <= TARGET_SWEEP_GROWTH)
    print(f"  growth 100 -> 10,000 (10 due) {growth:.2f}  (target <= {TARGET_SWEEP_GROWTH}: {met})")
    waiting = results["sweep_waiting_ratio"]
    met = verdict(waiting <= TARGET_SWEEP_WAITING)
    print(f"  1,000 -> 100,000 (100 due) {waiting:.2f}  (target <= {TARGET_SWEEP_WAITING}: {met})")
    scaling = results["branch_scaling_ratio"]
    print("one branch task (mobilize), median:")
    for size in branch.SIZES:
        print(f"  {size:>6} branches  {results[f'branch_step_ms_{size}']:8.3f} ms")
    met = verdict(scaling <= branch.TARGET_SCALING)
    print(f"  scaling {scaling:.2f}  (target <= {branch.TARGET_SCALING}: {met})")
    p95 = results["inbox_p95_ms"]
    print(f"secretary's inbox, {inbox.ROWS:,} task rows ({inbox.OPEN:,} open), {inbox.REPS} calls:")
    print(
        f"  p95 {p95:.3f} ms, median {inbox_result['median']:.3f} ms  (target <= {inbox.TARGET_P95_MS}: "
        f"{verdict(p95 <= inbox.TARGET_P95_MS)})"
    )
    for plan_line in inbox_result["plans"]:
        print(f"  {plan_line}")
    print("due-instances query plan (100,000 waiting):")
    print(f"  {results['notes']['due_query_sql']}")
    for line in plan:
        print(f"  {line}")
    print(f"  uses an index on instances.next_due_at: {'yes' if uses_index else 'NO (a scan: O(instances))'}")
    print_postgres(results, pg)
    print(f"wrote {RESULTS_PATH} in {results['notes']['elapsed_s']} s")
    return 0 if uses_index and inbox.uses_indexes(inbox_result["plans"]) else 1


if __name__ == "__main__":
    sys.exit(main())
