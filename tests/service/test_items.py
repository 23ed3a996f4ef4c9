"""A rectification item through every step as its people see it: the ledger right after each step, and
the signer's page showing every fix round with its evidence."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from tests.service.conftest import dump
from tests.support import seed_neighbours
from workflows.deadlines import notify
from workflows.engine.db import transaction
from workflows.engine.models import ProcessInstance
from workflows.programme import items

from .test_app import app_for, signed_in
from .test_evidence import PDF, upload
from .test_web import csrf_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PASSWORD = "Zhibu-test-2026"


@pytest.fixture
def site(db_url, deployed, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("ZHIBU_EVIDENCE_DIR", str(tmp_path / "store"))
    with transaction(deployed) as session:
        seed_neighbours(session, clock.now())
    return app_for(db_url, clock)


def _api(app, username):
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD}).get_json()
    return client, {"Authorization": f"Bearer {token['token']}"}


def _ledger(app, iid) -> tuple[str, str | None]:
    client, bearer = _api(app, "office1")
    [row] = [
        r for r in client.get("/api/v1/rectifications", headers=bearer).get_json()["items"] if r["id"] == iid
    ]
    return row["status"], row["supervision"]


def _open(app, username, bpmn_id) -> str:
    client, bearer = _api(app, username)
    [task] = [
        t for t in client.get("/api/v1/tasks", headers=bearer).get_json()["items"] if t["bpmn_id"] == bpmn_id
    ]
    return task["id"]


def _submit(client, task_id, form):
    token = csrf_of(client.get(f"/tasks/{task_id}").get_data(as_text=True))
    return client.post(f"/tasks/{task_id}", data={"csrf_token": token, **form})


def test_an_item_from_registration_to_sign_off(site, deployed):
    office, bearer = _api(site, "office1")
    problem = {"source": "督查抽查", "branch": "一支部", "title": "公开栏未更新", "description": "半年未更新"}
    iid = office.post("/api/v1/rectifications", json=problem, headers=bearer).get_json()["id"]
    assert _ledger(site, iid) == ("待分派", None)

    secretary = signed_in(site.test_client(), "secretary1")
    page = secretary.get(f"/tasks/{_open(site, 'secretary1', 'assign')}").get_data(as_text=True)
    assert "公开栏未更新" in page and "半年未更新" in page and "督查抽查" in page  # the problem, on 明确责任
    assert '<select id="f-responsible" name="responsible"' in page  # a person is chosen, not typed
    assert re.search(r'<option value="zhangsan" *>[^<]*（[^<]*）</option>', page)
    assign = {"responsible": "zhangsan", "measures": "每月更新公开栏", "deadline": "2026-12-10"}
    assert _submit(secretary, _open(site, "secretary1", "assign"), assign).status_code == 302
    assert _ledger(site, iid) == ("整改中", None)

    member = signed_in(site.test_client(), "zhangsan")
    fix_id = _open(site, "zhangsan", "fix")
    page = member.get(f"/tasks/{fix_id}").get_data(as_text=True)
    assert "每月更新公开栏" in page and "2026-12-10 当天24时前" in page  # the measures, on 整改落实
    # The ladder of that deadline, with why each reminder falls when it does (working days).
    assert "到期提醒：2026-12-07 24时前（截止日前 3 个工作日（节假日、周末不计））" in page
    assert "督办：2026-12-17 24时前（截止日后 5 个工作日" in page
    upload(member, fix_id, [("公开栏照片.png", PNG), ("更新记录.pdf", PDF)])
    assert (
        _submit(
            member, fix_id, {"done": "已更新公开栏并建立月度检查", "evidence": "公开栏照片（现场）"}
        ).status_code
        == 302
    )
    assert _ledger(site, iid) == ("待验收", None)

    signer = signed_in(site.test_client(), "office1")
    signoff_id = _open(site, "office1", "signoff")
    page = signer.get(f"/tasks/{signoff_id}").get_data(as_text=True)
    latest = page.split("第 1 次整改", 1)[1]
    assert "已更新公开栏并建立月度检查" in latest and "待您验收" in page
    assert '<img src="/files/' in latest and "公开栏照片.png" in latest and "更新记录.pdf" in latest
    assert page.index("第 1 次整改") < page.index('name="approved"')  # the fix above the decision
    image = int(re.search(r'<img src="/files/(\d+)\?inline=1"', page).group(1))
    shown = signer.get(f"/files/{image}?inline=1")
    assert shown.status_code == 200 and "attachment" not in shown.headers["Content-Disposition"]
    reject = {"approved": "false", "comment": "照片不清晰", "deadline": "2026-12-18"}
    assert _submit(signer, signoff_id, reject).status_code == 302
    assert _ledger(site, iid) == ("整改中", None)

    fix_id = _open(site, "zhangsan", "fix")
    page = member.get(f"/tasks/{fix_id}").get_data(as_text=True)
    assert "照片不清晰" in page and "2026-12-18" in page  # the rejection and the new deadline, on the fix
    upload(member, fix_id, [("公开栏照片-清晰.png", PNG)])
    assert _submit(member, fix_id, {"done": "重新拍摄"}).status_code == 302

    signoff_id = _open(site, "office1", "signoff")
    page = signer.get(f"/tasks/{signoff_id}").get_data(as_text=True)
    for text in (
        "第 2 次整改",
        "重新拍摄",
        "公开栏照片-清晰.png",
        "第 1 次整改",
        "公开栏照片.png",
        "更新记录.pdf",
    ):
        assert text in page, text
    assert page.count('<img src="/files/') == 2
    assert _submit(signer, signoff_id, {"approved": "true", "comment": "合格"}).status_code == 302
    assert _ledger(site, iid) == ("已销号", None)
    with deployed() as session:
        assert session.get(ProcessInstance, iid).status == "completed"
        whole = items.item(session, iid)
    assert [r.verdict.approved for r in whole.rounds] == [False, True]
    assert [len(r.files) for r in whole.rounds] == [2, 1] and whole.deadline == "2026-12-18"
    assert whole.next_steps == []
    with deployed() as session:
        told = {
            u: [(n.title, n.body) for n in notify.inbox(session, u) if n.kind == "rectification"]
            for u in ("zhangsan", "secretary1")
        }
    assert [title for title, _ in reversed(told["zhangsan"])] == [
        "【整改任务】公开栏未更新",
        "【整改退回】公开栏未更新",
        "【已销号】公开栏未更新",
    ]
    rejected = told["zhangsan"][1][1]
    assert "照片不清晰" in rejected and "2026-12-18 当天24时前" in rejected
    assert [title for title, _ in told["secretary1"]] == ["【已销号】公开栏未更新"]


def test_the_api_mirrors_the_inbox_tabs_and_never_offers_what_one_cannot_complete(site, deployed):
    office, bearer = _api(site, "office1")
    problem = {"source": "自查", "branch": "一支部", "title": "台账缺页", "description": "缺两页"}
    iid = office.post("/api/v1/rectifications", json=problem, headers=bearer).get_json()["id"]
    for username in (
        "secretary1",
        "office1",
        "secretary2",
        "committee1",
        "inspector1",
        "leader1",
        "zhangsan",
    ):
        client, mine = _api(site, username)
        todo = client.get("/api/v1/tasks?view=todo", headers=mine).get_json()
        assert all(t["can_complete"] for t in todo["items"]), username
        watch = client.get("/api/v1/tasks?view=watch", headers=mine).get_json()
        assert not any(t["can_complete"] for t in watch["items"]), username
        for task in todo["items"]:
            detail = client.get(f"/api/v1/tasks/{task['id']}", headers=mine).get_json()
            assert detail["can_complete"] is True
        listed = client.get("/api/v1/tasks", headers=mine).get_json()["items"]
        assert {t["id"] for t in listed if t["can_complete"]} == {t["id"] for t in todo["items"]}, username
    secretary, mine = _api(site, "secretary1")
    [assign] = secretary.get("/api/v1/tasks?view=todo", headers=mine).get_json()["items"]
    assert assign["bpmn_id"] == "assign" and assign["instance_id"] == iid
    data = {"responsible": "zhangsan", "measures": "补页", "deadline": "2026-12-10"}
    secretary.post(f"/api/v1/tasks/{assign['id']}/complete", json={"data": data}, headers=mine)
    done = secretary.get("/api/v1/tasks?view=done", headers=mine).get_json()
    assert [t["bpmn_id"] for t in done["items"]] == ["assign"] and not done["items"][0]["can_complete"]
    assert secretary.get("/api/v1/tasks?view=all", headers=mine).status_code == 400


def test_the_whole_item_by_the_api(site, deployed):
    office, bearer = _api(site, "office1")
    problem = {"source": "自查", "branch": "一支部", "title": "台账缺页", "description": "缺两页"}
    iid = office.post("/api/v1/rectifications", json=problem, headers=bearer).get_json()["id"]
    whole = office.get(f"/api/v1/rectifications/{iid}", headers=bearer).get_json()
    assert whole["problem"]["title"] == "台账缺页" and whole["status"] == "待分派" and whole["rounds"] == []
    assert [s["title"] for s in whole["next_steps"]] == ["明确责任"] and whole["registered_by"] == "office1"
    other, theirs = _api(site, "secretary2")
    assert other.get(f"/api/v1/rectifications/{iid}", headers=theirs).status_code == 403
    assert office.get("/api/v1/rectifications/999999", headers=bearer).status_code == 404


def test_read_only_people_write_nothing(site, db_url, deployed):
    office, bearer = _api(site, "office1")
    problem = {"source": "自查", "branch": "一支部", "title": "台账缺页", "description": "缺两页"}
    iid = office.post("/api/v1/rectifications", json=problem, headers=bearer).get_json()["id"]
    task_id = _open(site, "secretary1", "assign")
    for username in ("inspector1", "leader1"):
        reader = signed_in(site.test_client(), username)
        page = reader.get(f"/tasks/{task_id}").get_data(as_text=True)
        assert "发表意见" not in page, username
        before = dump(db_url)
        token = csrf_of(page)
        refused = reader.post(f"/tasks/{task_id}/comments", data={"csrf_token": token, "text": "看过了"})
        assert refused.status_code == 403, username
        assert dump(db_url) == before
    secretary = signed_in(site.test_client(), "secretary1")
    page = secretary.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "发表意见" in page and iid


def test_registering_a_problem_from_the_web(site, db_url, deployed):
    problem = {"source": "督查抽查", "title": "学习记录不全", "description": "10月缺记录"}
    secretary = signed_in(site.test_client(), "secretary1")
    page = secretary.get("/ledger/new").get_data(as_text=True)
    assert 'value="一支部"' in page  # a secretary registers for their own branch
    token = csrf_of(page)
    missing = secretary.post("/ledger/new", data={"csrf_token": token, "branch": "一支部", "source": "自查"})
    assert missing.status_code == 400 and "请填写“问题标题”" in missing.get_data(as_text=True)
    done = secretary.post("/ledger/new", data={"csrf_token": token, "branch": "一支部", **problem})
    assert done.status_code == 302
    other = secretary.post("/ledger/new", data={"csrf_token": token, "branch": "二支部", **problem})
    assert other.status_code == 403
    for username in ("office1", "inspector1"):
        client = signed_in(site.test_client(), username)
        token = csrf_of(client.get("/ledger/new").get_data(as_text=True))
        assert (
            client.post("/ledger/new", data={"csrf_token": token, "branch": "二支部", **problem}).status_code
            == 302
        )
    member = signed_in(site.test_client(), "zhangsan")
    assert member.get("/ledger/new").status_code == 403
    assert "登记问题" not in member.get("/ledger").get_data(as_text=True)
    client, bearer = _api(site, "office1")
    titles = [r["title"] for r in client.get("/api/v1/rectifications", headers=bearer).get_json()["items"]]
    assert titles.count("学习记录不全") == 3


def test_evidence_goes_with_the_form_and_typing_is_never_lost(site, deployed):
    iid = _registered_and_assigned(site)
    member = signed_in(site.test_client(), "zhangsan")
    fix_id = _open(site, "zhangsan", "fix")
    page = member.get(f"/tasks/{fix_id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="files"' in page
    token = csrf_of(page)

    def send(form, files):
        data = {"csrf_token": token, **form, "files": [(io.BytesIO(c), n) for n, c in files]}
        return member.post(f"/tasks/{fix_id}", data=data, content_type="multipart/form-data")

    missing = send({"evidence": "照片（现场）"}, [("照片.png", PNG)])  # 整改情况 left out
    shown = missing.get_data(as_text=True)
    assert missing.status_code == 400 and "照片（现场）" in shown and "重新选择文件" in shown
    bad = send({"done": "已补页"}, [("setup.exe", b"MZ")])
    shown = bad.get_data(as_text=True)
    assert bad.status_code == 400 and "不支持的文件类型" in shown and "已补页" in shown
    with deployed() as session:
        assert items.item(session, iid).rounds == []  # nothing of the refused submits was kept
    assert send({"done": "已补页"}, [("照片.png", PNG), ("记录.pdf", PDF)]).status_code == 302
    with deployed() as session:
        [round_one] = items.item(session, iid).rounds
    assert round_one.done == "已补页" and [f.name for f in round_one.files] == ["照片.png", "记录.pdf"]


def _registered_and_assigned(site) -> int:
    """An item of 一支部 registered by the office and assigned to zhangsan, due 2026-12-10; its id."""
    office, bearer = _api(site, "office1")
    problem = {"source": "自查", "branch": "一支部", "title": "台账缺页", "description": "缺两页"}
    iid = office.post("/api/v1/rectifications", json=problem, headers=bearer).get_json()["id"]
    secretary = signed_in(site.test_client(), "secretary1")
    assign = {"responsible": "zhangsan", "measures": "逐页补齐", "deadline": "2026-12-10"}
    assert _submit(secretary, _open(site, "secretary1", "assign"), assign).status_code == 302
    return iid


def test_the_three_lists_are_views_of_the_ledger(site, deployed):
    _registered_and_assigned(site)
    reader = signed_in(site.test_client(), "office1")
    expected = {
        "problems": (["问题来源", "问题描述", "对应标准条目"], "缺两页"),
        "responsibilities": (["整改责任人", "整改措施", "整改时限"], "逐页补齐"),
        "fixes": (["整改时限", "是否逾期", "退回次数", "销号时间"], "2026-12-10 24时前"),
    }
    for name, (headers, cell) in expected.items():
        page = reader.get(f"/ledger?list={name}").get_data(as_text=True)
        assert all(f"<th>{h}</th>" in page for h in headers) and cell in page, name
        sheet = load_workbook(io.BytesIO(reader.get(f"/ledger.xlsx?list={name}").data)).active
        header_row = [c.value for c in sheet[1]]
        assert all(h in header_row for h in headers) and sheet.max_row == 2, name
        printed = reader.get(f"/ledger/print?list={name}").get_data(as_text=True)
        assert "size: A4 landscape" in printed and cell in printed, name
    assert reader.get("/ledger?list=everything").status_code == 404


def test_the_trail_speaks_chinese(site, deployed):
    _registered_and_assigned(site)
    reader = signed_in(site.test_client(), "inspector1")
    page = reader.get("/trail?process=rectification").get_data(as_text=True)
    body = page[page.find("<tbody>") :]
    assert "<td>明确责任</td>" in body
    assert "整改责任人：zhangsan；整改措施：逐页补齐；整改时限：2026-12-10" in body
    assert "问题标题：台账缺页" in page and "起 <input" in page
    sheet = load_workbook(io.BytesIO(reader.get("/trail.xlsx?process=rectification").data)).active
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)]
    [done] = [r for r in rows if r["任务"] == "assign"]
    assert done["步骤"] == "明确责任" and done["内容"].startswith("整改责任人：zhangsan")
    assert '"responsible":"zhangsan"' in done["原始数据"]  # the machine column keeps the JSON


def test_the_inbox_puts_overdue_first_then_undated_then_the_nearest_deadline(site, deployed, clock):
    company = {"source": "自查", "title": "公司层面问题", "description": "d"}  # no branch: the office assigns
    office, bearer = _api(site, "office1")
    ids = [
        office.post(
            "/api/v1/rectifications", json={**company, "title": f"问题{n}"}, headers=bearer
        ).get_json()["id"]
        for n in range(3)
    ]
    todo = office.get("/api/v1/tasks?view=todo", headers=bearer).get_json()["items"]
    assign = {t["instance_id"]: t["id"] for t in todo if t["bpmn_id"] == "assign"}
    for iid, deadline in ((ids[0], "2026-12-10"), (ids[1], "2026-11-25")):
        data = {"responsible": "office1", "measures": "m", "deadline": deadline}
        assert (
            office.post(
                f"/api/v1/tasks/{assign[iid]}/complete", json={"data": data}, headers=bearer
            ).status_code
            == 200
        )
    clock.advance(days=2)  # 2026-11-26: 问题1's deadline has passed
    office, bearer = _api(site, "office1")  # the token of two days ago has expired
    order = [
        (t["bpmn_id"], t["subject"])
        for t in office.get("/api/v1/tasks?view=todo", headers=bearer).get_json()["items"]
    ]
    assert order == [("fix", "问题1"), ("assign", "问题2"), ("fix", "问题0")]
    reader = signed_in(site.test_client(), "office1")
    ledger_page = reader.get("/ledger?list=fixes").get_data(as_text=True)
    assert (
        "<th>下一步</th>" in ledger_page
        and "整改落实（office1）" in ledger_page
        and "明确责任（党委工作室）" in ledger_page
    )
    process = reader.get(f"/instances/{ids[2]}").get_data(as_text=True)
    assert "下一步：明确责任（党委工作室）" in process


def test_a_rejection_needs_a_new_deadline_and_an_approval_none(site, deployed, clock):
    iid = _registered_and_assigned(site)
    office, bearer = _api(site, "office1")
    secretary = signed_in(site.test_client(), "secretary1")
    member = signed_in(site.test_client(), "zhangsan")
    assert (
        _submit(member, _open(site, "zhangsan", "fix"), {"done": "已补页", "evidence": "照片"}).status_code
        == 302
    )
    signoff_id = _open(site, "office1", "signoff")
    signer = signed_in(site.test_client(), "office1")
    page = signer.get(f"/tasks/{signoff_id}").get_data(as_text=True)
    assert 'name="deadline" value=""' in page  # the new deadline is chosen, never the old one kept
    url = f"/api/v1/tasks/{signoff_id}/complete"
    same = {"approved": False, "comment": "再补", "deadline": "2026-12-10"}
    answer = office.post(url, json={"data": same}, headers=bearer)
    assert answer.status_code == 400 and "须与原来的" in answer.get_json()["errors"]["deadline"]
    approved_with_date = {"approved": True, "deadline": "2027-03-01"}
    answer = office.post(url, json={"data": approved_with_date}, headers=bearer)
    assert answer.status_code == 400 and answer.get_json()["errors"] == {"deadline": "此情况下不应填写这一项"}
    assert office.post(url, json={"data": {"approved": True}}, headers=bearer).status_code == 200
    whole = office.get(f"/api/v1/rectifications/{iid}", headers=bearer).get_json()
    assert whole["status"] == "已销号" and whole["deadline"] == "2026-12-10"
    # A finished task shows its deadline as it was, even once that date has passed.
    clock.advance(days=20)
    secretary = signed_in(site.test_client(), "secretary1")
    done_page = secretary.get(f"/tasks/{_done(site, 'secretary1', 'assign')}").get_data(as_text=True)
    assert 'value="2026-12-10"' in done_page


def _done(app, username, bpmn_id) -> str:
    client, bearer = _api(app, username)
    [task] = [
        t
        for t in client.get("/api/v1/tasks?view=done", headers=bearer).get_json()["items"]
        if t["bpmn_id"] == bpmn_id
    ]
    return task["id"]


def test_the_task_listing_pages_with_a_true_total(site, deployed):
    office, bearer = _api(site, "office1")
    for n in range(3):
        problem = {"source": "自查", "branch": "一支部", "title": f"问题{n}", "description": "d"}
        office.post("/api/v1/rectifications", json=problem, headers=bearer)
    first = office.get("/api/v1/tasks?limit=2", headers=bearer).get_json()
    rest = office.get("/api/v1/tasks?limit=2&offset=2", headers=bearer).get_json()
    assert (len(first["items"]), first["total"], len(rest["items"]), rest["total"]) == (2, 3, 1, 3)
    assert {t["id"] for t in first["items"]}.isdisjoint(t["id"] for t in rest["items"])
