"""`zhibu scheduler`: the process that fires timers, starts obligations, sends notifications and digests.

It runs beside the web service (never inside it). Several may run at once against PostgreSQL: each
job is safe to run concurrently (row locks with SKIP LOCKED, unique claims). Jobs coalesce, so after
downtime each runs once, and every timer that fell due meanwhile fires exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import extensions
from workflows.engine.clock import LOCAL_TZ, clock_from_env

log = logging.getLogger("zhibu.scheduler")


def job_table(factory: sessionmaker[Session]) -> dict[str, Callable[[], Any]]:
    """Each registered job by name; "now" is read afresh (ZHIBU_NOW or the system clock) every run."""
    return {job.name: (lambda job=job: job.run(factory, clock_from_env())) for job in extensions.jobs()}


def run_once(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Run every job once, in order (for cron-style use and tests)."""
    return {name: job() for name, job in job_table(factory).items()}


def _logged(name: str, job: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            log.info("%s: %s", name, job())
        except Exception:  # a job's failure is logged; the scheduler keeps going
            log.exception("%s failed", name)

    return run


def run_forever(factory: sessionmaker[Session], *, interval: int) -> None:
    """Run the jobs until interrupted: per-tick jobs (sweep, deliveries) every `interval` seconds."""
    table = job_table(factory)
    scheduler = BlockingScheduler(timezone=LOCAL_TZ, job_defaults={"coalesce": True, "max_instances": 1})
    start = datetime.now(LOCAL_TZ)
    for job in extensions.jobs():
        run = _logged(job.name, table[job.name])
        if job.every == "day":
            scheduler.add_job(run, "cron", hour=job.hour or 0, misfire_grace_time=6 * 3600)
        elif job.every == "hour":
            scheduler.add_job(run, "interval", hours=1, next_run_time=start)
        else:
            scheduler.add_job(run, "interval", seconds=interval, next_run_time=start)
    scheduler.start()
