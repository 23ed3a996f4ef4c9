"""Units of work of the programme: starting a year's programme, creating the current obligations.

Like `workflows.engine.runner`, each function owns its transactions (one per instance started): a
failure is rolled back and audited there, and never undoes the other occurrences.
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
from workflows.programme import obligations


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
    """Start the recurring obligations of the current periods that are missing, one transaction each."""
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
