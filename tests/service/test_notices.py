"""通报批评: notices filed the real way (a fix left undone until the ladder's last level), then read on
the 通报 page by the company's readers, refused to everyone else, filtered, in a branch's dossier, and
printed by `zhibu notices`."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from tests.support import ASSIGNED, FIXED, REGISTERED, Company, Driver, seed_neighbours
from workflows.deadlines import escalation
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import transaction

from .test_app import app_for, signed_in

OTHER = {**REGISTERED, "branch": "二支部", "title": "党费收缴不及时", "description": "连续两月未按时收缴"}
FIRST_NOTICE = datetime(2026, 12, 25, 0, 0, 1, tzinfo=LOCAL_TZ)  # 12-10's ladder: +10 working days passed
SECOND_NOTICE = datetime(2027, 2, 1, 9, 30, tzinfo=LOCAL_TZ)  # 2027-01-15's ladder, past its last level
READERS = ("office1", "leader1", "inspector1")
REFUSED = ("secretary1", "secretary2", "zhangsan", "committee1")


@pytest.fixture
def world(db_url, deployed, clock):
    """Two notices: 一支部's item in 2026 (fixed and signed off afterwards), 二支部's in 2027 (still open)."""
    with transaction(deployed) as session:
        seed_neighbours(session, clock.now())
    driver = Driver(db_url, clock, "straight")
    c = Company(driver)
    first = driver.start(REGISTERED, actor="office1")
    c.do("secretary1", "assign", {**ASSIGNED, "deadline": "2026-12-10"})
    second = driver.start(OTHER, actor="office1")
    c.do("secretary2", "assign", {**ASSIGNED, "responsible": "secretary2", "deadline": "2027-01-15"})
    clock.set(FIRST_NOTICE)
    assert driver.tick() == 4 and driver.tick() == 0  # every level of 一支部's ladder, once
    c.do("zhangsan", "fix", FIXED)
    c.do("office1", "signoff", {"approved": True})
    clock.set(SECOND_NOTICE)
    assert driver.tick() == 4 and driver.tick() == 0
    driver.close()
    return app_for(db_url, clock), first, second


def page(app, username: str, url: str):
    return signed_in(app.test_client(), username).get(url)


def rows(text: str) -> list[str]:
    """The notices' rows of a page, in order."""
    if '<table class="grid notices">' not in text:
        return []
    body = text.split('<table class="grid notices">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>\s*<td class=\"when\".*?</tr>", body, re.S)


def test_the_ladder_files_one_notice_per_late_item(world, db_url):
    app, first, second = world
    with app.extensions["zhibu.sessions"]() as session:
        lines = escalation.notice_lines(session)
    assert [(x.notice.instance_id, x.notice.branch_code) for x in lines] == [
        (second, "二支部"),
        (first, "一支部"),
    ]
    assert [x.notice.created_at for x in lines] == [SECOND_NOTICE, FIRST_NOTICE]
    assert [(x.branch_name, x.process_id, x.step, x.task_status) for x in lines] == [
        ("第二党支部", "rectification", "整改落实", "open"),
        ("第一党支部", "rectification", "整改落实", "completed"),
    ]


@pytest.mark.parametrize("username", READERS)
def test_company_readers_read_every_notice_newest_first(world, username):
    app, first, second = world
    response = page(app, username, "/notices")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<title>通报批评 · " in text and "共 2 条通报" in text
    assert 'href="/notices">通报</a>' in text  # in the navigation
    newest, oldest = rows(text)
    assert "2027-02-01 09:30" in newest and "党费收缴不及时" in newest
    assert '第二党支部</a><span class="sub code">二支部</span>' in newest  # name, then code
    assert f'href="/instances/{second}"' in newest
    assert "问题整改 · 编号" in newest and "仍未办结" in newest
    assert "2026-12-25 00:00" in oldest and "支委会记录不全" in oldest  # Beijing time, as the ledger shows
    assert '第一党支部</a><span class="sub code">一支部</span>' in oldest
    assert f'href="/instances/{first}"' in oldest
    assert "整改落实" in oldest and "已办结" in oldest
    with app.extensions["zhibu.sessions"]() as session:  # the text as filed (its wording is the ladder's)
        texts = [n.text for n in escalation.notices(session)]
    assert texts[0] in newest and texts[1] in oldest and "通报批评" in texts[1]
    assert texts[1].startswith("“支委会记录不全”")
    # The link leads to the item's own page: its diagram and timeline, the notice on it.
    item = signed_in(app.test_client(), username).get(f"/instances/{first}").get_data(as_text=True)
    assert "时间线" in item and "通报批评" in item


@pytest.mark.parametrize("username", REFUSED)
def test_everyone_else_is_refused_and_has_no_link(world, username):
    app, _, _ = world
    client = signed_in(app.test_client(), username)
    refused = client.get("/notices")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 403
    assert "党费收缴不及时" not in text and "支委会记录不全" not in text
    assert "本支部的通报见本支部工作档案" in text
    assert 'href="/notices"' not in client.get("/inbox").get_data(as_text=True)
    assert app.test_client().get("/notices").status_code == 302  # signed out: to the sign-in page


def test_filters_by_branch_year_and_words(world):
    app, _, _ = world
    client = signed_in(app.test_client(), "office1")

    def shown(url: str) -> tuple[list[str], str]:
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.get_data(as_text=True)
        return [t for t in ("党费收缴不及时", "支委会记录不全") if any(t in r for r in rows(text))], text

    found, text = shown("/notices?branch=一支部")
    assert found == ["支委会记录不全"] and "符合条件的通报 1 条（共 2 条）" in text
    assert '<option value="一支部" selected>一支部 第一党支部</option>' in text
    assert shown("/notices?year=2027")[0] == ["党费收缴不及时"]
    assert shown("/notices?year=2026")[0] == ["支委会记录不全"]
    assert '<option value="2026" selected>2026 年</option>' in shown("/notices?year=2026")[1]
    assert shown("/notices?q=党费")[0] == ["党费收缴不及时"]
    assert shown("/notices?q=通报批评")[0] == ["党费收缴不及时", "支委会记录不全"]  # words of the text too
    assert shown("/notices?branch=二支部&year=2026")[0] == []
    found, text = shown("/notices?q=100%25")  # LIKE's wildcards are plain characters
    assert found == [] and "没有符合条件的通报批评" in text and "符合条件的通报 0 条（共 2 条）" in text
    assert "清除筛选" in text
    missing = client.get("/notices?branch=九支部")
    assert missing.status_code == 404 and "党支部 九支部 不存在" in missing.get_data(as_text=True)
    assert client.get("/notices?year=next").status_code == 400
    assert client.get("/notices?year=1999").status_code == 400


def test_no_notices_yet_says_so(db_url, deployed, clock):
    app = app_for(db_url, clock)
    text = page(app, "office1", "/notices").get_data(as_text=True)
    assert "共 0 条通报" in text and "目前没有通报批评" in text and 'class="grid notices"' not in text
    dossier = page(app, "secretary1", "/branches/一支部/dossier").get_data(as_text=True)
    assert "通报批评（0 条）" in dossier and "无：本支部没有被通报批评。" in dossier


def test_a_branch_dossier_lists_its_own_notices(world):
    app, first, _ = world
    for username in ("secretary1", "zhangsan", "committee1", "office1", "inspector1"):
        response = page(app, username, "/branches/一支部/dossier")
        text = response.get_data(as_text=True)
        assert response.status_code == 200, username
        section = text.split('<h2 id="notices">', 1)[1].split("<h2>", 1)[0]
        assert "通报批评（1 条）" in section and "支委会记录不全" in section
        assert f'href="/instances/{first}"' in section and "整改落实" in section
        assert "党费收缴不及时" not in section  # another branch's notice is not in this dossier
        assert '通报批评 <span class="badge late">1</span> 次' in text
    other = page(app, "secretary2", "/branches/二支部/dossier").get_data(as_text=True)
    assert "党费收缴不及时" in other and "支委会记录不全" not in other
    assert page(app, "secretary2", "/branches/一支部/dossier").status_code == 403  # not their branch


def test_the_notices_command(cli):
    iid = int(cli("start", "rectification", "--data", json.dumps(REGISTERED)).output)
    [assign] = json.loads(cli("tasks", "--json", "--instance", str(iid)).output)
    deadline = {**ASSIGNED, "deadline": "2026-12-10"}
    assert (
        cli("complete", assign["id"], "--data", json.dumps(deadline), "--actor", "secretary1").exit_code == 0
    )
    assert cli("notices").output == "没有通报批评\n"
    assert cli("tick", now="2026-12-25T00:00:01").output.strip() == "4"
    listing = cli("notices")
    lines = listing.output.splitlines()
    assert listing.exit_code == 0
    assert lines[0].split("\t") == ["编号", "通报时间", "党支部", "流程实例", "逾期环节", "事项", "通报内容"]
    assert lines[1].split("\t")[1:6] == [
        "2026-12-25 00:00",
        "一支部 第一党支部",
        str(iid),
        "整改落实",
        "支委会记录不全",
    ]
    assert "通报批评" in lines[1].split("\t")[6] and lines[2] == "共 1 条"
    assert cli("notices", "--branch", "一支部", "--year", "2026").output == listing.output
    assert cli("notices", "--year", "2027").output == "没有符合条件的通报批评\n"
    [notice] = json.loads(cli("notices", "--json").output)
    assert notice == {
        "id": notice["id"],
        "branch": "一支部",
        "branch_name": "第一党支部",
        "instance_id": iid,
        "task": "fix",
        "step": "整改落实",
        "subject": "支委会记录不全",
        "text": lines[1].split("\t")[6],  # the notice's own text, as the listing printed it
        "created_at": "2026-12-24T16:00:01+00:00",
    }
    assert datetime.fromisoformat(notice["created_at"]) == datetime(2026, 12, 25, 0, 0, 1, tzinfo=LOCAL_TZ)
    assert json.loads(cli("notices", "--json", "--year", "2027").output) == []
    unknown = cli("notices", "--branch", "九支部")
    assert unknown.exit_code == 1 and "党支部 九支部 不存在" in unknown.output
    assert cli("notices", "--year", "26").exit_code == 2
