"""A person's deadlines as an iCalendar feed behind a secret, rotatable token."""

from __future__ import annotations

from datetime import date

from icalendar import Calendar

from service import create_app
from tests.support import ASSIGNED, REGISTERED, Driver
from workflows.deadlines import ical
from workflows.engine.db import transaction


def test_feed_shows_the_persons_deadlines_only(db_url, deployed, clock):
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED, actor="office1")
    driver.complete(driver.only_task(iid).id, ASSIGNED, actor="secretary1")
    driver.start({**REGISTERED, "title": "另一个问题"}, actor="office1")  # secretary1's, no deadline
    driver.close()
    with transaction(deployed) as session:
        token = ical.token_for(session, "zhangsan", now=clock.now())
        other = ical.token_for(session, "secretary1", now=clock.now())
    client = create_app({"DATABASE_URL": db_url, "CLOCK": clock, "SECRET_KEY": "test"}).test_client()
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    events = Calendar.from_ical(response.data).walk("VEVENT")
    assert [(str(e["summary"]), e.decoded("dtstart")) for e in events] == [
        ("整改落实：支委会记录不全", date(2026, 11, 30))
    ]
    assert events[0].walk("VALARM")
    assert Calendar.from_ical(client.get(f"/calendar/{other}.ics").data).walk("VEVENT") == []
    assert client.get("/calendar/not-a-token.ics").status_code == 404
    with transaction(deployed) as session:
        rotated = ical.token_for(session, "zhangsan", now=clock.now(), rotate=True)
    assert rotated != token and client.get(f"/calendar/{token}.ics").status_code == 404
    assert client.get(f"/calendar/{rotated}.ics").status_code == 200
