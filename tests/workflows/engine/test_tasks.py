"""The task and timer indexes equal the workflow's own state after every move of a random walk."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ASSIGNED, FIXED, REGISTERED, Driver
from workflows.deadlines.calendar import WorkCalendar
from workflows.deadlines.calendar import deadline as calendar_deadline
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.errors import Conflict, FormInvalid

VALID = {
    "register": REGISTERED,
    "assign": ASSIGNED,
    "fix": FIXED,
    "supervise": {"requirement": "三日内完成", "due": "2026-12-20"},
    "interview": {"date": "2026-12-20", "interviewer": "office1", "notes": "约谈"},
}
INVALID = {
    "register": {"source": "?"},
    "assign": {"deadline": "明天"},
    "fix": {"evidence": []},
    "signoff": {},
    "supervise": {"requirement": ""},
    "interview": {"date": "昨天"},
}
# The ladder of 整改落实 for ASSIGNED's deadline (2026-11-30): reminder, deadline, supervision, interview.
LADDER = [datetime(2026, 11, 26, tzinfo=LOCAL_TZ), datetime(2026, 12, 1, tzinfo=LOCAL_TZ)]
LADDER += [datetime(2026, 12, 8, tzinfo=LOCAL_TZ), datetime(2026, 12, 15, tzinfo=LOCAL_TZ)]
OFFSETS = (-3, 0, 5, 10)  # data/escalation.json's default ladder, in working days


def deadline_for(now: datetime, current: str | None) -> str:
    """A deadline a valid assignment or rejection may give at `now`: a working day after today, and for a
    rejection a new one. The scenario's own (2026-11-30) while it is ahead and new."""
    if now < datetime(2026, 11, 30, tzinfo=LOCAL_TZ) and current != ASSIGNED["deadline"]:
        return ASSIGNED["deadline"]
    day = (now.astimezone(LOCAL_TZ) + timedelta(days=30)).date()
    while not WorkCalendar().is_workday(day) or day.isoformat() == current:
        day += timedelta(days=1)
    return day.isoformat()


def ladder_of(deadline: str) -> list[datetime]:
    """When each level of a deadline's ladder is reached (the scenario's is spelled out above)."""
    if deadline == ASSIGNED["deadline"]:
        return LADDER
    return [calendar_deadline(WorkCalendar(), deadline, offset)[0] for offset in OFFSETS]


moves = st.lists(
    st.one_of(
        st.tuples(st.just("complete"), st.booleans()),
        st.tuples(st.just("invalid"), st.none()),
        st.tuples(st.just("stale"), st.none()),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=240)),
    ),
    max_size=20,
)


def assert_indexes_hold(driver: Driver, iid: int) -> None:
    truth, due = driver.workflow_truth(iid)
    rows = {row.id: row for row in driver.open_tasks(iid)}
    assert set(rows) == set(truth)
    for task_id, view in truth.items():
        row = rows[task_id]
        assert (row.bpmn_id, row.title, row.lane, row.form_key, row.due_at, row.escalation_level) == (
            view.bpmn_id,
            view.title,
            view.lane,
            view.form_key,
            view.due_at,
            view.escalation_level,
        )
    assert driver.instance(iid).next_due_at == due
    assert driver.mismatches(iid) == []


@pytest.mark.parametrize("mode", ["straight", "restored"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(registered=st.booleans(), walk=moves)
def test_random_walk_keeps_indexes_true(mode, db_url, deployed, clock, registered, walk):
    driver = Driver(db_url, FixedClock(clock.now()), mode)
    iid = driver.start(REGISTERED if registered else None)
    done: list[str] = []
    assert_indexes_hold(driver, iid)
    for move, arg in walk:
        current = driver.open_tasks(iid)
        if move == "wait":
            driver.clock.advance(hours=arg)
            driver.tick()
        elif not current:
            continue
        elif move == "complete":
            task = current[0]
            data = VALID.get(task.bpmn_id) or {"approved": arg, "comment": "意见"}
            if task.bpmn_id == "assign" or (task.bpmn_id == "signoff" and not arg):
                current = driver.task_data(task.id).get("deadline")
                data = {**data, "deadline": deadline_for(driver.clock.now(), current)}
            driver.complete(task.id, data)
            done.append(task.id)
        elif move == "invalid":
            with pytest.raises(FormInvalid):
                driver.complete(current[0].id, INVALID[current[0].bpmn_id])
        elif move == "stale" and done:
            with pytest.raises(Conflict):
                driver.complete(done[-1], {})
        assert_indexes_hold(driver, iid)
    if driver.instance(iid).status == "completed":
        assert driver.open_tasks(iid) == [] and driver.instance(iid).next_due_at is None
    for fix in (t for t in driver.open_tasks(iid) if t.bpmn_id == "fix"):
        ladder = ladder_of(driver.task_data(fix.id)["deadline"])
        reached = len([at for at in ladder if at < driver.clock.now()])  # Spiff fires strictly after
        assert fix.escalation_level == reached
    driver.close()
