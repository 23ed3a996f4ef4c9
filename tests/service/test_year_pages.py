"""The programme year as people meet it: a missed phase deadline climbs the whole ladder once per level up
to 约谈/通报 (on the 通报 page); a step that comes back says why at the top and is the same task for its
deadline and notices; the dashboard shows every running branch's phase from recorded facts; the office's
汇总 lists every branch's feedback and exports it."""

from __future__ import annotations

from datetime import datetime
from io import BytesIO

import pytest
from openpyxl import load_workbook

from tests.support import PROGRAMME_START, Company, Driver, build_company
from workflows.deadlines import escalation, notify
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction
from workflows.programme.units import start_programme

from .test_app import app_for, signed_in

CODES = ["B1", "B2"]


def _at(*args) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


@pytest.fixture
def year(db_url, factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now(), CODES)
    driver = Driver(db_url, clock, "straight")
    start_programme(driver.factory(), 2026, None, actor="office1", clock=clock)
    yield driver, Company(driver)
    driver.close()


def _levels(driver: Driver, code: str) -> list[tuple[str, str]]:
    with driver.factory()() as session:
        return sorted(
            (n.username, n.title.split("】")[0] + "】")
            for username in (f"sec_{code}", "committee1", "office1")
            for n in notify.inbox(session, username)
            if n.kind == "escalation" and code in n.title
        )


def test_a_missed_phase_deadline_climbs_every_level_once_up_to_the_notice(year, db_url, clock):
    driver, c = year
    steps = [  # 7-31 is the phase-1 deadline (a Friday); levels at −3, 0, +5 and +10 working days
        (_at(2026, 7, 28, 23, 59), []),  # the end of 7-28 (3 working days before) is the reminder's instant
        (_at(2026, 7, 29, 0, 0, 1), ["【到期提醒】"]),
        (_at(2026, 8, 1, 0, 0, 1), ["【到期提醒】", "【阶段期限已到】"]),
        (_at(2026, 8, 8, 0, 0, 1), ["【到期提醒】", "【阶段期限已到】", "【督办】"]),
        (_at(2026, 8, 15, 0, 0, 1), ["【到期提醒】", "【阶段期限已到】", "【督办】", "【约谈、通报】"]),
    ]
    for when, reached in steps:
        clock.set(when)
        driver.tick()
        assert driver.tick() == 0  # nothing fires twice
        told = {title for _, title in _levels(driver, "B1")}
        assert told == set(reached), when
    [mobilize] = [t for t in c._box("sec_B1").todo if t.bpmn_id == "mobilize"]
    assert mobilize.escalation_level == 4
    # who heard of each level: the secretary throughout, the contact member from the deadline on, the
    # office from 督办 on; each once
    assert _levels(driver, "B1").count(("sec_B1", "【约谈、通报】")) == 1
    assert ("committee1", "【阶段期限已到】") in _levels(driver, "B1")
    assert ("office1", "【督办】") in _levels(driver, "B1") and ("office1", "【到期提醒】") not in _levels(
        driver, "B1"
    )
    with driver.factory()() as session:
        notices = [n for n in escalation.notices(session) if n.branch_code == "B1"]
    assert len(notices) == 1 and "“动员部署、制定方案”超过期限 10 个工作日仍未完成" in notices[0].text
    clock.set(_at(2026, 9, 30, 9, 0))
    driver.tick()
    assert (
        len(_levels(driver, "B1")) == 4 + 3 + 2
    )  # weeks later still: 4 to sec_B1, 3 to committee1, 2 to office1
    app = app_for(db_url, clock)
    for reader in ("office1", "leader1", "inspector1"):
        text = signed_in(app.test_client(), reader).get("/notices").get_data(as_text=True)
        assert "动员部署、制定方案" in text and "第B1党支部" in text
    assert signed_in(app.test_client(), "sec_B2").get("/notices").status_code == 403


def test_a_returned_step_says_why_keeps_its_entries_and_is_told_once(year, db_url, clock):
    driver, c = year
    plan = {
        "meeting_date": "2026-06-05",
        "attendees": 12,
        "plan": "标准化工作计划",
        "plan_items": [
            {"task": "规范三会一课", "measures": "建立台账", "deadline": "2026-12-31", "responsible": "书记"}
        ],
    }
    c.do("sec_B1", "mobilize", plan)
    c.do("office1", "review_plan", {"approved": True}, "B1")
    clock.set(_at(2026, 8, 3, 9, 0))  # past the phase-1 deadline: training is late when it comes back
    driver.tick()
    app = app_for(db_url, clock)
    client = signed_in(app.test_client(), "sec_B1")
    first = c.task("sec_B1", "training")
    page = client.get(f"/tasks/{first.id}").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    posted = {  # through the page, as the secretary does: forgets to list herself
        "csrf_token": token,
        "sessions.present": "1",
        "sessions.0.date": "2026-08-03",
        "sessions.0.topic": "学习标准化手册",
        "trained": "mem_B1\ngrp_B1\noff_B1",
    }
    response = client.post(f"/tasks/{first.id}", data=posted)
    again = c.task("sec_B1", "training")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tasks/{again.id}")
    text = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "未通过核对，已退回：培训尚未全覆盖（75%），未参训：sec_B1" in text  # not "已提交"
    assert "培训尚未全覆盖（75%），未参训：sec_B1" in text  # why, at the top
    assert "支部书记、支部委员、党小组长、党务干事全部参加" in text  # the instructions name who is checked
    assert ">mem_B1\ngrp_B1\noff_B1</textarea>" in text  # what was entered is kept
    assert again.due_at == datetime(2026, 8, 1, tzinfo=LOCAL_TZ)  # the same deadline as before
    with driver.factory()() as session:
        titles = [n.title for n in notify.inbox(session, "sec_B1") if n.kind == "escalation"]
    # the first training task was told its reminder and deadline; coming back it is told nothing again
    assert sorted(t.split("】")[0] + "】" for t in titles) == ["【到期提醒】", "【阶段期限已到】"]
    dossier = signed_in(app.test_client(), "office1").get("/branches/B1/dossier").get_data(as_text=True)
    assert (
        dossier.count(">开展培训、掌握标准</a>") == 1 and "（退回重办 1 次）" in dossier
    )  # one task, not two


def test_the_dashboard_shows_every_running_branch_where_it_stands(year, db_url, clock):
    driver, c = year
    app = app_for(db_url, clock)
    text = signed_in(app.test_client(), "office1").get("/dashboard").get_data(as_text=True)
    rows = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rows.count("1 组织发动") == 2 and "动员部署、制定方案" in rows and "—" not in rows


def test_the_office_reads_and_exports_every_branch_feedback(year, db_url, clock):
    driver, c = year
    with driver.factory()() as session:
        from workflows.programme import coordination

        coordination.record_feedback(
            session,
            {
                "year": 2026,
                "branch": "B1",
                "problems": ["台账过多"],
                "suggestions": ["合并表格", "简化流程"],
                "unfit": [{"item": "6.2", "reason": "规模太小"}],
            },
            None,
            clock.now(),
        )
        coordination.record_feedback(
            session,
            {"year": 2026, "branch": "B2", "problems": [], "suggestions": [], "unfit": [{"item": "6.2"}]},
            None,
            clock.now(),
        )
        session.commit()
    app = app_for(db_url, clock)
    response = signed_in(app.test_client(), "office1").get("/feedback/2026.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(BytesIO(response.data)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:3] == ["党支部编号", "党支部", "类别"]
    assert [row[:4] for row in values[1:]] == [
        ["B1", "第B1党支部", "问题", "台账过多"],
        ["B1", "第B1党支部", "建议", "合并表格"],
        ["B1", "第B1党支部", "建议", "简化流程"],
        ["B1", "第B1党支部", "不适用指标", "6.2"],
        ["B2", "第B2党支部", "不适用指标", "6.2"],
    ]
    assert values[4][5] == 2 and values[5][5] == 2  # two branches reported 6.2 unsuitable
    assert signed_in(app.test_client(), "sec_B1").get("/feedback/2026.xlsx").status_code == 403
