"""Under load, with workers and schedulers SIGKILLed and restarted, nothing acknowledged is lost or doubled.

gunicorn (4 workers) and 2 schedulers on PostgreSQL; 8 clients complete tasks, read their inboxes and
register rectification items over HTTP, while new load probes start and their timers fall due on the real
clock, 2 s after each start. Every few seconds a worker and a scheduler are killed (the scheduler restarted).
Then: every 2xx has exactly one audit event, each timer due fired exactly once, `zhibu check` and `zhibu
audit verify` pass, and no response was a 5xx or an unexpected 4xx (a killed worker's connection simply
drops). `ZHIBU_SOAK_SECONDS` sets the load's length (`make soak`).
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import func, select

from workflows.engine import runner
from workflows.engine.clock import SystemClock
from workflows.engine.db import make_session_factory
from workflows.engine.models import AuditEvent, ProcessInstance, TaskRecord

SECONDS = float(os.environ.get("ZHIBU_SOAK_SECONDS", "40"))
WORKERS, SCHEDULERS, CLIENTS = 4, 2, 8
KILL_EVERY = max(SECONDS / 5, 4.0)  # at least 4 kills of each kind in the short run
PROBE_EVERY = 0.1  # seconds between new probes, each with a task to complete and a timer due 2 s later
OFFICE = ("dwgzs1", "dwgzs2")
PASSWORD = "zhibu-demo-2026"
EXPECTED = {200, 201, 409, "dropped"}  # 409: two clients raced for the same task


@dataclass
class Tally:
    """What the clients saw: each request's outcome, and what the service acknowledged."""

    statuses: Counter = field(default_factory=Counter)
    completed: list[str] = field(default_factory=list)  # task ids acknowledged with 200
    registered: list[int] = field(default_factory=list)  # instance ids acknowledged with 201
    errors: list[str] = field(default_factory=list)  # anything a client did not expect
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, status: int | str) -> None:
        with self.lock:
            self.statuses[status] += 1


def _client(
    base: str, username: str, work: queue.Queue, tally: Tally, stop: threading.Event, seed: int
) -> None:
    try:
        _requests(base, username, work, tally, stop, seed)
    except Exception as exc:  # noqa: BLE001 - a client that dies must fail the test, not vanish
        with tally.lock:
            tally.errors.append(f"client {seed}: {type(exc).__name__}: {exc}")


def _requests(base: str, username: str, work: queue.Queue, tally: Tally, stop: threading.Event, seed: int):
    rng, http, token = random.Random(seed), requests.Session(), None
    while token is None and not stop.is_set():
        try:
            answer = http.post(f"{base}/api/v1/auth/token", json={"username": username, "password": PASSWORD})
            tally.note(answer.status_code)
            token = answer.json()["token"] if answer.status_code == 200 else None
        except requests.ConnectionError:
            tally.note("dropped")
    headers, n = {"Authorization": f"Bearer {token}"}, 0
    while not stop.is_set():
        n += 1
        try:
            if n % 4 == 0:
                body = {
                    "source": "督查抽查",
                    "branch": "JG01",
                    "title": f"负载登记 {seed}-{n}",
                    "description": "负载测试",
                }
                answer = http.post(f"{base}/api/v1/rectifications", json=body, headers=headers, timeout=60)
                if answer.status_code == 201:
                    with tally.lock:
                        tally.registered.append(answer.json()["instance_id"])
            elif n % 7 == 0 or work.empty():  # read the inbox; complete a task the timers opened, if any
                answer = http.get(f"{base}/api/v1/tasks?view=todo&limit=1000", headers=headers, timeout=60)
                after = [t["id"] for t in answer.json().get("items", []) if t["bpmn_id"] == "after"]
                if answer.status_code == 200 and after:
                    tally.note(answer.status_code)
                    answer = _complete(http, base, rng.choice(after), headers, tally)
            else:
                answer = _complete(http, base, work.get_nowait(), headers, tally)
            tally.note(answer.status_code)
        except requests.ConnectionError:  # the worker serving it was killed
            tally.note("dropped")
        except queue.Empty:
            continue


def _complete(http, base, task_id, headers, tally) -> requests.Response:
    answer = http.post(
        f"{base}/api/v1/tasks/{task_id}/complete",
        json={"data": {"note": "负载"}},
        headers=headers,
        timeout=60,
    )
    if answer.status_code == 200:
        with tally.lock:
            tally.completed.append(task_id)
    return answer


def _feed(factory, work: queue.Queue, probes: list[int], stop: threading.Event, tally: Tally) -> None:
    """New probes all through the load: their tasks go to the clients, their timers fall due 2 s later."""
    clock = SystemClock()
    try:
        while not stop.wait(PROBE_EVERY):
            due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
            row = runner.start(factory, "load_probe", {"due": due}, actor="tester", clock=clock)
            probes.append(row.id)
            with factory() as session:
                work.put(session.scalar(select(TaskRecord.id).where(TaskRecord.instance_id == row.id)))
    except Exception as exc:  # noqa: BLE001
        with tally.lock:
            tally.errors.append(f"feeder: {type(exc).__name__}: {exc}")


def _count(session, action: str, **where) -> dict:
    column = AuditEvent.task_id if "task_id" in where else AuditEvent.instance_id
    query = select(column, func.count()).where(
        AuditEvent.action == action, column.in_(next(iter(where.values())))
    )
    return dict(session.execute(query.group_by(column)).all())


def test_nothing_acknowledged_is_lost_or_doubled_when_processes_are_killed(deployment):
    run, engine = deployment
    factory = make_session_factory(engine)
    run.start_web(WORKERS)
    for _ in range(SCHEDULERS):
        run.start_scheduler(interval=1)
    run.wait_healthy()

    tally, work, probes = Tally(), queue.Queue(), []
    stop_clients, stop_feeding = threading.Event(), threading.Event()
    feeder = threading.Thread(target=_feed, args=(factory, work, probes, stop_feeding, tally), daemon=True)
    clients = [
        threading.Thread(
            target=_client, args=(run.base, OFFICE[i % 2], work, tally, stop_clients, i), daemon=True
        )
        for i in range(CLIENTS)
    ]
    feeder.start()
    for client in clients:
        client.start()
    kills = Counter()
    ends = time.monotonic() + SECONDS
    while time.monotonic() < ends:
        stop_clients.wait(min(KILL_EVERY, max(ends - time.monotonic(), 0)))
        if time.monotonic() >= ends:
            break
        run.kill_worker(random.choice(run.web_workers()))
        kills["worker"] += 1
        victim = random.choice([s for s in run.schedulers if s.poll() is None])
        victim.kill()
        victim.wait()
        run.start_scheduler(interval=1)
        kills["scheduler"] += 1
    stop_feeding.set()
    feeder.join(timeout=60)
    stop_clients.set()
    for client in [*clients]:
        client.join(timeout=120)
    assert not [t for t in [feeder, *clients] if t.is_alive()], "a client or the feeder hangs"
    last_due = datetime.now(UTC) + timedelta(seconds=2)

    # The schedulers still run: wait for the last timers due to be fired (nothing to wait on but the table).
    def settled() -> bool:
        with factory() as session:
            due = select(func.count()).where(
                ProcessInstance.id.in_(probes), ProcessInstance.next_due_at <= datetime.now(UTC)
            )
            return datetime.now(UTC) > last_due and session.scalar(due) == 0

    run.wait_until(settled, timeout=60, what="done firing the due timers")
    healthy = run.get("/healthz")
    run.stop()

    with factory() as session:
        completions = _count(session, "task.completed", task_id=tally.completed)
        starts = _count(session, "instance.started", instance_id=tally.registered)
        fired = _count(session, "timer.fired", instance_id=probes)
        after_tasks = dict(
            session.execute(
                select(TaskRecord.instance_id, func.count())
                .where(TaskRecord.bpmn_id == "after", TaskRecord.instance_id.in_(probes))
                .group_by(TaskRecord.instance_id)
            ).all()
        )
        doubled = session.execute(
            select(AuditEvent.task_id)
            .where(AuditEvent.action == "task.completed")
            .group_by(AuditEvent.task_id)
            .having(func.count() > 1)
        ).all()
        events = session.scalar(select(func.count()).select_from(AuditEvent))

    ok = sum(n for status, n in tally.statuses.items() if isinstance(status, int) and status < 300)
    print(
        f"\nload: {SECONDS:.0f} s, {sum(tally.statuses.values())} requests, {ok} 2xx, "
        f"{tally.statuses['dropped']} dropped by kills, statuses {dict(tally.statuses)}; "
        f"kills {dict(kills)}; {len(tally.completed)} completions and {len(tally.registered)} registrations "
        f"acknowledged; {events} audit events; {sum(fired.values())} timers fired for {len(probes)} probes"
    )
    assert tally.errors == []
    assert kills["worker"] >= 4 and kills["scheduler"] >= 4
    assert healthy[0] == 200, healthy
    assert set(tally.statuses) <= EXPECTED, tally.statuses  # no 5xx, and no 4xx but lost races
    assert tally.statuses["dropped"] <= kills["worker"]  # a sync worker dies with one request at most
    assert len(tally.completed) > 100 and len(tally.registered) > 20
    assert set(Counter(tally.completed).values()) == {1}  # never acknowledged twice
    assert all(completions.get(task_id) == 1 for task_id in tally.completed)
    assert all(starts.get(instance_id) == 1 for instance_id in tally.registered)
    assert doubled == []
    assert len(probes) > SECONDS * 3
    assert sorted(fired) == sorted(probes) and set(fired.values()) == {1}  # every probe's timer, once
    assert sorted(after_tasks) == sorted(probes) and set(after_tasks.values()) == {1}
    assert "0 处不一致" in run.zhibu("check")
    assert "审计链完整" in run.zhibu("audit", "verify")
