"""Two people complete the same task at the same moment: exactly one wins."""

from __future__ import annotations

import threading

import pytest

from tests.support import ASSIGNED, REGISTERED, Driver
from workflows.engine import runner
from workflows.engine.errors import Conflict


@pytest.mark.parametrize("round_no", range(3))
def test_concurrent_completion_has_one_winner(round_no, db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED)
    task_id = driver.only_task(iid).id
    factory = driver.factory()
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def attempt(actor: str) -> None:
        barrier.wait()
        try:
            runner.complete(factory, task_id, ASSIGNED, actor=actor, clock=clock)
            outcomes[actor] = "ok"
        except Exception as exc:  # noqa: BLE001 - the outcome itself is what is asserted
            outcomes[actor] = exc

    threads = [threading.Thread(target=attempt, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [actor for actor, outcome in outcomes.items() if outcome == "ok"]
    losers = [outcome for outcome in outcomes.values() if outcome != "ok"]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1 and isinstance(losers[0], Conflict), outcomes
    completions = [e for e in driver.events(iid) if e.action == "task.completed"]
    assert [(e.actor, e.task_id) for e in completions] == [(winners[0], task_id)]
    assert not [e for e in driver.events() if e.action == "step.failed"]
    assert driver.only_task(iid).bpmn_id == "fix"
    assert driver.mismatches() == []
    assert driver.verify().ok
    driver.close()
