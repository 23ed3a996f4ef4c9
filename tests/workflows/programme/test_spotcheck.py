"""Spot-check draws: seeded, recorded in the audit trail, and reproducible from it alone."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.support import COMPANY_BRANCHES, PROGRAMME_START, Company, Driver, build_company
from workflows.engine.db import transaction
from workflows.engine.models import AuditEvent, ProcessInstance
from workflows.programme import spotcheck
from workflows.programme.units import start_programme


def test_a_draw_depends_only_on_its_seed_and_inputs():
    candidates = [f"B{n}" for n in range(1, 21)]
    first = spotcheck.draw(candidates, 4, "seed-a")
    assert first == spotcheck.draw(list(reversed(candidates)), 4, "seed-a")  # input order does not matter
    assert len(set(first)) == 4 and set(first) <= set(candidates)
    assert first != spotcheck.draw(candidates, 4, "seed-b")
    assert spotcheck.draw(candidates, 50, "seed-a") == spotcheck.draw(candidates, 20, "seed-a")


def test_a_tampered_record_does_not_reproduce():
    payload = spotcheck.record("随机抽查", ["B1", "B2", "B3", "B4"], 2, "fixed-seed")
    assert spotcheck.reproduce(payload)
    swapped = sorted(set(payload["candidates"]) - set(payload["drawn"]))[:1] + payload["drawn"][1:]
    assert not spotcheck.reproduce({**payload, "drawn": swapped})


@pytest.fixture
def programme_at_spot_checks(db_url, factory, clock):
    clock.set(PROGRAMME_START)
    with transaction(factory) as session:
        build_company(session, clock.now())
    driver = Driver(db_url, clock, "restored")
    start_programme(driver.factory(), 2026, None, actor="office1", clock=clock)
    c = Company(driver)
    c.do("office1", "training", {"date": "2026-06-08", "topic": "标准化手册", "participants": 60})
    rows = [{"branch": b, "classification": "一般", "focus": "同步推进"} for b in COMPANY_BRANCHES]
    c.do("office1", "classify", {"classifications": rows, "contacts": []})
    c.do("office1", "pick_demonstration", {"branches": ["B1", "B2"], "reason": "基础较好"})
    yield c
    driver.close()


def test_draws_are_reproducible_from_the_audit_trail(programme_at_spot_checks):
    c = programme_at_spot_checks
    c.do("office1", "spot_checks", {"kind": "随机抽查", "count": 2, "finished": False})
    c.do("office1", "spot_checks", {"kind": "定期抽查", "count": 3, "finished": True})
    with c.driver.factory()() as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == "spotcheck.drawn").order_by(AuditEvent.seq)
            )
        )
        checked = sorted(
            session.scalars(select(ProcessInstance.branch).where(ProcessInstance.process_id == "spot_check"))
        )
    assert len(events) == 2
    payloads = [json.loads(e.data) for e in events]
    assert [p["count"] for p in payloads] == [2, 3] and payloads[0]["seed"] != payloads[1]["seed"]
    for payload in payloads:
        assert payload["candidates"] == COMPANY_BRANCHES
        assert spotcheck.draw(payload["candidates"], payload["count"], payload["seed"]) == payload["drawn"]
    # The trail alone names exactly the branches that got a spot check.
    assert checked == sorted(payloads[0]["drawn"] + payloads[1]["drawn"])
    assert sorted(t[1] for t in c.todo("office1") if t[0] == "inspect") == checked
    assert c.driver.verify().ok
