"""`zhibu user add ... --title`: the leadership group's titles from the command line, checked in Chinese."""

from __future__ import annotations

from sqlalchemy import select

from tests.service.conftest import dump
from workflows.engine.db import make_engine, make_session_factory
from workflows.programme import org

PASSWORD = "Zhibu-test-2026"


def titles(db_url) -> dict[str, str | None]:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            return {u.username: u.title for u in session.scalars(select(org.User))}
    finally:
        engine.dispose()


def test_a_leader_is_added_with_a_title_and_can_be_given_another(cli, db_url):
    added = cli("user", "add", "zuzhang", "--password", PASSWORD, "--role", "leader", "--title", "组长")
    assert added.exit_code == 0 and "职务：组长" in added.output, added.output
    changed = cli("user", "add", "zuzhang", "--role", "leader", "--title", "副组长")
    assert changed.exit_code == 0 and "职务改为 副组长" in changed.output, changed.output
    assert titles(db_url)["zuzhang"] == "副组长"
    again = cli("user", "add", "zuzhang", "--role", "leader", "--title", "副组长")
    assert again.exit_code == 1 and "已有该角色" in again.output


def test_a_wrong_title_is_refused_in_chinese_and_writes_nothing(cli, db_url):
    before = dump(db_url)
    cases = [
        (
            ("user", "add", "ldx", "--password", PASSWORD, "--role", "leader", "--title", "主任"),
            "组长/副组长/成员",
        ),
        (
            ("user", "add", "ldx", "--password", PASSWORD, "--role", "office", "--title", "组长"),
            "只用于标准化工作领导小组成员",
        ),
        (("user", "add", "office1", "--role", "office", "--title", "成员"), "只用于标准化工作领导小组成员"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert dump(db_url) == before
