"""The deadline commands: calendar, scheduler, failing timers, notification settings, calendar feed."""

from __future__ import annotations

import json
import re

from tests.service.conftest import dump
from tests.support import ASSIGNED, REGISTERED


def test_calendar_commands_and_recomputed_deadlines(cli, tmp_path):
    iid = int(cli("start", "rectification", "--data", json.dumps(REGISTERED)).output)
    [assign] = json.loads(cli("tasks", "--json", "--instance", str(iid)).output)
    deadline = {**ASSIGNED, "deadline": "2027-02-05"}
    assert (
        cli("complete", assign["id"], "--data", json.dumps(deadline), "--actor", "secretary1").exit_code == 0
    )
    listing = cli("tasks", "--user", "zhangsan").output
    assert "期限 2027-02-05 24时前（日历未确认）" in listing
    csv = tmp_path / "2027.csv"
    csv.write_text("date,kind,name\n2027-02-05,holiday,春节\n2027-02-08,holiday,春节\n", encoding="utf-8")
    imported = cli("calendar", "import", str(csv))
    assert (
        imported.exit_code == 0
        and "已导入 2 天" in imported.output
        and "1 个流程实例的期限有变化" in imported.output
    )
    listing = cli("tasks", "--user", "zhangsan").output
    assert "期限 2027-02-09 24时前" in listing and "未确认" not in listing  # moved past 2/5 and 2/8
    assert "2027-02-08  休息日（节假日）  春节" in cli("calendar", "list", "--year", "2027").output
    removed = cli("calendar", "remove", "2027-02-08")
    assert removed.exit_code == 0 and "1 个流程实例的期限有变化" in removed.output
    assert "期限 2027-02-08 24时前" in cli("tasks", "--user", "zhangsan").output
    added = cli("calendar", "add", "2027-02-07", "workday", "--name", "春节调休")
    assert added.exit_code == 0 and "1 个流程实例的期限有变化" in added.output
    assert "期限 2027-02-07 24时前" in cli("tasks", "--user", "zhangsan").output  # the worked Sunday
    assert "0 个流程实例的期限有变化" in cli("calendar", "add", "2027-02-07", "workday").output


def test_deadline_commands_refuse_bad_input_and_write_nothing(cli, db_url, tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("2027-02-05,holiday\n2027-02-31,holiday\n", encoding="utf-8")
    before = dump(db_url)
    cases = [
        (("calendar", "add", "2027-13-01", "holiday"), 2, "2027-13-01"),
        (("calendar", "add", "2027-02-05", "rest"), 2, "rest"),
        (("calendar", "remove", "2027-02-05"), 1, "没有登记"),
        (("calendar", "import", str(bad_csv)), 1, "第 2 行"),
        (("calendar", "import", str(tmp_path / "none.csv")), 2, "none.csv"),
        (("timers", "retry", "999"), 1, "不存在"),
        (("notify-prefs", "nobody", "--email", "a@b.cn"), 1, "不存在"),
        (("feed", "nobody"), 1, "不存在"),
        (("scheduler", "--interval", "0", "--once"), 2, "0"),
    ]
    for args, code, message in cases:
        result = cli(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert dump(db_url) == before, args


def test_scheduler_once_feed_and_preferences(cli):
    iid = int(cli("start", "rectification", "--data", json.dumps(REGISTERED)).output)
    [assign] = json.loads(cli("tasks", "--json", "--instance", str(iid)).output)
    cli("complete", assign["id"], "--data", json.dumps(ASSIGNED), "--actor", "secretary1")
    assert cli("notify-prefs", "zhangsan", "--email", "zhangsan@example.cn").exit_code == 0
    once = cli("scheduler", "--once", now="2026-12-01T08:00:00")
    assert once.exit_code == 0, once.output
    assert "触发定时器 2 个（1 个实例，失败 0 个）" in once.output  # reminder and deadline
    assert "发送通知 0 条，失败 2 条" in once.output  # no SMTP server configured: recorded, retried later
    assert "没有暂停的定时器" in cli("timers", "parked").output
    feed = cli("feed", "zhangsan")
    assert feed.exit_code == 0 and re.fullmatch(r"/calendar/[\w-]{40,}\.ics\n", feed.output)
