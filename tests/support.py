"""A driver that runs workflow steps the way entry points do: one transaction per step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from workflows.engine import audit, consistency, details, instances, runner, specs, tasks, timers
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import AuditEvent, ProcessInstance, TaskRecord
from workflows.programme import catalog, inbox, org

REGISTERED = {
    "source": "自查",
    "branch": "一支部",
    "title": "支委会记录不全",
    "description": "三季度缺两次支委会记录",
}
ASSIGNED = {"responsible": "zhangsan", "measures": "补齐会议记录并建立台账", "deadline": "2026-11-30"}
FIXED = {"done": "已补齐记录", "evidence": ["支委会记录-10月.pdf"]}


def seed_people(session, now) -> None:
    """Branch 一支部 with its secretary and a member, and one office user."""
    org.add_branch(session, "一支部", "第一党支部", now=now, actor="tester", members=12)
    org.add_user(
        session,
        "secretary1",
        password="Zhibu-test-2026",
        role="secretary",
        branch_code="一支部",
        now=now,
        actor="tester",
    )
    org.add_user(
        session,
        "zhangsan",
        password="Zhibu-test-2026",
        role="branch_member",
        branch_code="一支部",
        now=now,
        actor="tester",
    )
    org.add_user(session, "office1", password="Zhibu-test-2026", role="office", now=now, actor="tester")


class Driver:
    """Runs steps in one of two modes.

    `straight`: one engine and one session for the whole scenario (commit after each step).
    `restored`: a brand-new engine and session before every step, with the parsed-spec cache
    cleared, so every step restores the workflow and its spec from the database alone.
    """

    def __init__(self, url: str, clock: FixedClock, mode: str):
        self.url, self.clock, self.mode = url, clock, mode
        self._engine = make_engine(url)
        self._factory = make_session_factory(self._engine)

    def factory(self):
        if self.mode == "restored":
            self._engine.dispose()
            specs.clear_cache()
            self._engine = make_engine(self.url)
            self._factory = make_session_factory(self._engine)
        return self._factory

    def close(self) -> None:
        self._engine.dispose()

    def start(self, data: dict | None = None, process: str = "rectification", actor: str = "tester") -> int:
        return runner.start(self.factory(), process, data, actor=actor, clock=self.clock).id

    def complete(self, task_id: str, data: dict | None, actor: str = "tester") -> instances.CompletedTask:
        return runner.complete(self.factory(), task_id, data, actor=actor, clock=self.clock)

    def tick(self) -> int:
        return runner.sweep(self.factory(), clock=self.clock).fired

    def open_tasks(self, instance_id: int) -> list[TaskRecord]:
        with self.factory()() as session:
            return tasks.open_rows(session, instance_id)

    def only_task(self, instance_id: int) -> TaskRecord:
        rows = self.open_tasks(instance_id)
        assert len(rows) == 1, [r.bpmn_id for r in rows]
        return rows[0]

    def instance(self, instance_id: int) -> ProcessInstance:
        with self.factory()() as session:
            return session.get(ProcessInstance, instance_id)

    def task_data(self, task_id: str) -> dict:
        with self.factory()() as session:
            return details.task_details(session, instances.task_record(session, task_id))["data"]

    def mismatches(self, instance_id: int | None = None) -> list[str]:
        with self.factory()() as session:
            return list(consistency.mismatches(session, None if instance_id is None else [instance_id]))

    def workflow_truth(self, instance_id: int) -> tuple[dict, object]:
        """The open tasks and next timer the workflow itself reports."""
        with self.factory()() as session:
            loaded = instances.restore(session, session.get(ProcessInstance, instance_id))
            return tasks.snapshot(loaded.workflow), timers.next_due_at(timers.scan(loaded.workflow))

    def events(self, instance_id: int | None = None) -> list[AuditEvent]:
        with self.factory()() as session:
            query = select(AuditEvent).order_by(AuditEvent.seq)
            if instance_id is not None:
                query = query.where(AuditEvent.instance_id == instance_id)
            return list(session.scalars(query))

    def verify(self) -> audit.Verification:
        with self.factory()() as session:
            return audit.verify(session)


COMPANY_BRANCHES = ["B1", "B2", "B3", "B4", "B5"]


PROGRAMME_START = datetime(2026, 6, 1, 9, 0, tzinfo=LOCAL_TZ)


def build_company(session, now, codes: list[str] = COMPANY_BRANCHES) -> None:
    """A company: per branch a secretary, a committee member, a group leader and an officer
    (sec_X, mem_X, grp_X, off_X); office1, leader1, inspector1; committee1 contacts the first two.
    Deploys the diagrams and loads the default catalog first."""
    specs.deploy_all(session, now=now, actor="tester")
    catalog.load(session, catalog.read_file(catalog.DEFAULT_CATALOG), now=now, actor="tester")
    for code in codes:
        org.add_branch(session, code, f"第{code}党支部", now=now, actor="tester", members=15)
        for prefix, role in (
            ("sec", "secretary"),
            ("mem", "branch_member"),
            ("grp", "group_leader"),
            ("off", "officer"),
        ):
            org.add_user(
                session,
                f"{prefix}_{code}",
                password="Zhibu-test-2026",
                role=role,
                branch_code=code,
                now=now,
                actor="tester",
            )
    for username, role in (
        ("office1", "office"),
        ("leader1", "leader"),
        ("inspector1", "inspector"),
        ("committee1", "committee"),
        ("committee2", "committee"),
    ):
        org.add_user(session, username, password="Zhibu-test-2026", role=role, now=now, actor="tester")
    for code in codes[:2]:
        org.add_contact(session, "committee1", code, now=now, actor="tester")


class Company:
    """Reads inboxes and completes tasks as named people, checking they may."""

    def __init__(self, driver: Driver):
        self.driver = driver

    def _box(self, user: str) -> inbox.Inbox:
        with self.driver.factory()() as session:
            return inbox.inbox(session, user)

    def todo(self, user: str) -> list[tuple[str, str | None]]:
        return sorted((t.bpmn_id, t.branch or "") for t in self._box(user).todo)

    def watching(self, user: str) -> list[tuple[str, str | None]]:
        return sorted((t.bpmn_id, t.branch or "") for t in self._box(user).watching)

    def task(self, user: str, bpmn_id: str, branch: str | None = None):
        found = [
            t for t in self._box(user).todo if t.bpmn_id == bpmn_id and (branch is None or t.branch == branch)
        ]
        assert len(found) == 1, (user, bpmn_id, branch, [(t.bpmn_id, t.branch) for t in found])
        return found[0]

    def do(self, user: str, bpmn_id: str, data: dict, branch: str | None = None) -> str:
        task = self.task(user, bpmn_id, branch)
        with self.driver.factory()() as session:
            assert inbox.can_act(session, user, task.id)
        self.driver.complete(task.id, data, actor=user)
        return task.id

    def data(self, task_id: str) -> dict:
        return self.driver.task_data(task_id)


def seed_neighbours(session, now) -> None:
    """Beside `seed_people`: branch 二支部 with secretary2, and committee1 (contact of 一支部), leader1,
    inspector1 — the people authorization tests need on the other side of every line."""
    org.add_branch(session, "二支部", "第二党支部", now=now, actor="tester")
    org.add_user(
        session,
        "secretary2",
        password="Zhibu-test-2026",
        role="secretary",
        branch_code="二支部",
        now=now,
        actor="t",
    )
    for username, role in (("committee1", "committee"), ("leader1", "leader"), ("inspector1", "inspector")):
        org.add_user(session, username, password="Zhibu-test-2026", role=role, now=now, actor="t")
    org.add_contact(session, "committee1", "一支部", now=now, actor="t")


def deploy_timer_process(factory, clock, directory, process_id: str, script: str = "done = True") -> None:
    """Deploy a one-off diagram: start, wait until 2026-11-25 00:00 Beijing time, run `script`, end."""
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait" />
    <bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition>
        <bpmn:timeDate xsi:type="bpmn:tFormalExpression">"2026-11-25T00:00:00+08:00"</bpmn:timeDate>
      </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="run" />
    <bpmn:scriptTask id="run"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="run" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
    (directory / "bpmn").mkdir(parents=True, exist_ok=True)
    (directory / "forms").mkdir(exist_ok=True)
    (directory / "bpmn" / f"{process_id}.bpmn").write_text(xml, "utf-8")
    with transaction(factory) as session:
        specs.deploy_all(
            session, now=clock.now(), actor="t", bpmn_dir=directory / "bpmn", forms_dir=directory / "forms"
        )
