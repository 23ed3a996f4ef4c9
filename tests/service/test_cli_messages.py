"""An event gateway waiting for a message or its deadline, driven through `zhibu` with the clock moved."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from workflows.engine import specs
from workflows.engine.clock import FixedClock, parse_instant
from workflows.engine.db import make_engine, make_session_factory, transaction

DIAGRAMS = Path(__file__).parents[1] / "workflows" / "engine" / "diagrams"


def _deploy_relay(db_url, tmp_path) -> None:
    engine = make_engine(db_url)
    (tmp_path / "forms").mkdir(exist_ok=True)
    with transaction(make_session_factory(engine)) as session:
        now = FixedClock(parse_instant("2026-11-24T10:00:00")).now()
        specs.deploy_all(session, now=now, actor="t", bpmn_dir=DIAGRAMS, forms_dir=tmp_path / "forms")
    engine.dispose()


def _waiting_receiver(cli, branch: str) -> int:
    data = json.dumps({"year": 2026, "branch": branch, "deadline": "2026-11-30"})
    result = cli("start", "relay_receiver", "--data", data)
    assert result.exit_code == 0, result.output
    iid = int(result.output)
    [prepare] = json.loads(cli("tasks", "--json", "--instance", str(iid)).output)
    assert cli("complete", prepare["id"], "--data", "{}").exit_code == 0
    return iid


def _tasks(cli, iid: int) -> list[str]:
    return [t["bpmn_id"] for t in json.loads(cli("tasks", "--json", "--instance", str(iid)).output)]


def test_the_deadline_fires_through_tick_and_a_message_that_comes_first_wins(cli, db_url, tmp_path):
    _deploy_relay(db_url, tmp_path)
    timed_out, answered = _waiting_receiver(cli, "B1"), _waiting_receiver(cli, "B2")
    assert cli("check").exit_code == 0

    sent = cli("start", "relay_sender", "--data", json.dumps({"year": 2026, "branch": "B2", "note": "按时"}))
    assert sent.exit_code == 0, sent.output
    assert _tasks(cli, answered) == ["after_message"]  # the message came first
    assert _tasks(cli, timed_out) == []

    early = cli("tick", now="2026-11-30T23:59:00")
    assert (early.exit_code, early.output.strip()) == (0, "0")
    due = cli("tick", now="2026-12-01T00:00:30")
    assert (due.exit_code, due.output.strip()) == (0, "1")
    assert _tasks(cli, timed_out) == ["after_timer"]
    assert _tasks(cli, answered) == ["after_message"]  # its deadline went with the gateway
    assert cli("tick", now="2026-12-02T09:00:00").output.strip() == "0"
    result = cli("check")
    assert (result.exit_code, result.output.strip()) == (0, "0 处不一致")


def test_check_fails_for_a_gateway_timer_missing_from_the_index(cli, db_url, tmp_path):
    _deploy_relay(db_url, tmp_path)
    iid = _waiting_receiver(cli, "B1")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE instances SET next_due_at = NULL WHERE id = :id"), {"id": iid})
    engine.dispose()
    result = cli("check")
    assert result.exit_code == 1
    assert f"实例 {iid}：next_due_at 应为 2026-11-30T16:00:00+00:00，索引中为 None" in result.output
