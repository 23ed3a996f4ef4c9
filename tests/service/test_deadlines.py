"""A deadline is a date after today: refused by the field otherwise, and never offered expired."""

from __future__ import annotations

from tests.service.conftest import dump
from tests.support import ASSIGNED, FIXED, REGISTERED, Driver
from workflows.engine.models import TaskRecord

from .test_app import app_for, signed_in
from .test_web import csrf_of

PASSWORD = "Zhibu-test-2026"


def _bearer(client, username: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def test_a_deadline_of_today_or_earlier_is_refused_by_the_api(db_url, deployed, clock, assign_task):
    api = app_for(db_url, clock).test_client()
    bearer = _bearer(api, "secretary1")
    before = dump(db_url)
    for day in ("2026-11-24", "2026-11-01"):  # the clock says 2026-11-24
        answer = api.post(
            f"/api/v1/tasks/{assign_task}/complete",
            json={"data": {**ASSIGNED, "deadline": day}},
            headers=bearer,
        )
        assert answer.status_code == 400
        assert (
            set(answer.get_json()["errors"]) == {"deadline"}
            and "须晚于今天" in answer.get_json()["errors"]["deadline"]
        )
    assert dump(db_url) == before
    office = _bearer(api, "office1")
    registered = {
        "source": "自查",
        "branch": "一支部",
        "title": "t",
        "description": "d",
        "deadline": "2026-11-24",
    }
    answer = api.post("/api/v1/rectifications", json=registered, headers=office)
    assert answer.status_code == 400 and "deadline" in answer.get_json()["errors"]
    ok = api.post(
        f"/api/v1/tasks/{assign_task}/complete",
        json={"data": {**ASSIGNED, "deadline": "2026-11-25"}},
        headers=bearer,
    )
    assert ok.status_code == 200


def test_the_web_form_says_it_by_the_field_and_offers_no_expired_date(db_url, deployed, clock, assign_task):
    client = signed_in(app_for(db_url, clock).test_client(), "secretary1")
    token = csrf_of(client.get(f"/tasks/{assign_task}").get_data(as_text=True))
    refused = client.post(
        f"/tasks/{assign_task}", data={"csrf_token": token, **ASSIGNED, "deadline": "2026-11-24"}
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "须晚于今天（2026-11-24）" in page
    assert client.post(f"/tasks/{assign_task}", data={"csrf_token": token, **ASSIGNED}).status_code == 302

    driver = Driver(db_url, clock, "straight")
    with driver.factory()() as session:
        iid = session.get(TaskRecord, assign_task).instance_id
    driver.complete(driver.only_task(iid).id, FIXED, actor="zhangsan")
    signoff = driver.only_task(iid)
    suggested = driver.start({**REGISTERED, "deadline": "2026-11-25"}, actor="office1")  # a suggestion
    assign = driver.only_task(suggested)
    driver.close()
    office = signed_in(app_for(db_url, clock).test_client(), "office1")
    page = office.get(f"/tasks/{signoff.id}").get_data(as_text=True)
    assert 'name="deadline" value=""' in page  # a rejection's deadline is new: the old one is not offered
    page = client.get(f"/tasks/{assign.id}").get_data(as_text=True)
    assert 'name="deadline" value="2026-11-25"' in page  # the registration's suggestion, still ahead
    clock.advance(days=1, hours=14)  # 2026-11-26 00:00: the suggestion has passed
    secretary = signed_in(app_for(db_url, clock).test_client(), "secretary1")
    page = secretary.get(f"/tasks/{assign.id}").get_data(as_text=True)
    assert 'name="deadline" value=""' in page  # an expired date is never offered


def test_a_deadline_on_a_rest_day_is_refused_with_the_next_working_day(db_url, deployed, clock, assign_task):
    api = app_for(db_url, clock).test_client()
    bearer = _bearer(api, "secretary1")
    sunday = {"data": {**ASSIGNED, "deadline": "2026-12-20"}}
    answer = api.post(f"/api/v1/tasks/{assign_task}/complete", json=sunday, headers=bearer)
    assert answer.status_code == 400
    assert answer.get_json()["errors"]["deadline"] == "2026-12-20 是休息日，期限请选工作日（如 2026-12-21）"
    monday = {"data": {**ASSIGNED, "deadline": "2026-12-21"}}
    assert api.post(f"/api/v1/tasks/{assign_task}/complete", json=monday, headers=bearer).status_code == 200
