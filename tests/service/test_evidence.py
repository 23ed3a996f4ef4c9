"""Evidence files: allowed types and size only, stored by content hash, readable by who may see the task."""

from __future__ import annotations

import hashlib
import io
import re

import pytest

from tests.support import ASSIGNED, REGISTERED, Driver, seed_neighbours
from workflows.engine.db import transaction

from .test_app import app_for, signed_in

PDF = b"%PDF-1.4\n% evidence\n"


@pytest.fixture
def fix_task(db_url, deployed, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("ZHIBU_EVIDENCE_DIR", str(tmp_path / "store"))
    with transaction(deployed) as session:
        seed_neighbours(session, clock.now())
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED, actor="office1")
    driver.complete(driver.only_task(iid).id, ASSIGNED, actor="secretary1")
    task_id = driver.only_task(iid).id
    driver.close()
    return task_id, tmp_path / "store"


def upload(client, task_id, files):
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    token = re.search(r'csrf_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post(
        f"/tasks/{task_id}/files", data=data, content_type="multipart/form-data", follow_redirects=True
    )


def test_upload_store_download_and_complete(db_url, clock, fix_task):
    task_id, store = fix_task
    app = app_for(db_url, clock)
    member = signed_in(app.test_client(), "zhangsan")
    page = upload(member, task_id, [("../../etc/支委会记录.pdf", PDF)]).get_data(as_text=True)
    assert "已上传 1 个文件" in page and "支委会记录.pdf" in page
    digest = hashlib.sha256(PDF).hexdigest()
    assert (store / digest[:2] / digest).read_bytes() == PDF
    assert not list(store.rglob("*.pdf"))  # the user's name never becomes a path
    file_id = int(re.search(r'/files/(\d+)"', page).group(1))
    got = member.get(f"/files/{file_id}")
    assert got.status_code == 200 and got.data == PDF and got.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in got.headers["Content-Disposition"]
    for name, content, message in (
        ("setup.exe", b"MZ\x90", "不支持的文件类型"),
        ("report.pdf", b"MZ\x90 not a pdf", "内容与扩展名 .pdf 不符"),
        ("big.pdf", b"%PDF" + b"0" * (10 * 1024 * 1024), "超过 10 MB"),
    ):
        assert message in upload(member, task_id, [(name, content)]).get_data(as_text=True)
    assert len(re.findall(r"/files/\d+", member.get(f"/tasks/{task_id}").get_data(as_text=True))) == 1
    token = re.search(
        r'csrf_token" value="([^"]+)"', member.get(f"/tasks/{task_id}").get_data(as_text=True)
    ).group(1)
    done = member.post(f"/tasks/{task_id}", data={"csrf_token": token, "done": "已补齐"})
    assert done.status_code == 302
    officer = signed_in(app.test_client(), "inspector1")
    trail = officer.get("/trail?instance_id=1").get_data(as_text=True)
    assert "上传佐证材料" in trail
    dossier = officer.get("/branches/一支部/dossier").get_data(as_text=True)
    assert "上传佐证材料" in dossier
    token = officer.post(
        "/api/v1/auth/token", json={"username": "inspector1", "password": "Zhibu-test-2026"}
    ).get_json()
    trail = officer.get("/api/v1/audit?instance_id=1", headers={"Authorization": f"Bearer {token['token']}"})
    [fixed] = [
        e for e in trail.get_json()["items"] if e["action"] == "task.completed" and e["bpmn_id"] == "fix"
    ]
    assert fixed["data"]["data"]["evidence"] == [f"支委会记录.pdf [/files/{file_id}]"]  # the upload is named


def test_who_may_download(db_url, clock, fix_task):
    task_id, _ = fix_task
    app = app_for(db_url, clock)
    page = upload(signed_in(app.test_client(), "zhangsan"), task_id, [("记录.pdf", PDF)]).get_data(
        as_text=True
    )
    file_id = int(re.search(r'/files/(\d+)"', page).group(1))
    status = {}
    for user in ("zhangsan", "secretary1", "office1", "inspector1", "secretary2"):
        status[user] = signed_in(app.test_client(), user).get(f"/files/{file_id}").status_code
    status["anonymous"] = app.test_client().get(f"/files/{file_id}").status_code
    assert status == {
        "zhangsan": 200,
        "secretary1": 200,
        "office1": 200,
        "inspector1": 200,
        "secretary2": 403,
        "anonymous": 302,
    }
    assert signed_in(app.test_client(), "zhangsan").get("/files/999").status_code == 404
    refused = upload(signed_in(app.test_client(), "secretary1"), task_id, [("x.pdf", PDF)])
    assert refused.status_code == 403  # read-only on someone else's task
