"""The /api/v1 contract: tokens, tasks, rectifications, audit — and nothing written on any error."""

from __future__ import annotations

import pytest

from tests.service.conftest import dump
from tests.support import ASSIGNED, seed_neighbours
from workflows.engine.db import transaction

from .test_app import app_for

NEW_ITEM = {
    "branch": "一支部",
    "title": "公开栏未更新",
    "description": "半年未更新",
    "source": "督查抽查",
    "deadline": "2026-12-10",
}


@pytest.fixture
def api(db_url, deployed, clock):
    with transaction(deployed) as session:
        seed_neighbours(session, clock.now())
    client = app_for(db_url, clock).test_client()
    tokens = {}

    def call(method: str, path: str, user: str | None = None, headers: dict | None = None, **kwargs):
        headers = dict(headers or {})
        if user is not None:
            if user not in tokens:
                answer = client.post(
                    "/api/v1/auth/token", json={"username": user, "password": "Zhibu-test-2026"}
                )
                tokens[user] = answer.get_json()["token"]
            headers["Authorization"] = f"Bearer {tokens[user]}"
        return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    return call


def test_tokens(api):
    assert api("POST", "/auth/token", json={"username": "office1", "password": "wrong"}).status_code == 401
    assert (
        api("POST", "/auth/token", json={"username": "nobody", "password": "Zhibu-test-2026"}).status_code
        == 401
    )
    assert (
        "token"
        in api("POST", "/auth/token", json={"username": "office1", "password": "Zhibu-test-2026"}).get_json()
    )
    assert api("GET", "/tasks").status_code == 401
    assert api("GET", "/tasks", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert api("GET", "/openapi.json").get_json()["paths"]["/tasks/{id}/complete"]["post"]["responses"]["409"]


def test_a_rectification_through_the_api(api, db_url):
    created = api("POST", "/rectifications", "office1", json=NEW_ITEM)
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "instance_id"}
    [task] = api("GET", "/tasks", "secretary1").get_json()["items"]
    assert (task["bpmn_id"], task["process"], task["branch"], task["instance_id"]) == (
        "assign",
        "rectification",
        "一支部",
        body["instance_id"],
    )
    assert set(task) >= {
        "id",
        "instance_id",
        "bpmn_id",
        "title",
        "process",
        "branch",
        "lane",
        "form_key",
        "due_at",
        "overdue",
        "escalation_level",
    }
    assert api("GET", "/tasks", "secretary2").get_json() == {"items": [], "total": 0}
    detail = api("GET", f"/tasks/{task['id']}", "secretary1").get_json()
    assert detail["schema"]["title"] == "明确责任" and detail["data"]["deadline"] == "2026-12-10"
    assert api("GET", f"/tasks/{task['id']}", "secretary2").status_code == 403
    assert api("GET", "/tasks/00000000-0000-0000-0000-000000000000", "secretary1").status_code == 404

    api("GET", "/tasks", "inspector1")  # sign in first: issuing a token is a write of its own
    api("GET", "/tasks", "leader1")
    before = dump(db_url)
    refused = [
        (api("POST", f"/tasks/{task['id']}/complete", "secretary2", json={"data": ASSIGNED}), 403),
        (api("POST", f"/tasks/{task['id']}/complete", "inspector1", json={"data": ASSIGNED}), 403),
        (api("POST", f"/tasks/{task['id']}/complete", "office1", json={"data": ASSIGNED}), 403),
        (api("POST", "/tasks/nope/complete", "secretary1", json={"data": ASSIGNED}), 404),
        (api("POST", f"/tasks/{task['id']}/complete", "secretary1", json={"data": {"measures": ""}}), 400),
        (
            api(
                "POST",
                f"/tasks/{task['id']}/complete",
                "secretary1",
                json={"data": {**ASSIGNED, "responsible": "secretary2"}},
            ),
            400,
        ),
        (api("POST", f"/tasks/{task['id']}/complete", "secretary1", data="not json"), 400),
        (api("POST", "/rectifications", "secretary2", json=NEW_ITEM), 403),
        (api("POST", "/rectifications", "leader1", json=NEW_ITEM), 403),
        (api("POST", "/rectifications", "office1", json={**NEW_ITEM, "title": ""}), 400),
        (api("POST", "/rectifications", "office1", json={**NEW_ITEM, "branch": "九支部"}), 400),
        (api("GET", "/tasks?status=all", "secretary1"), 400),
    ]
    assert [r.status_code for r, _ in refused] == [code for _, code in refused]
    errors = refused[4][0].get_json()["errors"]
    assert errors == {
        "measures": "不能为空",
        "responsible": "请填写“整改责任人”",
        "deadline": "请填写“整改时限”",
    }
    assert refused[5][0].get_json()["errors"]["responsible"] == "“secretary2”不是本党支部人员"
    assert "九支部" in refused[10][0].get_json()["errors"]["branch"]
    assert dump(db_url) == before

    done = api("POST", f"/tasks/{task['id']}/complete", "secretary1", json={"data": ASSIGNED})
    assert done.status_code == 200
    assert (
        api("POST", f"/tasks/{task['id']}/complete", "secretary1", json={"data": ASSIGNED}).status_code == 409
    )
    [fix] = api("GET", "/tasks", "zhangsan").get_json()["items"]
    assert fix["bpmn_id"] == "fix" and fix["due_at"] == "2026-11-30T16:00:00+00:00"
    completed = api("GET", "/tasks?status=completed", "secretary1").get_json()["items"]
    assert [t["bpmn_id"] for t in completed] == ["assign"]

    [row] = api("GET", "/rectifications", "secretary1").get_json()["items"]
    assert (row["status"], row["responsible"], row["deadline"], row["source"], row["overdue"]) == (
        "整改中",
        "zhangsan",
        "2026-11-30",
        "督查抽查",
        False,
    )
    assert api("GET", "/rectifications", "secretary2").get_json()["total"] == 0
    assert api("GET", "/rectifications?status=已销号", "inspector1").get_json()["total"] == 0
    assert api("GET", "/rectifications?branch=一支部", "leader1").get_json()["total"] == 1

    trail = api("GET", f"/audit?instance_id={body['instance_id']}", "inspector1").get_json()["items"]
    assert [e["action"] for e in trail] == ["instance.started", "task.completed", "notification.sent"]
    assert trail[1]["actor"] == "secretary1" and trail[1]["data"]["data"]["responsible"] == "zhangsan"
    assert api("GET", f"/audit?instance_id={body['instance_id']}", "secretary2").get_json()["total"] == 0
    assert api("GET", "/audit/verify", "inspector1").get_json()["ok"] is True


def test_a_secretary_registers_for_their_own_branch(api):
    assert api("POST", "/rectifications", "secretary1", json=NEW_ITEM).status_code == 201
    company = {k: v for k, v in NEW_ITEM.items() if k != "branch"}
    assert api("POST", "/rectifications", "secretary1", json=company).status_code == 403
    created = api("POST", "/rectifications", "office1", json=company)  # company-level: the office assigns
    assert created.status_code == 201
    assert [
        t["bpmn_id"] for t in api("GET", "/tasks", "office1").get_json()["items"] if t["branch"] is None
    ] == ["assign"]
