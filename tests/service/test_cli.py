"""The `zhibu` command, end to end against a real database; bad input changes nothing."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select, update

from tests.service.conftest import dump
from tests.support import ASSIGNED, REGISTERED
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import make_engine
from workflows.engine.models import AuditEvent, TaskRecord


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
    assert cli("tick", now="2026-11-30T23:00").output.strip() == "1"  # the reminder, 3 working days before
    assert cli("tick", now="2026-12-01T08:00").output.strip() == "1"
    listing = cli("tasks", now="2026-12-01T08:00")
    assert "整改落实" in listing.output and "已逾期" in listing.output
    checked = cli("check")
    assert checked.exit_code == 0 and "0 处不一致" in checked.output
    verified = cli("audit", "verify")
    assert verified.exit_code == 0 and "共 20 条事件" in verified.output  # 7 diagrams deployed + 13
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
        (("complete", fix["id"], "--data", '{"done": "x", "evidence": []}', "--actor", "x"), 1, "evidence"),
        (("branch", "add", "一支部", "重复"), 1, "已存在"),
        (("branch", "add", "三支部", "第三党支部", "--members", "-3"), 2, "-3"),
        (("user", "add", "lisi", "--password", "Zhibu-test-2026", "--role", "secretary"), 1, "--branch"),
        (("user", "add", "lisi", "--password", "Zhibu-test-2026", "--role", "boss"), 2, "boss"),
        (("user", "add", "lisi", "--password", "123", "--role", "office"), 1, "至少 10 个字符"),
        (
            (
                "user",
                "add",
                "lisi",
                "--password",
                "Zhibu-test-2026",
                "--role",
                "secretary",
                "--branch",
                "九支部",
            ),
            1,
            "九支部",
        ),
        (("contact", "add", "zhangsan", "一支部"), 1, "不是党委委员"),
        (("catalog", "load", "/no/such/file.json"), 1, "找不到"),
        (("tasks", "--user", "nobody"), 1, "不存在"),
        (("programme", "start", "2026", "--deadlines", "2026-07-31"), 1, "四个阶段"),
        (("programme", "start", "2026", "--deadlines", "a,b,c,d"), 1, "phase1_deadline"),
        (("obligations", "missed", "九支部"), 1, "不存在"),
        (("group", "add", "一支部", "第一党小组", "--leader", "office1"), 1, "不是本党支部人员"),
        (
            ("branch", "add", "三支部", "三", "--term-start", "2026-01-01", "--term-end", "2025-01-01"),
            1,
            "任期",
        ),
        (("branch", "add", "三支部", "三", "--term-end", "2026-13-01"), 2, "2026-13-01"),
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


def test_organization_programme_and_inboxes_from_the_command_line(cli, tmp_path):
    assert (
        cli(
            "user", "add", "lisi", "--password", "Zhibu-test-2026", "--role", "committee", "--name", "李四"
        ).exit_code
        == 0
    )
    assert cli("contact", "add", "lisi", "一支部").exit_code == 0
    assert cli("group", "add", "一支部", "第一党小组", "--leader", "zhangsan").exit_code == 0
    assert "已有党小组" in cli("group", "add", "一支部", "第一党小组").output
    other_password = cli("user", "add", "lisi", "--password", "Another-pass-2026", "--role", "inspector")
    assert other_password.exit_code == 1 and "zhibu user passwd" in other_password.output
    more = cli("user", "add", "lisi", "--role", "inspector")
    assert more.exit_code == 0 and "密码未更改" in more.output
    own = {
        "name": "细则",
        "areas": [{"no": 1, "name": "组织生活", "items": [{"code": "A", "text": "三会", "points": 100}]}],
    }
    path = tmp_path / "own.json"
    path.write_text(json.dumps(own, ensure_ascii=False), encoding="utf-8")
    loaded = cli("catalog", "load", str(path))
    assert loaded.exit_code == 0 and "1 个条目" in loaded.output
    started = cli("programme", "start", "2026", now="2026-06-01T09:00:00")
    assert started.exit_code == 0 and started.stdout.strip().isdigit()
    secretary = cli("tasks", "--user", "secretary1")
    assert "【待办】1 项" in secretary.output and "动员部署、制定方案" in secretary.output
    assert "【只读关注】0 项" in secretary.output
    office = cli("tasks", "--user", "office1")
    todo, watching = office.output.split("【只读关注】")
    assert "【待办】1 项" in todo and "开展培训、掌握标准" in todo
    assert watching.startswith("1 项") and "动员部署、制定方案" in watching
    watched = open_tasks(cli, "--user", "lisi")
    assert [(t["bpmn_id"], t["can_act"]) for t in sorted(watched, key=lambda t: t["bpmn_id"])] == [
        ("mobilize", False),
        ("training", False),
    ]
    generated = cli("obligations", "generate", now="2026-06-01T09:00:00")
    assert generated.exit_code == 0 and int(generated.stdout) == 12  # 11 branch obligations + lisi's visit
    assert "没有缺项" in cli("obligations", "missed", "一支部", now="2026-06-30T12:00:00").output
    missed = cli("obligations", "missed", "一支部", now="2026-07-01T00:00:01")
    assert "2026-06  主题党日  未开展" in missed.output and "（lisi）" in missed.output
    term = cli(
        "branch", "add", "二支部", "第二党支部", "--term-start", "2024-01-01", "--term-end", "2027-01-01"
    )
    assert term.exit_code == 0
    created = cli("obligations", "generate", now="2026-11-24T09:00:00")
    assert "换届" in cli("tasks", "--json").output and int(created.stdout) > 0  # incl. its re-election
