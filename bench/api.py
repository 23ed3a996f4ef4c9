"""The HTTP path on PostgreSQL: tasks completed through gunicorn, as production serves them.

One fresh PostgreSQL schema holds everything: `zhibu db init`, the load probe of the reliability tests
(`tests/reliability/probe/`: a task `work` in lane 党委工作室 with the form `{"note": ...}`, beside a
timer due a year later), 8 office people and one probe instance per task to be completed, all started
before any timing, so the clients only complete tasks. gunicorn runs with the repository's
gunicorn.conf.py (sync workers, JSON request lines, prometheus in multiprocess mode), started afresh for
each measurement; no scheduler runs (the timers are a year away; /healthz would need one, so readiness is
an answered request, and the timed warm-up covers workers still starting).

The clients are threads of this process, made as light as a client can be: each completion is one
`POST /api/v1/tasks/<id>/complete` with `{"data": {"note": "bench"}}` and a bearer token (got once per
person through `POST /api/v1/auth/token`), written as prepared bytes on a new connection and read to
the end (gunicorn's sync workers close every connection). Each client has its own tasks; every answer
must be a 200.

* `api_complete_per_s`: 8 clients against 4 workers (gunicorn.conf.py's default on this 2-core machine,
  2 × cores; set explicitly so the figure does not move with the machine). After a warm-up of the same
  load for `WARMUP_S` seconds, the clients start together on `TIMED_PER_CLIENT` completions each; the
  figure is all of them divided by the time until the last client is done.
* `worker_scaling_ratio`: the same measurement (same clients, same load, same database) with 2 workers
  divided by it with 1 worker. Target ≥ 1.6.
* `api_vs_engine_ratio`: the cost of one completion through HTTP divided by the engine's. With ONE
  worker and ONE client, one after another: the median latency of a completion as the client sees it
  (connect, request, the whole response) divided by the median of `runner.complete` of the same probe
  task, with the same data and person, called in this process on the same schema (its own connection
  pool, as the app has). The two alternate, which one goes first switching per repetition, after a
  warm-up. What HTTP adds: gunicorn and Flask, the token's and the person's lookup, the permission
  check, the JSON request line and the metrics. Target ≤ 3.0.

Besides the figures the notes hold each run's latencies and the CPU used while it ran: cores busy on the
whole machine, and of them the gunicorn workers, this process (the clients), PostgreSQL's processes and
everything else (other work on the machine shows there, and makes every figure here worse).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.common import summary
from bench.postgres import environment, fresh_schema
from tools.deployment import ROOT, Deployment
from workflows.engine import runner, specs
from workflows.engine.clock import SystemClock
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import TaskRecord
from workflows.programme import org

PROBE = ROOT / "tests" / "reliability" / "probe"  # the reliability tests' diagram, used where it lies
WORKERS = 4
CLIENTS = 8
SCALING_WORKERS = (1, 2)
WARMUP_S = 2.0
WARMUP_POOL = 60  # per client: the warm-up takes from these until WARMUP_S is over
TIMED_PER_CLIENT = 100
LATENCY_WARMUP = 30
LATENCY_REPS = 300
TARGET_RATIO = 3.0
TARGET_SCALING = 1.6
PASSWORD = "Zhibu-bench-2026"
NOTE = {"note": "bench"}
BODY = json.dumps({"data": NOTE}).encode("ascii")
TIMEOUT_S = 60
STARTERS = 3  # threads starting the probe instances (each one transaction through runner.start)


@dataclass
class Site:
    """The deployment under test, this process's own way into its database, and the people's tokens."""

    run: Deployment
    factory: sessionmaker[Session]
    clock: SystemClock
    people: list[str]
    tokens: dict[str, str]


def _request(token: str, task_id: str) -> bytes:
    """The complete request for one task, as bytes, ready to send."""
    head = (
        f"POST /api/v1/tasks/{task_id}/complete HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + BODY


def _complete(port: int, request: bytes) -> float:
    """Send one completion on a new connection and read the whole answer; its milliseconds (200 or fail)."""
    started = time.perf_counter_ns()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    elapsed = (time.perf_counter_ns() - started) / 1e6
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"a completion was not answered 200: {answer[:500]!r}")
    return elapsed


def _sign_in(run: Deployment, username: str) -> str:
    """A bearer token for a person, through the API."""
    request = urllib.request.Request(
        run.base + "/api/v1/auth/token",
        data=json.dumps({"username": username, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        return json.loads(answer.read())["token"]


def _serve(run: Deployment, workers: int) -> None:
    """(Re)start gunicorn with `workers` workers and wait until it answers."""
    run.stop()  # only the web runs here: stop() ends it
    run.start_web(workers)
    run.wait_until(lambda: run.get("/api/v1/openapi.json", timeout=5)[0] == 200, 60, "serving")
    run.wait_until(lambda: len(run.web_workers()) == workers, 60, f"{workers} workers")


def _probe_tasks(site: Site, count: int) -> list[str]:
    """Start `count` probe instances (timer a year away); their open `work` task ids, oldest first."""
    due = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    with site.factory() as session:
        before = set(session.scalars(select(TaskRecord.id).where(TaskRecord.bpmn_id == "work")))

    def start(_: int) -> None:
        runner.start(site.factory, "load_probe", {"due": due}, actor="bench", clock=site.clock)

    with ThreadPoolExecutor(STARTERS) as pool:
        list(pool.map(start, range(count)))
    with site.factory() as session:
        rows = session.scalars(
            select(TaskRecord.id)
            .where(TaskRecord.bpmn_id == "work", TaskRecord.status == "open")
            .order_by(TaskRecord.instance_id)
        ).all()
    fresh = [task_id for task_id in rows if task_id not in before]
    assert len(fresh) == count, (len(fresh), count)
    return fresh


def _ticks(pid: int) -> int:
    """User + system clock ticks a process used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _postgres_pids() -> list[int]:
    """The processes of a PostgreSQL server on this machine (none when it runs elsewhere)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _machine_busy_ticks() -> int:
    """Clock ticks all CPUs spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


class CpuMeter:
    """Cores kept busy over an interval: the whole machine, gunicorn's workers, this process (the
    clients, and in the one-client run the in-process engine), PostgreSQL's processes (all of the
    server's, whoever they serve), and everything else."""

    def __init__(self, workers: list[int]) -> None:
        self.parts = {"gunicorn_workers": workers, "bench_process": [os.getpid()]}
        self.began = time.perf_counter()
        self.machine = _machine_busy_ticks()
        self.postgres = {pid: _ticks(pid) for pid in _postgres_pids()}
        self.before = {name: sum(map(_ticks, pids)) for name, pids in self.parts.items()}

    def cores(self) -> dict[str, float]:
        """Cores busy per part since the meter was made (a backend that ended meanwhile is missed)."""
        seconds = time.perf_counter() - self.began
        used = {name: sum(map(_ticks, pids)) - self.before[name] for name, pids in self.parts.items()}
        used["postgres"] = sum(_ticks(pid) - self.postgres.get(pid, 0) for pid in _postgres_pids())
        used["machine"] = _machine_busy_ticks() - self.machine
        known = used["gunicorn_workers"] + used["bench_process"] + used["postgres"]
        used["other"] = max(0, used["machine"] - known)
        hz = os.sysconf("SC_CLK_TCK")
        return {name: round(ticks / hz / seconds, 2) for name, ticks in used.items()}


def _throughput(site: Site, tasks: list[str], workers: int) -> dict[str, Any]:
    """8 clients against `workers` workers: a timed warm-up, then a fixed number of completions."""
    _serve(site.run, workers)
    port = site.run.port
    per_client = WARMUP_POOL + TIMED_PER_CLIENT
    shares = []
    for i in range(CLIENTS):
        token = site.tokens[site.people[i]]
        mine = [_request(token, t) for t in tasks[i * per_client : (i + 1) * per_client]]
        shares.append((mine[:WARMUP_POOL], mine[WARMUP_POOL:]))
    start, go = threading.Barrier(CLIENTS + 1), threading.Barrier(CLIENTS + 1)
    warm_until = [0.0]
    warmed, finished = [0] * CLIENTS, [0.0] * CLIENTS
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    failures: list[BaseException] = []

    def client(i: int) -> None:
        pool, timed = shares[i]
        try:
            start.wait()
            for request in pool:
                if time.perf_counter() >= warm_until[0]:
                    break
                _complete(port, request)
                warmed[i] += 1
            go.wait()
            latencies[i].extend(_complete(port, request) for request in timed)
            finished[i] = time.perf_counter()
        except BaseException as exc:  # noqa: BLE001 - reported below; the others must not wait forever
            failures.append(exc)
            start.abort()
            go.abort()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    warm_until[0] = time.perf_counter() + WARMUP_S
    start.wait()
    go.wait()
    began = time.perf_counter()
    meter = CpuMeter(site.run.web_workers())
    for thread in threads:
        thread.join(timeout=600)
    cores = meter.cores()
    if failures:
        raise RuntimeError(f"a client failed with {workers} workers") from failures[0]
    elapsed = max(finished) - began
    completions = CLIENTS * TIMED_PER_CLIENT
    return {
        "per_s": round(completions / elapsed, 1),
        "completions": completions,
        "seconds": round(elapsed, 3),
        "warmup_completions": sum(warmed),
        "latency_ms": summary([x for xs in latencies for x in xs]),
        "cores_busy": cores,
    }


def _latency(site: Site, http_tasks: list[str], engine_tasks: list[str]) -> dict[str, Any]:
    """One worker (serving already), one client: HTTP completions and `runner.complete`, alternating."""
    person = site.people[0]
    token, port = site.tokens[person], site.run.port
    http_ms, engine_ms = [], []
    meter = CpuMeter(site.run.web_workers())
    for rep, (over_http, in_process) in enumerate(zip(http_tasks, engine_tasks, strict=True)):
        request = _request(token, over_http)

        def engine(task_id: str = in_process) -> float:
            started = time.perf_counter_ns()
            runner.complete(site.factory, task_id, NOTE, actor=person, clock=site.clock)
            return (time.perf_counter_ns() - started) / 1e6

        if rep % 2 == 0:
            h, e = _complete(port, request), engine()
        else:
            e, h = engine(), _complete(port, request)
        if rep >= LATENCY_WARMUP:
            http_ms.append(h)
            engine_ms.append(e)
    return {"http": summary(http_ms), "engine": summary(engine_ms), "cores_busy": meter.cores()}


def bench_api(url: str, workdir: Path) -> dict[str, Any]:
    """Every HTTP figure, on a fresh schema of the PostgreSQL database at `url`."""
    with fresh_schema(url, "zhibu_bench") as schema_url, Deployment(schema_url, workdir / "api") as run:
        run.zhibu("db", "init")
        engine = make_engine(schema_url)
        # This process appends to the same audit chain as the deployment: the same key.
        keys = {name: run.env[name] for name in ("ZHIBU_AUDIT_KEY_FILE",)}
        try:
            with environment(**keys):
                return _measure(run, make_session_factory(engine))
        finally:
            engine.dispose()


def _measure(run: Deployment, factory: sessionmaker[Session]) -> dict[str, Any]:
    clock = SystemClock()
    people = [f"bench_office{i + 1}" for i in range(CLIENTS)]
    with transaction(factory) as session:
        now = clock.now()
        specs.deploy_all(session, now=now, actor="bench", bpmn_dir=PROBE / "bpmn", forms_dir=PROBE / "forms")
        for username in people:
            org.add_user(session, username, password=PASSWORD, role="office", now=now, actor="bench")
    site = Site(run, factory, clock, people, {})
    latency_n = LATENCY_WARMUP + LATENCY_REPS
    per_run = CLIENTS * (WARMUP_POOL + TIMED_PER_CLIENT)
    runs = (*SCALING_WORKERS, WORKERS)
    started = time.perf_counter()
    tasks = _probe_tasks(site, 2 * latency_n + per_run * len(runs))
    setup_s = time.perf_counter() - started
    _serve(run, 1)
    site.tokens = {username: _sign_in(run, username) for username in people}
    latency = _latency(site, tasks[:latency_n], tasks[latency_n : 2 * latency_n])
    tasks = tasks[2 * latency_n :]
    throughput = {}
    for n, workers in enumerate(runs):
        throughput[workers] = _throughput(site, tasks[n * per_run : (n + 1) * per_run], workers)
    run.stop()
    http_ms, engine_ms = latency["http"]["median"], latency["engine"]["median"]
    one, two = (throughput[w]["per_s"] for w in SCALING_WORKERS)
    return {
        "api_complete_per_s": throughput[WORKERS]["per_s"],
        "api_vs_engine_ratio": round(http_ms / engine_ms, 3),
        "worker_scaling_ratio": round(two / one, 3),
        "notes": {
            "api_complete": (
                f"POST /api/v1/tasks/<id>/complete of the load probe's task through gunicorn "
                f"(gunicorn.conf.py, sync workers) on PostgreSQL; {CLIENTS} clients, {WORKERS} workers "
                f"(gunicorn.conf.py's default, 2 x cores, is {2 * (os.cpu_count() or 1)} here); after a "
                f"{WARMUP_S:g} s warm-up, {CLIENTS} x {TIMED_PER_CLIENT} completions / the time until the "
                "last is done"
            ),
            "api_vs_engine": (
                "median latency of one completion over HTTP (1 client, 1 worker, one after another, "
                "as the client sees it) / median of runner.complete of the same probe task in-process "
                f"on the same schema; alternating; {LATENCY_REPS} each after {LATENCY_WARMUP}"
            ),
            "worker_scaling": (
                f"throughput with 2 workers / with 1 worker; {CLIENTS} clients, same load, same schema"
            ),
            "api_complete_ms_one_client": latency["http"],
            "engine_complete_ms_same_schema": latency["engine"],
            "one_client_cores_busy": latency["cores_busy"],
            "throughput_by_workers": {str(w): throughput[w] for w in runs},
            "setup_probe_instances": 2 * latency_n + per_run * len(runs),
            "setup_probe_instances_s": round(setup_s, 1),
            "cpus": os.cpu_count(),
        },
    }
