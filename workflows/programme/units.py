"""Units of work of the programme: starting a year's programme, creating the obligations due, starting
the scheduled spot checks.

Like `workflows.engine.runner`, each function owns its transactions (one per occurrence or scheduled
check): a failure is rolled back and audited there, and never undoes the others. Several schedulers may
run them at once: a unique key decides who creates what, and the other skips it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import steps
from workflows.engine.clock import LOCAL_TZ, Clock
from workflows.engine.errors import EngineError, InvalidInput
from workflows.engine.models import InstanceRow
from workflows.engine.runner import run_step, start
from workflows.programme import obligations, spotcheck


def programme_data(year: int, deadlines: list[str] | None = None) -> dict[str, Any]:
    """Start data of a year's programme; the plan's phase deadlines unless others are given."""
    if deadlines is None:
        deadlines = [f"{year}-07-31", f"{year}-08-31", f"{year}-12-31", f"{year + 1}-01-31"]
    if len(deadlines) != 4:
        raise InvalidInput("须给出四个阶段的截止日期（组织发动、对标自查、争创达标、总结验收）")
    return {"year": year, **{f"phase{n}_deadline": day for n, day in enumerate(deadlines, start=1)}}


def start_programme(
    factory: sessionmaker[Session], year: int, deadlines: list[str] | None, *, actor: str, clock: Clock
) -> InstanceRow:
    """Start the company programme of a year; it starts one branch programme per active branch."""
    return start(factory, "programme", programme_data(year, deadlines), actor=actor, clock=clock)


def generate_occurrences(
    factory: sessionmaker[Session], *, clock: Clock, actor: str = "system:scheduler"
) -> int:
    """Start the recurring obligations due by today that are missing, one transaction each.

    Periods missed while no scheduler ran are made up (see `obligations.pending`); one already past its
    deadline becomes a missed occurrence, and a rectification item, at the next timer sweep."""
    with factory() as session:
        todo = obligations.pending(session, clock.now().astimezone(LOCAL_TZ).date())
    created = 0
    for item in todo:

        def step(session: Session, item: obligations.Pending = item) -> None:
            row = steps.start(session, "obligation", item.start_data(), actor=actor, clock=clock)
            obligations.add(session, item, row.id)

        try:
            run_step(factory, step, clock=clock, actor=actor, context={"action": "obligation.start"})
        except IntegrityError:  # another scheduler created it first: the unique key decides
            continue
        except EngineError:  # audited as step.failed; the other occurrences still get created
            continue
        created += 1
    return created


def start_scheduled_spot_checks(
    factory: sessionmaker[Session], *, clock: Clock, actor: str = "system:scheduler"
) -> int:
    """Start the scheduled spot checks (定期抽查) whose date has come, each once; return how many."""
    with factory() as session:
        todo = spotcheck.due(session, clock.now().astimezone(LOCAL_TZ).date())
    started = 0
    for check in todo:
        context = {"action": "spotcheck.scheduled", "year": check.year, "entry": check.entry}
        try:
            run_step(
                factory,
                lambda session, c=check: spotcheck.start_scheduled(session, c, actor=actor, clock=clock),
                clock=clock,
                actor=actor,
                context=context,
            )
        except IntegrityError:  # another scheduler started it first: the primary key decides
            continue
        except EngineError:  # audited as step.failed; the next run tries again
            continue
        started += 1
    return started
