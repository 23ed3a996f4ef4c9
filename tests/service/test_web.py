"""Pages: sign-in limits, CSRF, the inbox, and a task form that comes back with messages by each field."""

from __future__ import annotations

import re

from tests.service.conftest import dump
from tests.support import REGISTERED, Driver

from .test_app import app_for, signed_in


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_sign_in_out_and_rate_limit(db_url, deployed, clock):
    client = app_for(db_url, clock).test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    wrong = client.post("/login", data={"username": "office1", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.get_data(as_text=True)
    for _ in range(4):
        client.post("/login", data={"username": "office1", "password": "nope", "csrf_token": token})
    limited = client.post(
        "/login", data={"username": "office1", "password": "Zhibu-test-2026", "csrf_token": token}
    )
    assert limited.status_code == 429  # five tries a minute per address and username
    other = client.post(
        "/login", data={"username": "secretary1", "password": "Zhibu-test-2026", "csrf_token": token}
    )
    assert other.status_code == 302
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"
    page = client.get("/inbox").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert client.get("/inbox").status_code == 302


def test_csrf_is_required_on_forms_but_not_for_the_api(db_url, deployed, clock, assign_task):
    client = app_for(db_url, clock).test_client()
    assert (
        client.post("/login", data={"username": "secretary1", "password": "Zhibu-test-2026"}).status_code
        == 400
    )
    signed_in(client, "secretary1")
    before = dump(db_url)
    data = {"responsible": "zhangsan", "measures": "补齐", "deadline": "2026-11-30"}
    refused = client.post(f"/tasks/{assign_task}", data=data)
    assert refused.status_code == 400 and "安全校验" in refused.get_data(as_text=True)
    assert dump(db_url) == before
    token = client.post(
        "/api/v1/auth/token", json={"username": "secretary1", "password": "Zhibu-test-2026"}
    ).get_json()
    answer = client.post(
        f"/api/v1/tasks/{assign_task}/complete",
        json={"data": data},
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    assert answer.status_code == 200


def test_form_errors_come_back_by_the_field_with_the_data_kept(db_url, deployed, clock, assign_task):
    client = signed_in(app_for(db_url, clock).test_client(), "secretary1")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "明确责任" in inbox and "支委会记录不全" in inbox and '<span class="count">1</span>' in inbox
    page = client.get(f"/tasks/{assign_task}").get_data(as_text=True)
    assert "指定整改责任人" in page  # the step's instructions
    posted = {
        "csrf_token": csrf_of(page),
        "responsible": "secretary2",
        "measures": "补齐会议记录",
        "deadline": "",
    }
    before = dump(db_url)
    again = client.post(f"/tasks/{assign_task}", data=posted)
    text = again.get_data(as_text=True)
    assert again.status_code == 400 and dump(db_url) == before
    assert '<option value="secretary2" selected>' in text  # what was chosen is kept, even if refused
    assert "补齐会议记录" in text
    assert "请填写“整改时限”" in text and "用户“secretary2”不存在" in text
    posted.update(responsible="zhangsan", deadline="2026-11-30", csrf_token=csrf_of(text))
    done = client.post(f"/tasks/{assign_task}", data=posted)
    assert done.status_code == 302
    assert "已提交：明确责任" in client.get("/inbox").get_data(as_text=True)
    assert "明确责任" in client.get("/inbox?view=done").get_data(as_text=True)
    assert client.post(f"/tasks/{assign_task}", data=posted).status_code == 409


def test_trail_filters_by_process(db_url, deployed, clock, assign_task):
    client = signed_in(app_for(db_url, clock).test_client(), "office1")
    rectification = client.get("/trail?process=rectification").get_data(as_text=True)
    assert "发起流程" in rectification and "哈希链校验通过" in rectification
    assert "发起流程" not in client.get("/trail?process=programme").get_data(as_text=True)
    assert client.get("/trail?since=yesterday").status_code == 400
    export = client.get("/trail.csv?process=rectification")
    assert (
        export.data.decode("utf-8").startswith("\ufeff序号,时间,操作人,事件")
        and "发起流程" in export.data.decode()
    )


def test_bell_counts_unread_notifications(db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED, actor="office1")
    driver.complete(
        driver.only_task(iid).id, {"responsible": "zhangsan", "measures": "补齐", "deadline": "2026-11-26"}
    )
    driver.close()  # assigned, and the reminder level was already past: zhangsan has been told twice
    client = signed_in(app_for(db_url, clock).test_client(), "zhangsan")
    page = client.get("/notifications").get_data(as_text=True)
    assert 'class="badge level">2</span>' in page and "【到期提醒】支委会记录不全" in page
    assert "【整改任务】支委会记录不全" in page
    client.post("/notifications/read", data={"csrf_token": csrf_of(page)})
    page = client.get("/notifications").get_data(as_text=True)
    assert 'class="badge level">' not in page and "未读" not in page


def test_trail_and_ledger_page_through_long_lists(db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    for n in range(205):
        driver.start({**REGISTERED, "title": f"问题{n}"}, actor="office1")
    driver.close()
    client = signed_in(app_for(db_url, clock).test_client(), "office1")
    first = client.get("/trail?process=rectification").get_data(as_text=True)
    assert first.count("发起流程") == 200 and "下一页" in first and "上一页" not in first
    second = client.get("/trail?process=rectification&page=2").get_data(as_text=True)
    assert second.count("发起流程") == 5 and "上一页" in second and "下一页" not in second
    ledger = client.get("/ledger?page=2").get_data(as_text=True)
    assert "本页 5 条" in ledger and "问题0<" in ledger  # newest first: the oldest items are on page 2
