"""The 通报批评 page and a dossier's 通报 section in Debian's chromium, on a desktop and on a phone."""

from __future__ import annotations

from datetime import datetime

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_rectification_flow import PHONE, sign_in
from tests.support import ASSIGNED, FIXED, REGISTERED, Driver, seed_neighbours, seed_people
from workflows.engine import specs
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import make_engine, make_session_factory, transaction

ITEMS = [  # (branch, responsible, title, deadline)
    ("一支部", "zhangsan", "支委会记录不全", "2026-12-10"),
    ("二支部", "secretary2", "党费收缴不及时，连续两个月未按规定时间收缴并公示", "2026-12-11"),
    ("一支部", "zhangsan", "主题党日活动缺少佐证材料", "2027-01-15"),
]


def prepare(db_url: str, clock) -> None:
    """Three notices the real way: fixes left undone until the ladder's last level (one fixed later)."""
    factory = make_session_factory(make_engine(db_url))
    with transaction(factory) as session:
        specs.deploy_all(session, now=clock.now(), actor="t")
        seed_people(session, clock.now())
        seed_neighbours(session, clock.now())
    driver = Driver(db_url, clock, "straight")
    ids = []
    for branch, responsible, title, deadline in ITEMS:
        iid = driver.start({**REGISTERED, "branch": branch, "title": title}, actor="office1")
        ids.append(iid)
        secretary = "secretary1" if branch == "一支部" else "secretary2"
        task = driver.only_task(iid).id
        driver.complete(task, {**ASSIGNED, "responsible": responsible, "deadline": deadline}, actor=secretary)
    clock.set(datetime(2026, 12, 28, 9, 30, tzinfo=LOCAL_TZ))
    assert driver.tick() == 8  # the first two items' ladders, every level
    [fix] = [t for t in driver.open_tasks(ids[0]) if t.bpmn_id == "fix"]
    driver.complete(fix.id, FIXED, actor="zhangsan")  # fixed late: the notice stays
    clock.set(datetime(2027, 2, 1, 9, 30, tzinfo=LOCAL_TZ))
    assert driver.tick() == 4
    driver.close()


def test_office_reads_notices_on_a_desktop_and_a_phone(browser, live, shot):
    base, db_url, clock = live
    prepare(db_url, clock)

    office = sign_in(
        browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN"), base, "office1"
    )
    office.click("header nav a:text-is('通报')")
    office.wait_for_url(f"{base}/notices")
    rows = office.locator("table.notices tbody tr")
    assert rows.count() == 3 and "共 3 条通报" in office.content()
    assert "主题党日活动缺少佐证材料" in rows.first.inner_text()  # newest first
    assert "2027-02-01 09:30" in rows.first.inner_text()
    assert office.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(office, "notices-desktop")
    office.select_option("select[name=branch]", "一支部")
    office.click("form.filters button[type=submit]")
    office.wait_for_url("**/notices?branch=*")
    assert rows.count() == 2 and "符合条件的通报 2 条（共 3 条）" in office.content()
    office.fill("input[name=q]", "没有这样的事")
    office.click("form.filters button[type=submit]")
    office.wait_for_url("**q=*")
    assert rows.count() == 0 and "没有符合条件的通报批评" in office.content()
    shot(office, "notices-empty-filter")
    office.click("text=清除筛选")
    office.wait_for_url(f"{base}/notices")
    office.locator("table.notices a", has_text="第一党支部").first.click()  # the branch's dossier
    office.wait_for_url("**/dossier")
    assert "通报批评（2 条）" in office.locator("main").inner_text()
    office.screenshot(path=str(ARTIFACTS / "dossier-notices-desktop.png"))
    office.go_back()
    office.locator("table.notices a", has_text="支委会记录不全").click()
    office.wait_for_selector("#diagram[data-ready=true]")
    assert "通报批评" in office.locator("main").inner_text()  # the item's timeline has the notice

    phone = sign_in(browser.new_context(viewport=PHONE, locale="zh-CN"), base, "inspector1")
    phone.goto(f"{base}/notices")
    cards = phone.locator("table.notices tbody tr")
    assert cards.count() == 3
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    for index in range(cards.count()):
        box = cards.nth(index).bounding_box()
        assert box is not None and box["width"] <= PHONE["width"]
    for cell in ("td.step", "td.text"):  # each value says what it is
        label = cards.nth(1).locator(cell).evaluate("td => getComputedStyle(td, '::before').content")
        assert label.startswith('"') and cards.nth(1).locator(cell).get_attribute("data-label") in label
    shot(phone, "notices-phone")

    secretary = sign_in(browser.new_context(viewport=PHONE, locale="zh-CN"), base, "secretary1")
    assert secretary.locator("header nav a:text-is('通报')").count() == 0
    secretary.goto(f"{base}/branches/一支部/dossier")
    section = secretary.locator("table.notices tbody tr")
    assert section.count() == 2 and "党费收缴不及时" not in secretary.locator("table.notices").inner_text()
    assert secretary.evaluate("document.querySelector('table.notices').scrollWidth") <= PHONE["width"]
    secretary.screenshot(path=str(ARTIFACTS / "dossier-notices-phone.png"))  # the top: the 通报 section
    assert secretary.goto(f"{base}/notices").status == 403
