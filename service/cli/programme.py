"""Commands for the organization, the standard catalog, the programme and recurring obligations."""

from __future__ import annotations

import click

from service.cli.common import Group, default_actor, factory
from workflows.engine.clock import LOCAL_TZ, clock_from_env
from workflows.engine.db import transaction
from workflows.programme import catalog, closing, credentials, obligations, org, spotcheck, units


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
@click.option(
    "--password", default=None, help="初始密码（新人员必填：至少 10 个字符，不能是用户名或常见密码）"
)
@click.option("--role", required=True, type=click.Choice(list(org.ROLES)), help="角色")
@click.option("--branch", "branch_code", default=None, help="所在党支部编号（支部角色必填）")
@click.option("--name", "display_name", default=None, help="姓名")
@click.option("--title", default=None, help=f"领导小组职务（仅角色 leader）：{'/'.join(org.TITLES)}")
@click.option("--actor", default=default_actor)
def user_add(
    username: str,
    password: str | None,
    role: str,
    branch_code: str | None,
    display_name: str | None,
    title: str | None,
    actor: str,
) -> None:
    """新增人员，或为已有人员增加一个角色（不改密码；改密码用 user passwd）；领导小组成员可带职务。"""
    with transaction(factory()) as session:
        found = session.get(org.User, username.strip())
        existed = found is not None
        had_role = existed and (role, branch_code) in org.grants(session, found.username)
        org.add_user(
            session,
            username,
            password=password,
            role=role,
            branch_code=branch_code,
            display_name=display_name,
            title=title,
            now=clock_from_env().now(),
            actor=actor,
        )
    where = f"（{branch_code}）" if branch_code else ""
    if title is not None:
        where += f"，职务：{title}"
    if had_role:
        click.echo(f"{username} 已是{org.ROLES[role]}成员：职务改为 {title}")
    elif existed:
        click.echo(f"{username} 已存在：已增加角色 {org.ROLES[role]}{where}，密码未更改")
    else:
        click.echo(f"已新增人员 {username}，授予角色：{org.ROLES[role]}{where}")


@user.command("passwd")
@click.argument("username")
@click.option(
    "--password",
    prompt="新密码",
    hide_input=True,
    confirmation_prompt="再次输入新密码",
    help="新密码（至少 10 个字符，不能是用户名或常见密码）",
)
@click.option("--actor", default=default_actor)
def user_passwd(username: str, password: str, actor: str) -> None:
    """修改人员密码；其已登录的会话和 API 令牌随即失效。"""
    with transaction(factory()) as session:
        ended = org.set_password(session, username, password, now=clock_from_env().now(), actor=actor)
    click.echo(f"已修改 {username} 的密码，结束了 {ended} 个会话或令牌")


@click.group(cls=Group)
def token() -> None:
    """API 令牌：列出与吊销。"""


@token.command("list")
@click.option("--user", "username", default=None, help="只列出此人的令牌")
def token_list(username: str | None) -> None:
    """列出仍然有效的 API 令牌（编号、人员、签发与到期时间）。"""
    with factory()() as session:
        rows = credentials.live(session, now=clock_from_env().now(), username=username, kind="token")
        for row in rows:
            issued = row.created_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
            expires = row.expires_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
            click.echo(f"{row.id}\t{row.username}\t签发 {issued}\t到期 {expires}")
    if not rows:
        click.echo("没有有效的 API 令牌")


@token.command("revoke")
@click.argument("token_id", required=False, type=click.IntRange(1, 2**31 - 1))
@click.option("--user", "username", default=None, help="吊销此人的全部令牌和会话")
@click.option("--actor", default=default_actor)
def token_revoke(token_id: int | None, username: str | None, actor: str) -> None:
    """吊销一个 API 令牌（按编号），或用 --user 结束某人的全部令牌和会话。"""
    if (token_id is None) == (username is None):
        raise click.UsageError("请给出令牌编号，或用 --user 指定人员（二者取一）")
    now = clock_from_env().now()
    with transaction(factory()) as session:
        if token_id is not None:
            credentials.end(session, token_id, now=now, actor=actor)
            message = f"已吊销令牌 {token_id}"
        else:
            org.user(session, username)
            ended = credentials.end_all(session, username, now=now, actor=actor)
            message = f"已结束 {username} 的 {ended} 个令牌或会话"
    click.echo(message)


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


@programme.command("close")
@click.argument("year", type=click.IntRange(2000, 2100))
@click.option("--reason", required=True, help="结束理由（如：启动新年度）")
@click.option("--actor", default=default_actor)
def programme_close(year: int, reason: str, actor: str) -> None:
    """结束年度工作：仍在进行的党支部流程随之结束，未销号的整改事项结转下一年度。"""
    done = closing.close_programme(factory(), year, reason, actor=actor, clock=clock_from_env())
    if done.closed:
        click.echo(f"{year} 年度已结束：结束党支部流程 {done.ended} 个，结转整改事项 {done.carried} 项")
    else:
        click.echo(f"已通知 {year} 年度流程结束（流程正忙，由调度程序稍后完成）")


@click.group(name="obligations", cls=Group)
def obligations_group() -> None:
    """党支部例行工作（三会一课、主题党日等）。"""


@obligations_group.command("generate")
def obligations_generate() -> None:
    """生成到今天应有而尚未生成的例行工作（含调度程序停止期间漏生成的周期），输出新生成数量。"""
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


@click.group(name="spotcheck", cls=Group)
def spotcheck_group() -> None:
    """督查抽查：定期抽查与抽取结果复核。"""


@spotcheck_group.command("scheduled")
def spotcheck_scheduled() -> None:
    """启动已到日期、尚未启动的定期抽查（data/spot_checks.json），输出启动数量。"""
    click.echo(units.start_scheduled_spot_checks(factory(), clock=clock_from_env()))


@spotcheck_group.command("verify")
def spotcheck_verify() -> None:
    """按审计记录逐次重算每一次抽取（随机抽查、定期抽查）；有不符的退出码为 1。"""
    with factory()() as session:
        draws = spotcheck.recorded_draws(session)
    for each in draws:
        when = each.occurred_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
        plan = f"（{each.schedule['year']}年{each.schedule['name']}）" if each.schedule else ""
        verdict = "可复核" if each.reproduced else "不符"
        drawn = "、".join(each.drawn) or "无"
        click.echo(f"{each.seq}\t{when}\t{each.kind}{plan}\t抽取 {each.count} 个：{drawn}\t{verdict}")
    failed = [each for each in draws if not each.reproduced]
    click.echo(f"共 {len(draws)} 次抽取，{len(draws) - len(failed)} 次可复核，{len(failed)} 次不符")
    if failed:
        raise SystemExit(1)


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
