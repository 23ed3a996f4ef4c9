"""Every route × every role: who may see and who may act, including another branch's task ids."""

from __future__ import annotations

import re

import pytest

from tests.support import ASSIGNED, REGISTERED, Driver, seed_neighbours
from workflows.engine.db import transaction

from .test_app import app_for

ROLES = [
    "anonymous",
    "secretary1",
    "zhangsan",
    "secretary2",
    "committee1",
    "office1",
    "leader1",
    "inspector1",
]
ITEM = {"branch": "一支部", "title": "台账不全", "description": "缺记录", "source": "自查"}


@pytest.fixture
def world(db_url, deployed, clock):
    with transaction(deployed) as session:
        seed_neighbours(session, clock.now())
    driver = Driver(db_url, clock, "straight")
    own = driver.only_task(driver.start(REGISTERED, actor="office1")).id
    other = driver.only_task(driver.start({**REGISTERED, "branch": "二支部"}, actor="office1")).id
    driver.close()
    app = app_for(db_url, clock)
    clients = {}
    for role in ROLES:
        client = app.test_client()
        if role != "anonymous":
            token = re.search(
                r'csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)
            ).group(1)
            client.post("/login", data={"username": role, "password": "Zhibu-test-2026", "csrf_token": token})
            bearer = client.post(
                "/api/v1/auth/token", json={"username": role, "password": "Zhibu-test-2026"}
            ).get_json()
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {bearer['token']}"
        clients[role] = client
    return clients, own, other


def csrf(client) -> str:
    """A CSRF token of this client's session (signed-in people are sent on from /login, so read the inbox)."""
    page = client.get("/inbox").get_data(as_text=True) or client.get("/login").get_data(as_text=True)
    found = re.search(r'csrf_token" value="([^"]+)"', page) or re.search(
        r'csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)
    )
    return found.group(1)


def matrix(clients, call) -> dict[str, int]:
    return {role: call(client).status_code for role, client in clients.items()}


def expect(default: int, **special: int) -> dict[str, int]:
    return {role: special.get(role, default) for role in ROLES}


def test_pages(world):
    clients, own, other = world
    assert matrix(clients, lambda c: c.get("/inbox")) == expect(200, anonymous=302)
    assert matrix(clients, lambda c: c.get("/inbox?view=done")) == expect(200, anonymous=302)
    assert matrix(clients, lambda c: c.get("/overview")) == expect(
        403, anonymous=302, office1=200, leader1=200, inspector1=200
    )
    assert matrix(clients, lambda c: c.get("/dashboard")) == expect(
        403, anonymous=302, office1=200, leader1=200, inspector1=200
    )
    assert matrix(clients, lambda c: c.get("/ledger")) == expect(200, anonymous=302)
    assert matrix(clients, lambda c: c.get("/trail")) == expect(200, anonymous=302)
    assert matrix(clients, lambda c: c.get("/branches/一支部/dossier")) == expect(
        200, anonymous=302, secretary2=403
    )
    assert matrix(clients, lambda c: c.get("/branches/二支部/dossier")) == expect(
        403, anonymous=302, secretary2=200, office1=200, leader1=200, inspector1=200
    )
    own_instance = clients["office1"].get(f"/api/v1/tasks/{own}").get_json()["instance_id"]
    assert matrix(clients, lambda c: c.get(f"/instances/{own_instance}")) == expect(
        200, anonymous=302, secretary2=403
    )
    for export in ("/ledger.xlsx", "/ledger/print", "/trail.xlsx", "/trail.csv"):
        assert matrix(clients, lambda c, url=export: c.get(url)) == expect(200, anonymous=302), export
    for action in ("claim", "unclaim", "reassign", "comments", "files"):
        # Another branch's task: whoever may not see it is refused, whatever the action.
        outsiders = {
            r: c for r, c in clients.items() if r in ("anonymous", "secretary1", "zhangsan", "committee1")
        }
        refused = matrix(
            outsiders, lambda c, a=action: c.post(f"/tasks/{other}/{a}", data={"csrf_token": csrf(c)})
        )
        assert refused == {"anonymous": 302, "secretary1": 403, "zhangsan": 403, "committee1": 403}, action
    readers = {r: c for r, c in clients.items() if r in ("leader1", "inspector1")}
    for action in ("claim", "files"):
        refused = matrix(
            readers, lambda c, a=action: c.post(f"/tasks/{own}/{a}", data={"csrf_token": csrf(c)})
        )
        assert refused == {"leader1": 403, "inspector1": 403}, action  # they read everything, change nothing
    assert matrix(clients, lambda c: c.get(f"/tasks/{own}")) == expect(200, anonymous=302, secretary2=403)
    assert matrix(clients, lambda c: c.get(f"/tasks/{other}")) == expect(
        403, anonymous=302, secretary2=200, office1=200, leader1=200, inspector1=200
    )
    assert matrix(clients, lambda c: c.get("/tasks/no-such-task")) == expect(404, anonymous=302)

    def post(task, responsible="zhangsan"):
        return lambda c: c.post(
            f"/tasks/{task}", data={**ASSIGNED, "responsible": responsible, "csrf_token": csrf(c)}
        )

    denied = {role: client for role, client in clients.items() if role != "secretary1"}
    assert matrix(denied, post(own)) == {
        r: s for r, s in expect(403, anonymous=302).items() if r != "secretary1"
    }
    denied = {role: client for role, client in clients.items() if role != "secretary2"}
    assert matrix(denied, post(other)) == {
        r: s for r, s in expect(403, anonymous=302).items() if r != "secretary2"
    }
    assert post(own)(clients["secretary1"]).status_code == 302  # the one who may
    assert post(other, "secretary2")(clients["secretary2"]).status_code == 302


def test_api(world):
    clients, own, other = world
    assert matrix(clients, lambda c: c.get("/api/v1/tasks")) == expect(200, anonymous=401)
    assert matrix(clients, lambda c: c.get(f"/api/v1/tasks/{own}")) == expect(
        200, anonymous=401, secretary2=403
    )
    assert matrix(clients, lambda c: c.get(f"/api/v1/tasks/{other}")) == expect(
        403, anonymous=401, secretary2=200, office1=200, leader1=200, inspector1=200
    )

    def complete(c):
        return c.post(
            f"/api/v1/tasks/{other}/complete", json={"data": {**ASSIGNED, "responsible": "secretary2"}}
        )

    denied = {role: client for role, client in clients.items() if role != "secretary2"}
    assert matrix(denied, complete) == {
        r: s for r, s in expect(403, anonymous=401).items() if r != "secretary2"
    }
    assert complete(clients["secretary2"]).status_code == 200
    assert matrix(clients, lambda c: c.get("/api/v1/rectifications")) == expect(200, anonymous=401)
    seen = {
        role: c.get("/api/v1/rectifications").get_json() for role, c in clients.items() if role != "anonymous"
    }
    assert {role: sorted(r["branch"] for r in v["items"]) for role, v in seen.items()} == {
        "secretary1": ["一支部"],
        "zhangsan": ["一支部"],
        "secretary2": ["二支部"],
        "committee1": ["一支部"],
        "office1": ["一支部", "二支部"],
        "leader1": ["一支部", "二支部"],
        "inspector1": ["一支部", "二支部"],
    }
    create = lambda c: c.post("/api/v1/rectifications", json=ITEM)  # noqa: E731
    # Inspectors find problems anywhere and register them; the leadership group only reads.
    assert matrix(clients, create) == expect(403, anonymous=401, secretary1=201, office1=201, inspector1=201)
    assert matrix(clients, lambda c: c.get("/api/v1/audit")) == expect(200, anonymous=401)
    branches = {
        role: {e["branch"] for e in c.get("/api/v1/audit").get_json()["items"]}
        for role, c in clients.items()
        if role != "anonymous"
    }
    assert branches["secretary2"] == {"二支部"} and branches["secretary1"] == {"一支部"}
    assert None in branches["inspector1"] and {"一支部", "二支部"} <= branches["inspector1"]
    assert matrix(clients, lambda c: c.get("/api/v1/audit/verify")) == expect(200, anonymous=401)
