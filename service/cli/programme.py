"""Commands for the organization, the standard catalog, the programme and recurring obligations."""

from __future__ import annotations

import click

from service.cli.common import Group, default_actor, factory
from workflows.engine.clock import clock_from_env
from workflows.engine.db import transaction
from workflows.programme import catalog, obligations, org, units


@click.group(cls=Group)
def branch() -> None:
    """党支部管理。"""


@branch.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--members", default=0, type=click.IntRange(min=0), help="党员人数")
@click.option("--classification", type=click.Choice(org.CLASSIFICATIONS), default=None, help="分类")
@click.option("--term-start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="支委会任期开始日期")
@click.option("--term-end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="支委会任期届满日期")
@click.option("--actor", default=default_actor)
def branch_add(
    code: str, name: str, members: int, classification: str | None, term_start, term_end, actor: str
) -> None:
    """新增党支部。"""
    with transaction(factory()) as session:
        org.add_branch(
            session,
            code,
            name,
            members=members,
            classification=classification,
            term_start=term_start.date() if term_start else None,
            term_end=term_end.date() if term_end else None,
            now=clock_from_env().now(),
            actor=actor,
        )
    click.echo(f"已新增党支部：{code} {name}")


@click.group(cls=Group)
def group() -> None:
    """党小组管理。"""


@group.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--leader", default=None, help="党小组长用户名（须为本党支部人员）")
@click.option("--actor", default=default_actor)
def group_add(code: str, name: str, leader: str | None, actor: str) -> None:
    """在党支部下设立党小组。"""
    with transaction(factory()) as session:
        org.add_group(session, code, name, leader=leader, now=clock_from_env().now(), actor=actor)
    click.echo(f"已设立党小组：{code} {name}")


@click.group(cls=Group)
def user() -> None:
    """人员与角色管理。"""


@user.command("add")
@click.argument("username")
@click.option("--password", required=True, help="初始密码（至少 6 位）")
@click.option("--role", required=True, type=click.Choice(list(org.ROLES)), help="角色")
@click.option("--branch", "branch_code", default=None, help="所在党支部编号（支部角色必填）")
@click.option("--name", "display_name", default=None, help="姓名")
@click.option("--actor", default=default_actor)
def user_add(
    username: str, password: str, role: str, branch_code: str | None, display_name: str | None, actor: str
) -> None:
    """新增人员，或为已有人员增加一个角色。"""
    with transaction(factory()) as session:
        org.add_user(
            session,
            username,
            password=password,
            role=role,
            branch_code=branch_code,
            display_name=display_name,
            now=clock_from_env().now(),
            actor=actor,
        )
    where = f"（{branch_code}）" if branch_code else ""
    click.echo(f"已为 {username} 授予角色：{org.ROLES[role]}{where}")


@click.group(cls=Group)
def contact() -> None:
    """党委委员联系点。"""


@contact.command("add")
@click.argument("username")
@click.argument("code")
@click.option("--actor", default=default_actor)
def contact_add(username: str, code: str, actor: str) -> None:
    """指定党委委员联系某党支部。"""
    with transaction(factory()) as session:
        org.add_contact(session, username, code, now=clock_from_env().now(), actor=actor)
    click.echo(f"{username} 联系党支部 {code}")


@click.group(cls=Group)
def programme() -> None:
    """年度标准化工作。"""


@programme.command("start")
@click.argument("year", type=click.IntRange(2000, 2100))
@click.option("--deadlines", default=None, help="四个阶段截止日期，逗号分隔（默认 7-31,8-31,12-31,次年1-31）")
@click.option("--actor", default=default_actor)
def programme_start(year: int, deadlines: str | None, actor: str) -> None:
    """启动年度标准化工作：为每个党支部启动五个阶段的流程。"""
    days = [d.strip() for d in deadlines.split(",")] if deadlines else None
    row = units.start_programme(factory(), year, days, actor=actor, clock=clock_from_env())
    click.echo(row.id)


@click.group(name="obligations", cls=Group)
def obligations_group() -> None:
    """党支部例行工作（三会一课、主题党日等）。"""


@obligations_group.command("generate")
def obligations_generate() -> None:
    """为当前周期生成尚未生成的例行工作，输出新生成数量。"""
    click.echo(units.generate_occurrences(factory(), clock=clock_from_env()))


@obligations_group.command("missed")
@click.argument("code")
def obligations_missed(code: str) -> None:
    """列出党支部逾期未完成（或逾期补记）的例行工作。"""
    with factory()() as session:
        org.branch(session, code)
        rows = obligations.missed(session, code, clock_from_env().now())
    for row in rows:
        who = f"（{row['username']}）" if row["username"] else ""
        click.echo(f"{row['period']}  {row['name']}{who}  {row['status']}")
    if not rows:
        click.echo("没有缺项")


@click.group(name="catalog", cls=Group)
def catalog_group() -> None:
    """标准条目目录。"""


@catalog_group.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--actor", default=default_actor)
def catalog_load(path: str, actor: str) -> None:
    """加载（替换）标准条目目录。"""
    with transaction(factory()) as session:
        loaded = catalog.load(session, catalog.read_file(path), now=clock_from_env().now(), actor=actor)
        count = len(catalog.items(session, loaded.id))
        name = loaded.name
    click.echo(f"已启用目录：{name}（{count} 个条目）")
