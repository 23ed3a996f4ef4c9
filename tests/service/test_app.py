"""The app factory, sign-in, and the overview page."""

from __future__ import annotations

from service import create_app
from tests.support import REGISTERED, Driver


def app_for(db_url, clock=None, **extra):
    config = {"DATABASE_URL": db_url, "SECRET_KEY": "test", "TESTING": True, **extra}
    if clock is not None:
        config["CLOCK"] = clock
    return create_app(config)


def signed_in(client, username: str, password: str = "Zhibu-test-2026"):
    """Sign in through the form (with its CSRF token, as a browser does)."""
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def test_health_and_sign_in_required(db_url, engine):
    client = app_for(db_url).test_client()
    health = client.get("/healthz")  # up, but no scheduler has run yet (tests/service/test_operations.py)
    assert health.status_code == 503 and health.get_json()["database"] == "ok"
    assert client.get("/").headers["Location"].endswith("/login")
    assert "/login?next=" in client.get("/overview").headers["Location"]


def test_overview_counts_open_and_overdue_tasks_per_branch(db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED, actor="office1")
    driver.complete(
        driver.only_task(iid).id, {"responsible": "zhangsan", "measures": "补齐", "deadline": "2026-11-25"}
    )
    driver.start(REGISTERED, actor="office1")
    clock.advance(days=2)
    assert driver.tick() == 1
    driver.close()
    client = signed_in(app_for(db_url, clock).test_client(), "office1")
    text = client.get("/overview").get_data(as_text=True)
    assert "第一党支部" in text and "待办 2 项" in text and "逾期 1 项" in text
