"""The `zhibu` command, end to end against a real database; bad input changes nothing."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from service.cli import main
from tests.support import ASSIGNED, REGISTERED
from workflows.clock import LOCAL_TZ
from workflows.db import make_engine
from workflows.models import AuditEvent, Base, TaskRecord


@pytest.fixture
def cli(db_url):
    """Run `zhibu ...` against the test database at a frozen time; `db init` already done."""
    env = {"ZHIBU_DATABASE_URL": db_url, "ZHIBU_NOW": "2026-11-24T10:00:00"}

    def run(*args: str, now: str | None = None):
        return CliRunner().invoke(main, list(args), env={**env, **({"ZHIBU_NOW": now} if now else {})})

    for args in (
        ("db", "init"),
        ("branch", "add", "一支部", "第一党支部", "--members", "12"),
        ("user", "add", "secretary1", "--password", "secret1", "--role", "secretary", "--branch", "一支部"),
        ("user", "add", "zhangsan", "--password", "secret1", "--role", "branch_member", "--branch", "一支部"),
        ("user", "add", "office1", "--password", "secret1", "--role", "office"),
    ):
        result = run(*args)
        assert result.exit_code == 0, result.output
    return run


def dump(db_url) -> dict[str, list]:
    """Every row of every table, for before/after comparisons."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def open_tasks(cli, *args) -> list[dict]:
    result = cli("tasks", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_whole_loop_from_the_command_line(cli, db_url):
    result = cli("start", "rectification")
    assert result.exit_code == 0 and result.output.strip().isdigit()
    iid = int(result.output)
    [register] = open_tasks(cli, "--instance", str(iid))
    assert set(register) >= {
        "id",
        "instance_id",
        "bpmn_id",
        "title",
        "lane",
        "form_key",
        "due_at",
        "schema",
        "data",
    }
    assert (register["bpmn_id"], register["title"], register["lane"]) == (
        "register",
        "登记问题",
        "党委工作室",
    )
    assert register["schema"]["properties"]["source"]["enum"][0] == "自查"
    assert (
        cli("complete", register["id"], "--data", json.dumps(REGISTERED), "--actor", "office1").exit_code == 0
    )
    [assign] = open_tasks(cli)
    assert assign["data"]["title"] == REGISTERED["title"]
    assert cli("complete", assign["id"], "--data", json.dumps(ASSIGNED)).exit_code == 0
    [fix] = open_tasks(cli)
    assert fix["due_at"] == "2026-11-30T16:00:00+00:00"  # 2026-12-01 00:00 Beijing time
    assert cli("tick", now="2026-11-30T23:00").output.strip() == "0"
    assert cli("tick", now="2026-12-01T08:00").output.strip() == "1"
    listing = cli("tasks")
    assert "整改落实" in listing.output and "已逾期" in listing.output
    checked = cli("check")
    assert checked.exit_code == 0 and "0 处不一致" in checked.output
    verified = cli("audit", "verify")
    assert verified.exit_code == 0 and "共 15 条事件" in verified.output
    with make_engine(db_url).connect() as conn:
        started = conn.execute(select(AuditEvent).where(AuditEvent.action == "instance.started")).one()
    assert started.occurred_at == datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ)
    assert started.actor.startswith("cli:")


def test_bad_input_gets_a_clear_error_and_writes_nothing(cli, db_url):
    iid = int(cli("start", "rectification", "--data", json.dumps(REGISTERED)).output)
    [assign] = open_tasks(cli, "--instance", str(iid))
    cli("complete", assign["id"], "--data", json.dumps(ASSIGNED))
    [fix] = open_tasks(cli)
    before = dump(db_url)
    cases = [
        (("complete", "00000000-0000-0000-0000-00000000abcd", "--data", "{}"), 1, "不存在"),
        (("complete", "no-such-task", "--data", "{}"), 1, "不存在"),
        (("complete", assign["id"], "--data", json.dumps(ASSIGNED)), 1, "已办结"),
        (("complete", fix["id"], "--data", '{"done": "", "evidence": []}'), 1, "done：不能为空"),
        (
            ("complete", fix["id"], "--data", '{"done": "x", "evidence": ["a"], "hack": 1}'),
            1,
            "hack：表单中没有这一项",
        ),
        (("complete", fix["id"], "--data", "{not json"), 2, "不是有效的 JSON"),
        (("complete", fix["id"], "--data", "[1, 2]"), 2, "应为 JSON 对象"),
        (("start", "rectification", "--data", '{"title": "缺少来源"}'), 1, "source：请填写“问题来源”"),
        (("start", "no-such-process"), 1, "尚未部署"),
        (("tasks", "--instance", "abc"), 2, "abc"),
    ]
    for args, code, message in cases:
        result = cli(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert dump(db_url) == before, args


def test_check_reports_a_corrupted_row(cli, db_url):
    iid = int(cli("start", "rectification", "--data", json.dumps(REGISTERED)).output)
    assert cli("check").exit_code == 0
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(TaskRecord).where(TaskRecord.instance_id == iid).values(lane="某人"))
    engine.dispose()
    result = cli("check")
    assert result.exit_code == 1
    assert f"实例 {iid}" in result.output and "lane" in result.output


def test_audit_verify_names_the_tampered_event(cli, db_url):
    cli("start", "rectification", "--data", json.dumps(REGISTERED))
    engine = make_engine(db_url)
    with engine.begin() as conn:
        target = conn.execute(
            select(AuditEvent.id).where(AuditEvent.action == "instance.started")
        ).scalar_one()
        conn.execute(update(AuditEvent).where(AuditEvent.id == target).values(data='{"forged":true}'))
    engine.dispose()
    result = cli("audit", "verify")
    assert result.exit_code == 1 and f"id={target}" in result.output
