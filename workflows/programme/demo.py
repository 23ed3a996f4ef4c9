"""The demo company (`zhibu demo`): twelve branches, people for every role, and a programme year in flight.

Like `workflows.engine.runner`, this composes whole units of work and commits each one. The story is a
dated script of steps through the programme year; steps dated after "now" are not taken, so the demo
shows whatever phase the calendar has reached, with a few branches late and their tasks overdue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from workflows.engine import runner, specs
from workflows.engine.clock import LOCAL_TZ, Clock, FixedClock
from workflows.engine.db import transaction
from workflows.engine.models import ProcessInstance, TaskRecord
from workflows.programme import catalog, obligations, org, units

DEMO_FILE = Path(__file__).resolve().parents[2] / "data" / "demo.json"
FOCUS = {"先进": "示范点", "一般": "同步推进", "软弱": "薄弱攻坚"}
LAGGING_TRAINING = "WZ01"  # still at training: overdue since the end of phase 1
LAGGING_SELF_CHECK = "GC01"  # studied, never self-checked: overdue since the end of phase 2
SHORTFALLS = {"JX01": ["3.1"], "YX01": ["7.2", "8.2"]}
DEMONSTRATION = ["JG01", "SC01"]
# Recurring obligations the demo's branches recorded, month by month, except these missed ones (each
# became a 例行工作 rectification item when its period ended): (branch, obligation, month).
MISSED_OBLIGATIONS = {
    ("WZ01", "committee_meeting", 9),
    ("GC01", "theme_day", 10),
    ("WZ01", "group_meeting", 10),
}
RECORD = {"date": "", "attendees": 9, "topic": "按期开展", "minutes": "会议记录已存档"}


def content() -> dict[str, Any]:
    """The demo company as data."""
    return json.loads(DEMO_FILE.read_text(encoding="utf-8"))


def exists(session: Session) -> bool:
    """Whether the database already holds an organization (then the demo is not loaded again)."""
    return session.scalar(select(org.Branch.code).limit(1)) is not None


def programme_year(today: date) -> int:
    """The programme year the demo shows: this year from June on, else last year's."""
    return today.year if today.month >= 6 else today.year - 1


class _Story:
    """Runs the demo's steps as the people named in them, at the step's date."""

    def __init__(self, factory: sessionmaker[Session], clock: FixedClock):
        self.factory, self.clock = factory, clock

    def task_id(self, bpmn_id: str, branch: str | None, process_id: str | None = None) -> str:
        with self.factory() as session:
            query = select(TaskRecord.id).where(TaskRecord.status == "open", TaskRecord.bpmn_id == bpmn_id)
            query = query.where(TaskRecord.branch == branch if branch else TaskRecord.branch.is_(None))
            if process_id:
                query = query.where(TaskRecord.process_id == process_id)
            found = session.scalars(query.order_by(TaskRecord.created_at)).first()
        if found is None:
            raise LookupError(f"demo: no open task {bpmn_id} for {branch}")
        return found

    def do(self, actor: str, bpmn_id: str, data: dict[str, Any], branch: str | None = None) -> None:
        runner.complete(self.factory, self.task_id(bpmn_id, branch), data, actor=actor, clock=self.clock)


def _organization(session: Session, company: dict[str, Any], now: datetime) -> None:
    password, actor = company["password"], "system:demo"
    for branch in company["branches"]:
        org.add_branch(
            session,
            branch["code"],
            branch["name"],
            members=branch["members"],
            term_end=date.fromisoformat(branch["term_end"]) if branch.get("term_end") else None,
            now=now,
            actor=actor,
        )
        for person in branch["people"]:
            org.add_user(
                session,
                person["username"],
                password=password,
                role=person["role"],
                branch_code=branch["code"],
                display_name=person["name"],
                now=now,
                actor=actor,
            )
        leader = next(p["username"] for p in branch["people"] if p["role"] == "group_leader")
        org.add_group(session, branch["code"], "第一党小组", leader=leader, now=now, actor=actor)
        org.add_group(session, branch["code"], "第二党小组", leader=None, now=now, actor=actor)
    for person in company["company"]:
        org.add_user(
            session,
            person["username"],
            password=password,
            role=person["role"],
            display_name=person["name"],
            title=person.get("title"),  # the leadership group's 组长/副组长/成员
            now=now,
            actor=actor,
        )


def _steps(story: _Story, company: dict[str, Any], year: int) -> list[tuple[datetime, Callable[[], Any]]]:
    """The dated script of the programme year: (when, action), in time order."""
    codes = [b["code"] for b in company["branches"]]
    people = {b["code"]: [p["username"] for p in b["people"]] for b in company["branches"]}
    kinds = {b["code"]: b["classification"] for b in company["branches"]}
    items = [i.code for i in _catalog_items(story)]
    office = "dwgzs1"
    steps: list[tuple[datetime, Callable[[], Any]]] = []

    def at(month: int, day: int, hour: int = 10) -> datetime:
        return datetime.combine(date(year, month, day), time(hour), tzinfo=LOCAL_TZ)

    def step(
        when: datetime, actor: str, bpmn_id: str, data: dict[str, Any], branch: str | None = None
    ) -> None:
        steps.append((when, lambda: story.do(actor, bpmn_id, data, branch)))

    def secretary(when: datetime, code: str, bpmn_id: str, data: dict[str, Any]) -> None:
        step(when, people[code][0], bpmn_id, data, code)

    plan_item = {
        "task": "规范“三会一课”记录",
        "measures": "专人记录、每月检查",
        "deadline": f"{year}-12-31",
        "responsible": "支部书记",
    }
    plan = {
        "meeting_date": f"{year}-06-05",
        "attendees": 12,
        "plan": "对照手册逐项落实",
        "plan_items": [plan_item],
    }
    steps.append(
        (
            at(6, 1, 9),
            lambda: units.start_programme(story.factory, year, None, actor=office, clock=story.clock),
        )
    )
    step(
        at(6, 8),
        office,
        "training",
        {"date": f"{year}-06-08", "topic": "党支部建设标准化手册", "participants": 68},
    )
    for n, code in enumerate(codes):
        secretary(at(6, 3 + n), code, "mobilize", plan)
        returned = code == LAGGING_TRAINING
        verdict = {"approved": False, "comment": "请细化措施并明确时限"} if returned else {"approved": True}
        step(at(6, 16), office, "review_plan", verdict, code)
    secretary(at(6, 20), LAGGING_TRAINING, "mobilize", plan)
    step(at(6, 22), office, "review_plan", {"approved": True}, LAGGING_TRAINING)
    classes = [{"branch": c, "classification": kinds[c], "focus": FOCUS[kinds[c]]} for c in codes]
    contacts = [{"username": u, "branch": c} for u, cs in company["contacts"].items() for c in cs]
    step(at(6, 18), office, "classify", {"classifications": classes, "contacts": contacts})
    step(at(6, 19), office, "pick_demonstration", {"branches": DEMONSTRATION, "reason": "基础好、规范程度高"})
    task = {
        "title": "完善党员活动室",
        "measures": "更新公开栏、配齐学习资料",
        "responsible_unit": "支委会",
        "deadline": f"{year}-10-31",
    }
    rules = [{"name": "“三会一课”制度", "decision": "坚持"}, {"name": "党员积分管理办法", "decision": "修订"}]
    for n, code in enumerate(c for c in codes if c != LAGGING_TRAINING):
        trained = {
            "sessions": [{"date": f"{year}-06-25", "topic": "逐篇学习标准化手册"}],
            "trained": people[code],
        }
        secretary(at(6, 24 + n % 6), code, "training", trained)
        secretary(at(7, 1 + n), code, "task_list", {"items": [task]})
        secretary(
            at(7, 20 + n % 8),
            code,
            "study",
            {"date": f"{year}-07-20", "attendees": 11, "notes": "学标议标，找准短板"},
        )
        if code == LAGGING_SELF_CHECK:
            continue
        progress = {"progress": "公开栏已更新，学习资料已配齐", "done": True, "evidence": ["活动室照片.jpg"]}
        step(at(10, 10 + n), people[code][3], "progress", progress, code)
        short = SHORTFALLS.get(code, [])
        results = [
            {"code": k, "met": k not in short, "note": "记录不完整" if k in short else ""} for k in items
        ]
        secretary(at(8, 5 + n), code, "self_check", {"results": results})
        secretary(at(8, 20 + n % 8), code, "rules_review", {"rules": rules})
    # Self-check shortfalls: JX01 assigns its item and is late fixing it; YX01 fixes one, signed off.
    secretary(
        at(8, 25),
        "JX01",
        "assign",
        {"responsible": "jx01_wy", "measures": "补齐支委会记录，建立检查台账", "deadline": f"{year}-09-30"},
    )
    for n, responsible in enumerate(("yx01_gs", "yx01_zz")):
        secretary(
            at(8, 26, 10 + n),
            "YX01",
            "assign",
            {"responsible": responsible, "measures": "限期整改", "deadline": f"{year}-10-15"},
        )
    step(at(9, 20), "yx01_gs", "fix", {"done": "已更新公开栏", "evidence": ["公开栏照片.jpg"]}, "YX01")
    step(at(9, 25), office, "signoff", {"approved": True, "comment": "材料齐全，予以销号"}, "YX01")
    step(at(9, 15), office, "spot_checks", {"kind": "随机抽查", "count": 2, "finished": False})
    event = {"date": f"{year}-10-18", "topic": "标准化建设现场观摩"}
    secretary(
        at(10, 20),
        "JG01",
        "demonstration",
        {"measures": "打造“红色引擎”党建品牌", "exchange_events": [event]},
    )
    steps += _obligation_steps(story, company, year)
    return sorted(steps, key=lambda each: each[0])


def _obligation_steps(story: _Story, company: dict[str, Any], year: int) -> list[tuple[datetime, Callable]]:
    """Each month the scheduler opens the period's obligations, and on the 25th the branches (and the
    committee members, for their contact visits) record them, but for the few the demo shows missed."""
    secretaries = {b["code"]: b["people"][0]["username"] for b in company["branches"]}

    def opened(when: datetime) -> Callable[[], Any]:
        return lambda: units.generate_occurrences(story.factory, clock=FixedClock(when))

    def recorded(month: int) -> Callable[[], Any]:
        def record() -> None:
            units.generate_occurrences(story.factory, clock=story.clock)  # e.g. visits of new contact points
            with story.factory() as session:
                ending = session.scalars(
                    select(obligations.Occurrence).where(
                        obligations.Occurrence.recorded_at.is_(None),
                        obligations.Occurrence.period_end >= date(year, month, 1),
                        obligations.Occurrence.period_end <= date(year, month, 28) + timedelta(days=4),
                    )
                ).all()
                open_tasks = {
                    t.instance_id: t.id
                    for t in session.scalars(
                        select(TaskRecord).where(
                            TaskRecord.process_id == "obligation", TaskRecord.status == "open"
                        )
                    )
                }
            for (
                occurrence
            ) in ending:  # the periods that end this month: this month's, a quarter's, the year's
                if occurrence.period_end.month != month:
                    continue
                if (occurrence.branch_code, occurrence.obligation, month) in MISSED_OBLIGATIONS:
                    continue
                task = open_tasks.get(occurrence.instance_id)
                if task is None:
                    continue
                actor = occurrence.username or secretaries[occurrence.branch_code]
                data = {**RECORD, "date": date(year, month, 25).isoformat()}
                runner.complete(story.factory, task, data, actor=actor, clock=story.clock)

        return record

    steps = []
    for month in range(6, 13):
        steps.append(
            (
                datetime(year, month, 1, 8, 0, tzinfo=LOCAL_TZ),
                opened(datetime(year, month, 1, 8, 0, tzinfo=LOCAL_TZ)),
            )
        )
        steps.append((datetime(year, month, 25, 16, 0, tzinfo=LOCAL_TZ), recorded(month)))
    return steps


def _catalog_items(story: _Story) -> list[catalog.CatalogItem]:
    with story.factory() as session:
        return catalog.items(session)


def load(factory: sessionmaker[Session], *, now: datetime) -> dict[str, int]:
    """Load the demo company and play its year up to `now`; return what it made."""
    company = content()
    year = programme_year(now.astimezone(LOCAL_TZ).date())
    clock = FixedClock(datetime(year, 6, 1, 8, 0, tzinfo=LOCAL_TZ))
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="system:demo")
        if catalog.active(session, required=False) is None:
            catalog.load(
                session, catalog.read_file(catalog.DEFAULT_CATALOG), now=clock.now(), actor="system:demo"
            )
        _organization(session, company, clock.now())
    story = _Story(factory, clock)
    taken = 0
    for when, action in _steps(story, company, year):
        if when > now:
            break
        clock.set(when)
        runner.sweep(factory, clock=clock)
        action()
        taken += 1
    clock.set(now)
    runner.sweep(factory, clock=clock)
    occurrences = units.generate_occurrences(factory, clock=clock)
    with factory() as session:
        instances = session.query(ProcessInstance).count()
        open_tasks = session.query(TaskRecord).filter(TaskRecord.status == "open").count()
    return {
        "year": year,
        "steps": taken,
        "instances": instances,
        "open_tasks": open_tasks,
        "occurrences": occurrences,
    }


def logins(session: Session) -> list[tuple[str, list[str]]]:
    """The demo's sign-in names by role, if the demo company is in this database (else empty)."""
    company = content()
    if session.get(org.User, company["company"][0]["username"]) is None:
        return []
    by_role: dict[str, list[str]] = {}
    for person in company["company"]:
        by_role.setdefault(person["role"], []).append(person["username"])
    for branch in company["branches"]:
        for person in branch["people"]:
            if person["role"] == "secretary" or branch["code"] == company["branches"][0]["code"]:
                by_role.setdefault(person["role"], []).append(person["username"])
    names = {
        **org.ROLES,
        "secretary": "党支部书记（各支部，…_sj）",
        "branch_member": "支委（…_wy）",
        "group_leader": "党小组长（…_zz）",
        "officer": "党务干事（…_gs）",
    }
    return [(names[role], usernames) for role, usernames in by_role.items()]


def run(factory: sessionmaker[Session], clock: Clock) -> dict[str, int] | None:
    """Load the demo unless the database already has an organization; None when it was skipped."""
    with factory() as session:
        if exists(session):
            return None
    return load(factory, now=clock.now())
