"""A company of five branches through all five phases with the clock, straight and through save/restore.

At each phase boundary the test asserts, per role and per branch, which tasks are open.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from tests.support import COMPANY_BRANCHES as CODES
from tests.support import PROGRAMME_START, Company, Driver, build_company
from workflows.deadlines import notify
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction
from workflows.engine.models import AuditEvent, ProcessInstance
from workflows.programme import catalog, dashboard, inbox
from workflows.programme.units import start_programme

ROLE_PREFIXES = ("sec", "mem", "grp", "off")


@pytest.fixture
def company(factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now())
    return factory


def all_items() -> list[dict]:
    return [item for area in catalog.read_file(catalog.DEFAULT_CATALOG)["areas"] for item in area["items"]]


def scores(fraction: float = 1.0) -> list[dict]:
    return [{"code": i["code"], "score": round(i["points"] * fraction, 1)} for i in all_items()]


ACCEPT = {"vetoed": [], "assessment_2215": "优秀", "review_result": "好"}


def phase1(c: Company) -> None:
    for code in CODES:
        plan = {
            "meeting_date": "2026-06-05",
            "attendees": 12,
            "plan": "标准化工作计划",
            "plan_items": [
                {
                    "task": "规范三会一课",
                    "measures": "建立台账",
                    "deadline": "2026-12-31",
                    "responsible": "书记",
                }
            ],
        }
        c.do(f"sec_{code}", "mobilize", plan)
    c.do("office1", "review_plan", {"approved": False, "comment": "请补充时限"}, "B5")
    for code in CODES[:4]:
        c.do("office1", "review_plan", {"approved": True}, code)
    assert c.todo("sec_B5") == [("mobilize", "B5")]
    c.do(
        "sec_B5",
        "mobilize",
        {"meeting_date": "2026-06-09", "attendees": 10, "plan": "已补充", "plan_items": plan["plan_items"]},
    )
    c.do("office1", "review_plan", {"approved": True}, "B5")
    session = {"sessions": [{"date": "2026-06-10", "topic": "学习标准化手册"}]}
    # B1 forgets its group leader: coverage is not complete, the task comes back.
    first = c.do("sec_B1", "training", {**session, "trained": ["sec_B1", "mem_B1", "off_B1"]})
    assert c.todo("sec_B1") == [("training", "B1")]
    assert c.data(c.task("sec_B1", "training").id)["coverage"]["missing"] == ["grp_B1"]
    assert first != c.task("sec_B1", "training").id
    for code in CODES:
        c.do(f"sec_{code}", "training", {**session, "trained": [f"{p}_{code}" for p in ROLE_PREFIXES]})
        item = {
            "title": "规范三会一课记录",
            "measures": "专人记录",
            "responsible_unit": "支委会",
            "deadline": "2026-10-31",
        }
        c.do(f"sec_{code}", "task_list", {"items": [item]})
    c.do("office1", "training", {"date": "2026-06-08", "topic": "标准化手册", "participants": 60})
    kinds = {"B1": ("先进", "示范点"), "B2": ("先进", "示范点"), "B3": ("一般", "同步推进")}
    classifications = [
        {
            "branch": code,
            "classification": kinds.get(code, ("软弱", "薄弱攻坚"))[0],
            "focus": kinds.get(code, ("", "薄弱攻坚"))[1],
        }
        for code in CODES
    ]
    c.do(
        "office1",
        "classify",
        {"classifications": classifications, "contacts": [{"username": "committee2", "branch": "B4"}]},
    )
    c.do("office1", "pick_demonstration", {"branches": ["B1", "B2"], "reason": "基础较好"})


def test_five_branches_through_all_five_phases(mode, db_url, company, clock):
    driver = Driver(db_url, clock, mode)
    c = Company(driver)
    start_programme(driver.factory(), 2026, None, actor="office1", clock=clock)

    # ---- start of phase 1: every secretary has the mobilization task of their own branch only
    for code in CODES:
        assert c.todo(f"sec_{code}") == [("mobilize", code)]
        assert c.todo(f"mem_{code}") == []
        assert c.watching(f"mem_{code}") == [("mobilize", code)]
    assert c.todo("office1") == [("training", "")]
    assert c.todo("committee1") == [] and c.watching("committee1") == [("mobilize", "B1"), ("mobilize", "B2")]
    assert c.todo("leader1") == [] and len(c.watching("leader1")) == 6
    assert c.todo("inspector1") == [] and len(c.watching("inspector1")) == 6
    with driver.factory()() as session:
        other = c.task("sec_B2", "mobilize").id
        assert not inbox.can_act(session, "sec_B1", other) and not inbox.can_see(session, "sec_B1", other)
        assert inbox.can_see(session, "committee1", other) and not inbox.can_act(session, "committee1", other)

    phase1(c)
    # ---- end of phase 1: study next; the task-list item is tracked in every branch person's inbox;
    # the two 示范点 were told by message when the office chose them, and build up from now on
    for code in CODES:
        demonstration = [("demonstration", code)] if code in ("B1", "B2") else []
        assert c.todo(f"sec_{code}") == [*demonstration, ("progress", code), ("study", code)]
        for prefix in ("mem", "grp", "off"):
            assert c.todo(f"{prefix}_{code}") == [("progress", code)]
    assert c.todo("office1") == [("spot_checks", "")]
    phase2 = [step for step, n in dashboard.phase_of_step().items() if n == 2]
    with driver.factory()() as session:
        listing = inbox.search(session, "sec_B1", view="todo", phase_steps=phase2, now=clock.now())
    assert [t.bpmn_id for t, _ in listing.rows] == ["study"] and listing.counts["todo"] == 1
    assert c.watching("committee2") == [("progress", "B4"), ("study", "B4")]
    for code in CODES:
        c.do(f"mem_{code}", "progress", {"progress": "已建立台账", "done": True, "evidence": ["台账.xlsx"]})

    # ---- phase 2: study and self-check; shortfalls become rectifications; B3 misses the deadline
    codes = [i["code"] for i in all_items()]
    for code in ["B1", "B2", "B4", "B5"]:
        c.do(f"sec_{code}", "study", {"date": "2026-08-03", "attendees": 10, "notes": "学习讨论"})
        c.do(f"sec_{code}", "self_check", {"results": [{"code": k, "met": True} for k in codes[:5]]})
        assert c.data(c.task(f"sec_{code}", "self_check").id)["selfcheck"]["missing"] == codes[5:]
        short = {"B4": codes[:2], "B5": codes[2:3]}.get(code, [])
        results = [
            {"code": k, "met": k not in short, "note": "记录不全" if k in short else ""} for k in codes
        ]
        c.do(f"sec_{code}", "self_check", {"results": results})
        c.do(f"sec_{code}", "rules_review", {"rules": [{"name": "三会一课制度", "decision": "坚持"}]})
    assert c.todo("sec_B4") == [("assign", "B4"), ("assign", "B4")]
    assert c.todo("sec_B5") == [("assign", "B5")]
    assert c.todo("sec_B1") == [("demonstration", "B1")] and c.todo("sec_B4")[0][0] == "assign"
    clock.set(datetime(2026, 9, 1, 0, 0, 1, tzinfo=LOCAL_TZ))
    assert driver.tick() >= 1
    [late] = [t for t in c._box("sec_B3").todo if t.bpmn_id == "study"]
    assert late.escalation_level == 2  # the reminder (3 working days before) and the deadline itself
    with driver.factory()() as session:  # each told the secretary once (B3 has no contact member)
        told = sorted(
            n.title.split("】")[0] + "】" for n in notify.inbox(session, "sec_B3") if n.kind == "escalation"
        )
        assert told == ["【到期提醒】", "【阶段期限已到】"] and notify.inbox(session, "sec_B1") == []
    c.do("sec_B3", "study", {"date": "2026-09-02", "attendees": 9, "notes": "补学"})
    c.do("sec_B3", "self_check", {"results": [{"code": k, "met": True} for k in codes]})
    c.do("sec_B3", "rules_review", {"rules": [{"name": "党费收缴制度", "decision": "修订"}]})

    # ---- phase 3: spot checks drawn with a recorded seed; demonstration branches build up
    assert c.todo("sec_B3") == [] and c.todo("sec_B2") == [("demonstration", "B2")]
    c.do("office1", "spot_checks", {"kind": "随机抽查", "count": 2, "finished": False})
    inspections = [t for t in c.todo("office1") if t[0] == "inspect"]
    assert len(inspections) == 2
    first_checked = inspections[0][1]
    finding = {"title": "活动室未更新", "description": "公开栏半年未更新", "standard_item": "7.2"}
    c.do(
        "office1",
        "inspect",
        {
            "date": "2026-10-10",
            "inspectors": "office1",
            "findings": [finding],
            "accountability_needed": False,
            "conclusion": "基本达标",
        },
        first_checked,
    )
    assert ("assign", first_checked) in c.todo(f"sec_{first_checked}")
    c.do("office1", "spot_checks", {"kind": "定期抽查", "count": 0, "finished": True})
    for code in ("B1", "B2"):
        c.do(f"sec_{code}", "demonstration", {"measures": "打造标杆党支部", "exchange_events": []})
    c.do(
        "office1",
        "exchange",
        {"date": "2026-11-20", "location": "B1活动室", "participants": 40, "summary": "观摩交流"},
    )
    assert not [t for t in c.todo("office1") if t[0] == "acceptance"]

    # ---- phase 4 begins when phase 3 ends: the office scores every branch, item by item
    clock.set(datetime(2027, 1, 1, 0, 0, 1, tzinfo=LOCAL_TZ))
    driver.tick()
    assert sorted(t for t in c.todo("office1") if t[0] == "acceptance") == [
        ("acceptance", code) for code in CODES
    ]
    accepted = c.task("office1", "acceptance", "B1")
    assert len(c.data(accepted.id)["acceptance_checklist"]["items"]) == len(codes)
    for code in ("B1", "B2", "B3"):
        c.do("office1", "acceptance", {**ACCEPT, "scores": scores()}, code)
    c.do("office1", "acceptance", {**ACCEPT, "scores": scores(0.7)}, "B4")
    c.do("office1", "acceptance", {**ACCEPT, "scores": scores(), "vetoed": ["2.2"]}, "B5")
    for code in ("B1", "B2", "B3"):
        assert ("feedback", code) in c.todo(f"sec_{code}")
        assert ("interview", code) not in c.todo("office1")
    for code in ("B4", "B5"):
        # feedback runs beside the 约谈 and 限期改正 of a failed branch
        assert ("interview", code) in c.todo("office1") and ("feedback", code) in c.todo(f"sec_{code}")
        c.do("office1", "interview", {"date": "2027-01-10", "interviewer": "office1", "notes": "约谈"}, code)
        corrective = {
            "deadline": "2027-03-31",
            "responsible": f"mem_{code}",
            "items": [
                {"title": "限期改正", "description": "三会一课不规范"},
                {"title": "台账不全", "description": "补齐台账"},
            ],
        }
        task_id = c.do("office1", "corrective", corrective, code)
        # each item carries the order's deadline and responsible person: straight to 整改落实
        fixes = [t for t in c._box(f"mem_{code}").todo if t.bpmn_id == "fix"]
        assert len(fixes) == 2 and {t.due_at for t in fixes} == {datetime(2027, 4, 1, tzinfo=LOCAL_TZ)}
        with driver.factory()() as session:
            corrected = session.scalars(
                select(AuditEvent).where(AuditEvent.task_id == task_id, AuditEvent.action == "task.completed")
            ).one()
            assert '"deadline":"2027-03-31"' in corrected.data
    # ---- feedback, then phase 5: unfit indicators go up through the office
    for code in CODES:
        c.do(f"sec_{code}", "feedback", {"problems": ["任务较重"], "suggestions": ["简化台账"]})
        unfit = [{"item": "6.2", "reason": "规模小，难以形成品牌"}] if code == "B1" else []
        c.do(f"sec_{code}", "consolidate", {"unfit": unfit})
    assert ("forward", "B1") in c.todo("office1")
    c.do("office1", "forward", {"forwarded_on": "2027-01-20", "note": "已转报"}, "B1")
    clock.set(datetime(2027, 2, 1, 0, 0, 1, tzinfo=LOCAL_TZ))
    driver.tick()
    summary = c.data(c.task("office1", "aggregate_feedback").id)["feedback_summary"]
    assert len(summary["items"]) == 11 and summary["unfit_counts"] == {"6.2": 1}  # 5 × 2 + B1's 6.2
    c.do("office1", "aggregate_feedback", {"summary": "汇总五个党支部的意见", "forwarded": True})
    assert not [t for t in c.todo("office1") if t[0] == "close"]  # B4 and B5 are still correcting

    # ---- 限期改正: the items are fixed and signed off; the 复验 raises B4, B5 stays vetoed and is closed
    for code in ("B4", "B5"):
        for fix in [t for t in c._box(f"mem_{code}").todo if t.bpmn_id == "fix"]:
            driver.complete(fix.id, {"done": "已整改", "evidence": ["整改记录.pdf"]}, actor=f"mem_{code}")
        for signoff in [t for t in c._box("office1").todo if t.bpmn_id == "signoff" and t.branch == code]:
            driver.complete(signoff.id, {"approved": True, "comment": "整改到位"}, actor="office1")
        assert ("recheck", code) in c.todo("office1")  # all signed off: the 复验 runs before the deadline
    c.do("office1", "recheck", {"recheck_scores": scores(0.85)}, "B4")
    c.do("office1", "recheck", {"recheck_scores": [{"code": "2.2", "score": 3}]}, "B5")
    assert not [t for t in c.todo("office1") if t[0] == "close"]
    c.do("office1", "decide", {"decision": "记录不达标并结案", "reason": "一票否决情形未消除"}, "B5")
    c.do("office1", "close", {"summary": "年度总结"})
    with driver.factory()() as session:
        statuses = {
            (row.process_id, row.branch): row.status
            for row in session.scalars(
                select(ProcessInstance).where(
                    ProcessInstance.process_id.in_(["programme", "branch_programme"])
                )
            )
        }
    assert set(statuses.values()) == {"completed"} and len(statuses) == 6
    with driver.factory()() as session:
        board = dashboard.build(session, clock.now(), 2026)
    assert board.grades == {"示范": 3, "达标": 1, "不达标": 1}
    assert {b.code: b.grade for b in board.branches} == {
        "B1": "示范",
        "B2": "示范",
        "B3": "示范",
        "B4": "达标",  # 70 at the acceptance, 85 at the 复验
        "B5": "不达标",
    }
    assert driver.mismatches() == [] and driver.verify().ok
    driver.close()


@pytest.fixture(params=["straight", "restored"])
def mode(request):
    return request.param
