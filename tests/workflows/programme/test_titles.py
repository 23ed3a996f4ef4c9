"""Leadership-group titles (组长/副组长/成员): organization data, checked, listed with the people."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.support import seed_people
from workflows.engine.db import transaction
from workflows.engine.errors import Conflict, InvalidInput
from workflows.engine.models import AuditEvent
from workflows.programme import demo, org

PASSWORD = "Zhibu-test-2026"


@pytest.fixture
def people(factory, clock):
    with transaction(factory) as session:
        seed_people(session, clock.now())
    return factory


def add_leader(session, clock, username: str, title: str | None, name: str | None = None) -> org.User:
    return org.add_user(
        session,
        username,
        password=PASSWORD,
        role="leader",
        title=title,
        display_name=name,
        now=clock.now(),
        actor="tester",
    )


def test_leaders_carry_their_titles_and_are_listed_by_rank(people, clock):
    with transaction(people) as session:
        add_leader(session, clock, "ld_member", "成员", "王成员")
        add_leader(session, clock, "ld_head", "组长", "赵组长")
        add_leader(session, clock, "ld_untitled", None, "钱某")
        add_leader(session, clock, "ld_deputy", "副组长", "孙副组长")
    with people() as session:
        group = org.leadership_group(session)
        assert [(u.username, u.title) for u in group] == [
            ("ld_head", "组长"),
            ("ld_deputy", "副组长"),
            ("ld_member", "成员"),
            ("ld_untitled", None),
        ]
        assert [u.shown_name for u in group] == [
            "赵组长（组长）",
            "孙副组长（副组长）",
            "王成员（成员）",
            "钱某",
        ]
        assert org.user(session, "office1").shown_name == "office1"
        granted = [
            json.loads(e.data)
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "org.role_granted"))
        ]
        assert {"username": "ld_head", "role": "leader", "branch": None, "title": "组长"} in granted


def test_a_title_is_only_one_of_three_and_only_for_the_leadership_group(people, clock):
    with transaction(people) as session:
        with pytest.raises(InvalidInput, match="组长/副组长/成员"):
            add_leader(session, clock, "ld_x", "主任")
        with pytest.raises(InvalidInput, match="只用于标准化工作领导小组成员"):
            org.add_user(
                session, "off_x", password=PASSWORD, role="office", title="组长", now=clock.now(), actor="t"
            )
        with pytest.raises(InvalidInput, match="不是标准化工作领导小组成员"):
            org.set_title(session, "office1", "成员", now=clock.now(), actor="t")
    with people() as session:
        assert session.get(org.User, "ld_x") is None and session.get(org.User, "off_x") is None


def test_a_title_given_again_changes_it_and_is_audited(people, clock):
    with transaction(people) as session:
        add_leader(session, clock, "ld_a", "成员")
    with transaction(people) as session:
        org.add_user(
            session, "ld_a", password=None, role="leader", title="副组长", now=clock.now(), actor="t"
        )
    with transaction(people) as session, pytest.raises(Conflict, match="已有该角色"):
        org.add_user(
            session, "ld_a", password=None, role="leader", title="副组长", now=clock.now(), actor="t"
        )
    with people() as session:
        assert org.user(session, "ld_a").title == "副组长"
        [changed] = session.scalars(select(AuditEvent).where(AuditEvent.action == "org.title_set"))
        assert json.loads(changed.data) == {"username": "ld_a", "title": "副组长", "before": "成员"}


def test_the_demo_leadership_group_has_a_head_and_a_deputy():
    leaders = [p for p in demo.content()["company"] if p["role"] == "leader"]
    assert sorted(p["title"] for p in leaders) == ["副组长", "组长"]
