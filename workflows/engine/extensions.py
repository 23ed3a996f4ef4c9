"""Extension points: what the domain adds to the engine, without the engine ever naming it.

The engine runs any BPMN process; the programme and the deadlines plug in here, once, at import of
`workflows` (see `workflows/plugins.py`), the way Camunda and Flowable take listeners and plugins:
- script functions the diagrams call (`register_script_functions`);
- projections run inside a step's transaction after the task index is written, selected by process id;
- what a boundary timer on a task means (a ladder level, and whether it is the task's deadline);
- checks of form fields that name things the engine does not know (people, branches);
- recurring jobs for the scheduler.

Concurrency contract: registration happens at import time, before any step or job runs; afterwards the
registry is only read, so it needs no lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import spiff
from workflows.engine.clock import Clock
from workflows.engine.models import InstanceRow

# (session, instance row, workflow after the step, bpmn ids of its open human tasks, now)
Projection = Callable[[Session, InstanceRow, BpmnWorkflow, set[str], datetime], None]
# (process id, timer expression) -> (level, is the deadline) for a timer the domain understands, else None
TimerMeaning = Callable[[str, str | None], tuple[int, bool] | None]
# (session, form schema, submitted data, the instance's branch, now) -> per-field messages
FormCheck = Callable[[Session, dict | None, dict[str, Any], str | None, datetime], dict[str, str]]


@dataclass(frozen=True)
class Job:
    """A recurring unit of work of the scheduler; `run` owns its transactions.

    `every` is "tick" (each scheduler interval), "hour", or "day" (at `hour`, Beijing time).
    """

    name: str
    run: Callable[[sessionmaker[Session], Clock], Any]
    every: Literal["tick", "hour", "day"] = "tick"
    hour: int | None = None


_projections: dict[str, list[Projection]] = {}
_timer_meanings: list[TimerMeaning] = []
_form_checks: list[FormCheck] = []
_jobs: dict[str, Job] = {}


def register_script_functions(functions: dict[str, Callable[..., Any]]) -> None:
    """Make functions callable from the diagrams' scripts, expressions and timers."""
    spiff.register_script_functions(functions)


def register_projection(process_id: str, projection: Projection) -> None:
    """Run `projection` in every step of `process_id`'s instances, after the task index is written."""
    _projections.setdefault(process_id, []).append(projection)


def projections(process_id: str) -> list[Projection]:
    """The projections of one process, in registration order (usually none)."""
    return _projections.get(process_id, _NONE)


_NONE: list[Projection] = []


def register_timer_meaning(meaning: TimerMeaning) -> None:
    """Teach the task index what some boundary timers mean (e.g. levels of an escalation ladder)."""
    _timer_meanings.append(meaning)


def timer_meaning(process_id: str, expression: str | None) -> tuple[int, bool] | None:
    """(level, is the deadline) of a boundary timer, from the first registration that knows it."""
    for meaning in _timer_meanings:
        found = meaning(process_id, expression)
        if found is not None:
            return found
    return None


def register_form_check(check: FormCheck) -> None:
    """Add a check of submitted form data that runs after the JSON Schema, before the step."""
    _form_checks.append(check)


def check_form(
    session: Session, schema: dict | None, data: dict[str, Any], branch: str | None, now: datetime
) -> dict[str, str]:
    """Per-field messages of every registered form check (the first message per field wins)."""
    errors: dict[str, str] = {}
    for check in _form_checks:
        for name, message in check(session, schema, data, branch, now).items():
            errors.setdefault(name, message)
    return errors


def register_job(job: Job) -> None:
    """Add a recurring job to the scheduler; a job registered again under its name replaces it."""
    _jobs[job.name] = job


def jobs() -> list[Job]:
    """The scheduler's jobs, in registration order (the order `zhibu scheduler --once` runs them)."""
    return list(_jobs.values())
