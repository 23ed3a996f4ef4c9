"""The programme year as one whole, over time: four branches — one on time, one stalled in phase 1, one in
phase 2, one failing acceptance — are all assessed; 约谈, 限期改正 with the order's deadline, 复验 until
达标 or closed with 不达标; the company programme waits for all of it, then closes and carries open items
into the next year. Every hand-over between instances is a delivered message. Straight and restored.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from tests.support import PROGRAMME_START, Company, Driver, build_company
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction
from workflows.engine.models import AuditEvent, Message, ProcessInstance
from workflows.programme import catalog, coordination, dashboard, ledger
from workflows.programme.units import start_programme

CODES = ["ON", "P1", "P2", "FA"]  # on time; stalled in phase 1; stalled in phase 2; fails acceptance
ROLES = ("sec", "mem", "grp", "off")
ACCEPT = {"vetoed": [], "assessment_2215": "良好", "review_result": "较好"}


@pytest.fixture(params=["straight", "restored"])
def mode(request):
    return request.param


@pytest.fixture
def company(factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now(), CODES)
    return factory


def _items() -> list[dict]:
    return [item for area in catalog.read_file(catalog.DEFAULT_CATALOG)["areas"] for item in area["items"]]


def _scores(fraction: float) -> list[dict]:
    return [{"code": i["code"], "score": round(i["points"] * fraction, 1)} for i in _items()]


def _at(*args) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def _phase1(c: Company, code: str) -> None:
    plan = {
        "meeting_date": "2026-06-05",
        "attendees": 12,
        "plan": "标准化工作计划",
        "plan_items": [
            {"task": "规范三会一课", "measures": "建立台账", "deadline": "2026-12-31", "responsible": "书记"}
        ],
    }
    c.do(f"sec_{code}", "mobilize", plan)
    c.do("office1", "review_plan", {"approved": True}, code)
    sessions = {"sessions": [{"date": "2026-06-10", "topic": "学习标准化手册"}]}
    c.do(f"sec_{code}", "training", {**sessions, "trained": [f"{p}_{code}" for p in ROLES]})
    item = {
        "title": "规范记录",
        "measures": "专人记录",
        "responsible_unit": "支委会",
        "deadline": "2026-10-31",
    }
    c.do(f"sec_{code}", "task_list", {"items": [item]})


def _phase2(c: Company, code: str) -> None:
    c.do(f"sec_{code}", "study", {"date": "2026-08-03", "attendees": 10, "notes": "学习讨论"})
    c.do(f"sec_{code}", "self_check", {"results": [{"code": i["code"], "met": True} for i in _items()]})
    c.do(f"sec_{code}", "rules_review", {"rules": [{"name": "三会一课制度", "decision": "坚持"}]})


def _office_year(c: Company) -> None:
    """The office's own steps of the year; ON and FA become the 示范点 and build up."""
    c.do("office1", "training", {"date": "2026-06-08", "topic": "标准化手册", "participants": 40})
    tracks = {
        "ON": ("先进", "示范点"),
        "P1": ("软弱", "薄弱攻坚"),
        "P2": ("一般", "同步推进"),
        "FA": ("一般", "同步推进"),
    }
    rows = [{"branch": code, "classification": k, "focus": f} for code, (k, f) in tracks.items()]
    c.do("office1", "classify", {"classifications": rows, "contacts": []})
    assert ("demonstration", "ON") in c.todo("sec_ON")  # told by message the moment it was chosen
    c.do("office1", "pick_demonstration", {"branches": ["ON", "FA"], "reason": "基础较好"})
    assert ("demonstration", "FA") in c.todo("sec_FA") and c.todo("sec_ON").count(
        ("demonstration", "ON")
    ) == 1
    for code in ("ON", "FA"):
        c.do(f"sec_{code}", "demonstration", {"measures": "打造标杆", "exchange_events": []})
    c.do("office1", "spot_checks", {"kind": "随机抽查", "count": 0, "finished": True})
    c.do(
        "office1", "exchange", {"date": "2026-11-20", "location": "ON", "participants": 30, "summary": "观摩"}
    )


def _messages(driver: Driver) -> list[Message]:
    with driver.factory()() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def _board(driver: Driver, now: datetime) -> dict[str, dashboard.BranchStatus]:
    with driver.factory()() as session:
        return {b.code: b for b in dashboard.build(session, now, 2026).branches}


def _fix_and_sign(c: Company, driver: Driver, code: str) -> None:
    for fix in [t for t in c._box(f"mem_{code}").todo if t.bpmn_id == "fix"]:
        driver.complete(fix.id, {"done": "已整改", "evidence": ["整改记录.pdf"]}, actor=f"mem_{code}")
    for signoff in [t for t in c._box("office1").todo if t.bpmn_id == "signoff" and t.branch == code]:
        driver.complete(signoff.id, {"approved": True, "comment": "整改到位"}, actor="office1")


def test_every_branch_is_assessed_corrected_and_the_year_closes_only_then(mode, db_url, company, clock):
    driver = Driver(db_url, clock, mode)
    c = Company(driver)
    programme = start_programme(driver.factory(), 2026, None, actor="office1", clock=clock).id

    # ---- the year runs: ON does everything on time, P1 never starts, P2 stops after phase 1
    for code in ("ON", "P2", "FA"):
        _phase1(c, code)
    for code in ("ON", "FA"):
        _phase2(c, code)
    _office_year(c)
    clock.set(_at(2026, 10, 9, 9, 0))
    driver.tick()
    board = _board(driver, clock.now())
    assert {code: board[code].phase for code in CODES} == {"ON": 3, "P1": 1, "P2": 2, "FA": 3}

    # ---- the end of phase 3 (12-31 24:00): every branch goes to acceptance, whatever phase it is in
    clock.set(_at(2027, 1, 1, 0, 0, 1))
    driver.tick()
    assert sorted(t[1] for t in c.todo("office1") if t[0] == "acceptance") == sorted(CODES)
    # the unfinished phase tasks gave way (P2's task-list item is tracked in an instance of its own)
    assert c.todo("sec_P1") == [] and c.todo("sec_P2") == [("progress", "P2")]
    unfinished = {code: c.data(c.task("office1", "acceptance", code).id)["unfinished"] for code in CODES}
    assert unfinished["ON"]["steps"] == [] and unfinished["FA"]["steps"] == []
    assert unfinished["P1"]["steps"][0] == "mobilize" and unfinished["P1"]["items"] == [
        "4.4",
        "5.1",
        "8.1",
        "8.2",
        "9.3",
    ]
    assert unfinished["P2"]["steps"] == ["study", "self_check", "rules_review"]
    assert unfinished["P2"]["items"] == ["5.1", "8.2", "9.3"]
    assert "「学标议标、明确方向」→ 条目 5.1；「广泛自查、逐项对标」→ 条目 8.2" in unfinished["P2"]["why"]

    # ---- acceptance in January: ON passes; P1, P2 lose their unfinished items; FA fails outright
    c.do("office1", "acceptance", {**ACCEPT, "scores": _scores(1.0)}, "ON")
    c.do("office1", "acceptance", {**ACCEPT, "scores": _scores(0.9)}, "P1")  # would pass but for the cut
    c.do("office1", "acceptance", {**ACCEPT, "scores": _scores(0.85)}, "P2")
    c.do("office1", "acceptance", {**ACCEPT, "scores": _scores(0.6)}, "FA")
    with driver.factory()() as session:
        grades = {g.branch_code: (g.total, g.grade) for g in session.scalars(select(dashboard.BranchGrade))}
    expected = {
        code: round(sum(s["score"] for s in _scores(f) if s["code"] not in unfinished[code]["items"]), 2)
        for code, f in (("ON", 1.0), ("P1", 0.9), ("P2", 0.85), ("FA", 0.6))
    }
    assert expected["ON"] == 100 and expected["P1"] < 80 and expected["P2"] < 80  # lost to the cut
    assert grades == {
        "ON": (100.0, "示范"),
        "P1": (expected["P1"], "不达标"),
        "P2": (expected["P2"], "不达标"),
        "FA": (expected["FA"], "不达标"),
    }
    for code in CODES:
        c.do(f"sec_{code}", "feedback", {"problems": [f"{code} 的问题"], "suggestions": [f"{code} 的建议"]})
        c.do(f"sec_{code}", "consolidate", {"unfit": []})

    # ---- 约谈 and 限期改正 for the three that failed; their items carry the order's deadline and person
    orders = {}
    for code in ("P1", "P2", "FA"):
        assert ("interview", code) in c.todo("office1")
        c.do("office1", "interview", {"date": "2027-01-12", "interviewer": "office1", "notes": "约谈"}, code)
        order = {
            "deadline": "2027-03-31",
            "responsible": f"mem_{code}",
            "items": [{"title": f"{code} 限期改正", "description": "补齐缺项", "standard_item": "8.2"}],
        }
        c.do("office1", "corrective", order, code)
        orders[code] = order
    with driver.factory()() as session:
        items = {
            row.branch: row
            for row in session.scalars(
                select(ledger.Rectification).where(ledger.Rectification.source == "考核验收")
            )
        }
    assert {code: (r.deadline, r.responsible, r.status, r.year) for code, r in items.items()} == {
        code: (date(2027, 3, 31), f"mem_{code}", "整改中", 2026) for code in ("P1", "P2", "FA")
    }
    board = _board(driver, clock.now())
    assert all(board[code].phase == 4 for code in ("P1", "P2", "FA"))

    # ---- the phase-4 deadline: all four graded; the programme collects the results and waits
    clock.set(_at(2027, 2, 1, 0, 0, 1))
    driver.tick()
    summary = c.data(c.task("office1", "aggregate_feedback").id)["feedback_summary"]
    assert sorted((i["branch"], i["kind"], i["text"]) for i in summary["items"]) == sorted(
        [(code, "问题", f"{code} 的问题") for code in CODES]
        + [(code, "建议", f"{code} 的建议") for code in CODES]
    )
    c.do("office1", "aggregate_feedback", {"summary": "四个党支部的意见已汇总", "forwarded": True})
    assert not [t for t in c.todo("office1") if t[0] == "close"]

    # ---- FA and P1 correct and are signed off: 复验 at once; FA reaches 达标, P1 is closed 不达标
    _fix_and_sign(c, driver, "FA")
    c.do("office1", "recheck", {"recheck_scores": _scores(0.85)}, "FA")
    _fix_and_sign(c, driver, "P1")
    c.do("office1", "recheck", {"recheck_scores": [{"code": "8.2", "score": 0.5}]}, "P1")  # still below 80
    assert ("decide", "P1") in c.todo("office1")
    assert not [t for t in c.todo("office1") if t[0] == "close"]  # P1 is undecided, P2 still correcting
    c.do("office1", "decide", {"decision": "记录不达标并结案", "reason": "阶段任务长期未启动"}, "P1")
    assert not [t for t in c.todo("office1") if t[0] == "close"]

    # ---- P2's item is not signed off by the deadline: the order's deadline brings the 复验 anyway
    clock.set(_at(2027, 3, 31, 23, 0))
    driver.tick()
    assert ("recheck", "P2") not in c.todo("office1")
    clock.set(_at(2027, 4, 1, 0, 0, 1))
    driver.tick()
    c.do("office1", "recheck", {"recheck_scores": _scores(0.95)}, "P2")

    # ---- every branch settled: now the year can close; P2's open item moves on into 2027's ledger
    c.do("office1", "close", {"summary": "年度总结"})
    with driver.factory()() as session:
        statuses = {
            r.branch or "公司": r.status
            for r in session.scalars(
                select(ProcessInstance).where(
                    ProcessInstance.process_id.in_(["programme", "branch_programme"])
                )
            )
        }
        history = [
            (r.branch_code, r.kind, r.grade)
            for r in coordination.rounds(session, 2026)
            if r.branch_code in ("P1", "FA")
        ]
        p2_item = session.get(ledger.Rectification, items["P2"].instance_id)
        grades = {g.branch_code: g.grade for g in session.scalars(select(dashboard.BranchGrade))}
        carried = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "item.carried_over", AuditEvent.instance_id == p2_item.instance_id
            )
        ).all()
    assert statuses == dict.fromkeys(["公司", *CODES], "completed")
    assert history == [
        ("P1", "验收", "不达标"),
        ("FA", "验收", "不达标"),
        ("FA", "复验", "达标"),
        ("P1", "复验", "不达标"),
        ("P1", "不达标结案", "不达标"),
    ]
    assert grades == {"ON": "示范", "P1": "不达标", "P2": "示范", "FA": "达标"}
    assert (p2_item.year, p2_item.carried_from, p2_item.status) == (2027, 2026, "整改中")
    assert len(carried) == 1

    # ---- every hand-over between instances was a message, each delivered once
    sent = _messages(driver)
    assert {m.status for m in sent} == {"delivered"}
    by_name = {}
    for m in sent:
        by_name[m.name] = by_name.get(m.name, 0) + 1
    assert by_name == {"确定为示范点": 2, "支部验收结果": 4 + 3 + 1, "支部意见反馈": 4, "整改事项销号": 2}
    received = [e for e in driver.events(programme) if e.action == "message.received"]
    assert len(received) == 4 + 3 + 1 + 4
    assert driver.mismatches() == [] and driver.verify().ok
    driver.close()
