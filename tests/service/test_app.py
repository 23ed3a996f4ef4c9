"""The app factory builds an app on the configured database; the overview shows the company."""

from __future__ import annotations

from service import create_app
from tests.support import REGISTERED, Driver


def test_app_factory_serves_health_and_an_empty_overview(db_url, engine):
    app = create_app({"DATABASE_URL": db_url, "TESTING": True})
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    page = client.get("/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "基层党支部建设标准化" in text and "zhibu demo" in text


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
    text = create_app({"DATABASE_URL": db_url, "CLOCK": clock}).test_client().get("/").get_data(as_text=True)
    assert "第一党支部" in text and "待办 2 项" in text and "逾期 1 项" in text
