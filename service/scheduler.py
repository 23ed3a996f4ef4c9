"""`zhibu scheduler`: the process that fires timers, starts obligations, sends notifications and digests.

It runs beside the web service (never inside it). Several may run at once against PostgreSQL: each
job is safe to run concurrently (row locks with SKIP LOCKED, unique claims). Jobs coalesce, so after
downtime each runs once, and every timer that fell due meanwhile fires exactly once.
Each finished job is logged as one JSON line and recorded in `job_runs` (its own transaction, after
the job's): that is the heartbeat `/healthz` reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from prometheus_client import Histogram
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import extensions, health
from workflows.engine.clock import LOCAL_TZ, clock_from_env
from workflows.engine.db import transaction

log = logging.getLogger("zhibu.scheduler")
JOB_SECONDS = Histogram("zhibu_job_seconds", "Scheduler job duration by job", ["job"])


def job_table(factory: sessionmaker[Session]) -> dict[str, Callable[[], Any]]:
    """Each registered job by name; "now" is read afresh (ZHIBU_NOW or the system clock) every run."""
    return {job.name: (lambda job=job: job.run(factory, clock_from_env())) for job in extensions.jobs()}


def run_job(
    factory: sessionmaker[Session],
    name: str,
    job: Callable[[], Any],
    scheduler: str,
    *,
    reraise: bool = False,
) -> Any:
    """Run one job, log it and record it as this scheduler's heartbeat; a failure is logged (and re-raised
    after recording when `reraise`)."""
    started, result, error, failure = time.perf_counter(), None, None, None
    try:
        result = job()
    except Exception as exc:  # a job's failure is logged and recorded; the scheduler keeps going
        error, failure = f"{type(exc).__name__}: {exc}", exc
        log.exception("job failed", extra={"job": name})
    seconds = time.perf_counter() - started
    JOB_SECONDS.labels(name).observe(seconds)
    fields = {
        "job": name,
        "duration_ms": round(seconds * 1000, 2),
        "ok": error is None,
        "scheduler": scheduler,
    }
    log.info("job", extra={**fields, "result": str(result) if error is None else error})
    try:
        with transaction(factory) as session:
            now = clock_from_env().now()
            health.record(
                session, scheduler=scheduler, job=name, finished_at=now, seconds=seconds, error=error
            )
    except Exception:  # the heartbeat must never stop the scheduling itself
        log.exception("heartbeat not recorded", extra={"job": name})
    if failure is not None and reraise:
        raise failure
    return result


def run_once(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Run every job once, in order (for cron-style use and tests); the first failure is raised."""
    name = health.scheduler_name()
    return {job: run_job(factory, job, run, name, reraise=True) for job, run in job_table(factory).items()}


def run_forever(factory: sessionmaker[Session], *, interval: int) -> None:
    """Run the jobs until interrupted: per-tick jobs (sweep, deliveries) every `interval` seconds."""
    table, name = job_table(factory), health.scheduler_name()
    scheduler = BlockingScheduler(timezone=LOCAL_TZ, job_defaults={"coalesce": True, "max_instances": 1})
    start = datetime.now(LOCAL_TZ)
    for job in extensions.jobs():
        run = lambda job=job: run_job(factory, job.name, table[job.name], name)  # noqa: E731
        named = {"id": job.name, "name": job.name}
        if job.every == "day":
            scheduler.add_job(run, "cron", hour=job.hour or 0, misfire_grace_time=6 * 3600, **named)
        elif job.every == "hour":
            scheduler.add_job(run, "interval", hours=1, next_run_time=start, **named)
        else:
            scheduler.add_job(run, "interval", seconds=interval, next_run_time=start, **named)
    scheduler.start()
