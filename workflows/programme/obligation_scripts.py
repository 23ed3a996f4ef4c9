"""Functions the obligation diagram (`bpmn/obligation.bpmn`) calls; each runs inside the current step.

Like `workflows.programme.scripts`, they use the step's own session, so the rectification item a missed
occurrence becomes commits with the timer that found the miss, or not at all. `workflows.plugins`
registers `FUNCTIONS` with the script engine.
"""

from __future__ import annotations

from workflows.engine.clock import LOCAL_TZ, end_of_day
from workflows.engine.spiff import current_step
from workflows.programme import obligations
from workflows.programme.scripts import start_process


def period_deadline(due: str) -> str:
    """Timer expression: the end of an occurrence's period (24:00 of `due`, Beijing time), or, for a period
    already over when the occurrence was made up, the instant its instance started: the next sweep then
    finds it missed.

    A boundary timer already due when its task is reached is left ready, and unindexed, by the engine
    until the instance's next step; one due at the start instant waits, indexed, for the sweep. Both
    values are fixed, so re-evaluating the timer (after a calendar change) never moves it.
    """
    deadline, started = end_of_day(due), current_step().instance.created_at
    return max(deadline, started).astimezone(LOCAL_TZ).isoformat()


def start_missed_rectification() -> int | None:
    """This occurrence's period ended unrecorded: put the shortfall into one rectification item; its id.

    The item is kept on the occurrence (`rectification_id`), so a second call for the same occurrence
    returns the first item. An obligation instance started by hand stands for no occurrence: None.
    """
    step = current_step()
    occurrence = obligations.occurrence_of(step.session, step.instance.id) if step.instance.id else None
    if occurrence is None:
        return None
    if occurrence.rectification_id is not None:
        return occurrence.rectification_id
    item = start_process("rectification", obligations.shortfall_item(step.session, occurrence))
    obligations.link_item(step.session, occurrence, item)
    return item


# What the obligation diagram may call; registered with the engine by `workflows.plugins`.
FUNCTIONS = (period_deadline, start_missed_rectification)
