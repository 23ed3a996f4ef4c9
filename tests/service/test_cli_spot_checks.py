"""`zhibu spotcheck scheduled` starts the scheduled checks due, once; `zhibu spotcheck verify` recomputes
every draw of the trail and fails on one that does not reproduce."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from workflows.engine.db import make_engine
from workflows.engine.models import AuditEvent


def test_scheduled_checks_start_once_and_every_draw_verifies(cli, db_url):
    assert cli("programme", "start", "2026", now="2026-06-01T09:00:00").exit_code == 0
    assert cli("spotcheck", "scheduled", now="2026-06-24T09:00:00").output.strip() == "0"
    assert cli("spotcheck", "scheduled", now="2026-09-30T09:00:00").output.strip() == "2"  # Q2 and Q3
    assert cli("spotcheck", "scheduled", now="2026-09-30T10:00:00").output.strip() == "0"
    verified = cli("spotcheck", "verify")
    assert verified.exit_code == 0, verified.output
    assert "定期抽查（2026年二季度定期抽查）" in verified.output and "可复核" in verified.output
    assert "共 2 次抽取，2 次可复核，0 次不符" in verified.output


def test_a_draw_that_does_not_reproduce_fails_verification(cli, db_url):
    cli("programme", "start", "2026", now="2026-06-01T09:00:00")
    cli("spotcheck", "scheduled", now="2026-06-25T09:00:00")
    engine = make_engine(db_url)
    with engine.begin() as conn:  # someone rewrites the drawn branches (the chain check would see it too)
        event = conn.execute(select(AuditEvent).where(AuditEvent.action == "spotcheck.drawn")).one()
        payload = {**json.loads(event.data), "drawn": ["另一支部"]}
        conn.execute(update(AuditEvent).where(AuditEvent.id == event.id).values(data=json.dumps(payload)))
    engine.dispose()
    verified = cli("spotcheck", "verify")
    assert verified.exit_code == 1 and "不符" in verified.output and "1 次不符" in verified.output
