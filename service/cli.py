"""The `zhibu` command: parse arguments, call one `workflows` function per command, print.

Each command that writes is one unit of work (one transaction). Errors print a readable message
in Chinese on stderr and exit non-zero; nothing is half-written.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any

import click

from service import create_app
from workflows import (
    audit,
    catalog,
    consistency,
    demo,
    inbox,
    instances,
    obligations,
    org,
    runner,
    specs,
    tasks,
)
from workflows.clock import LOCAL_TZ, clock_from_env
from workflows.db import database_url, init_db, make_engine, make_session_factory, transaction
from workflows.errors import FormInvalid, ZhibuError


def _default_actor() -> str:
    return f"cli:{getpass.getuser()}"


def _factory():
    return make_session_factory(make_engine(database_url()))


def _parse_json(value: str | None, option: str = "--data") -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}）", param_hint=option
        ) from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter('应为 JSON 对象，例如 \'{"title": "..."}\'', param_hint=option)
    return parsed


def _fail(exc: ZhibuError) -> None:
    click.echo(f"错误：{exc.message}" if not isinstance(exc, FormInvalid) else "错误：表单填写有误", err=True)
    if isinstance(exc, FormInvalid):
        for field, message in exc.errors.items():
            click.echo(f"  {field}：{message}", err=True)
    sys.exit(1)


class _Group(click.Group):
    """Turns domain errors into a message and exit code 1 for every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZhibuError as exc:
            _fail(exc)


@click.group(cls=_Group)
def main() -> None:
    """支部：基层党支部建设标准化流程管理。"""


@main.group(cls=_Group)
def db() -> None:
    """数据库管理。"""


@db.command("init")
@click.option("--actor", default=_default_actor)
def db_init(actor: str) -> None:
    """创建数据库表并部署 bpmn/ 中的流程。"""
    url = database_url()
    engine = make_engine(url)
    init_db(engine)
    now = clock_from_env().now()
    with transaction(make_session_factory(engine)) as session:
        created = specs.deploy_all(session, now=now, actor=actor)
        if catalog.active(session, required=False) is None:
            catalog.load(session, catalog.read_file(catalog.DEFAULT_CATALOG), now=now, actor=actor)
    click.echo(f"数据库已就绪：{engine.url.render_as_string(hide_password=True)}")
    click.echo(f"新部署流程版本 {len(created)} 个")


@main.command()
@click.option("--actor", default=_default_actor)
def deploy(actor: str) -> None:
    """部署 bpmn/ 与 forms/ 的变更（内容未变则不产生新版本）。"""
    with transaction(_factory()) as session:
        created = specs.deploy_all(session, now=clock_from_env().now(), actor=actor)
        lines = [f"{v.process_id} 版本 {v.id}（{v.content_hash[:12]}）" for v in created]
    click.echo("\n".join(lines) if lines else "没有变更，无需部署")


@main.command()
@click.argument("process_id")
@click.option("--data", "data_text", default=None, help="启动数据（JSON 对象）")
@click.option("--actor", default=_default_actor)
def start(process_id: str, data_text: str | None, actor: str) -> None:
    """启动流程，输出新实例编号。"""
    data = _parse_json(data_text)
    clock = clock_from_env()
    row = runner.start(_factory(), process_id, data, actor=actor, clock=clock)
    click.echo(row.id)


@main.command("tasks")
@click.option("--instance", "instance_id", type=int, default=None, help="只列出该实例的任务")
@click.option("--user", "username", default=None, help="只列出该用户待办箱中的任务")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（含表单 schema 与数据）")
def list_tasks(instance_id: int | None, username: str | None, as_json: bool) -> None:
    """列出待办的人工任务。"""
    now = clock_from_env().now()
    with _factory()() as session:
        if username is None:
            sections = [("", tasks.open_rows(session, instance_id), True)]
        else:
            box = inbox.inbox(session, username)
            sections = [("待办", box.todo, True), ("只读关注", box.watching, False)]
            if instance_id is not None:
                sections = [
                    (t, [r for r in rows if r.instance_id == instance_id], a) for t, rows, a in sections
                ]
        if as_json:
            items = [
                {**instances.task_details(session, row), "can_act": act}
                for _, rows, act in sections
                for row in rows
            ]
            click.echo(json.dumps(items, ensure_ascii=False, indent=2))
            return
        for heading, rows, _ in sections:
            if heading:
                click.echo(f"【{heading}】{len(rows)} 项")
            for row in rows:
                click.echo(_task_line(row, now))
        if not any(rows for _, rows, _ in sections):
            click.echo("没有待办任务")


def _task_line(row, now) -> str:
    due = row.due_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if row.due_at else "—"
    late = "  ⚠ 已逾期" if row.due_at and row.due_at <= now else ""
    late += f"（催办第 {row.escalation_level} 级）" if row.escalation_level else ""
    where = f"  {row.branch}" if row.branch else ""
    who = f"  @{row.assignee}" if row.assignee else ""
    about = f"：{row.subject}" if row.subject else ""
    lane = f"[{row.lane or ''}]"
    return f"{row.id}  实例{row.instance_id}{where}  {row.title}{about}  {lane}{who}  期限 {due}{late}"


@main.command()
@click.argument("task_id")
@click.option("--data", "data_text", default=None, help="表单数据（JSON 对象）")
@click.option("--actor", default=_default_actor)
def complete(task_id: str, data_text: str | None, actor: str) -> None:
    """提交并完成一个人工任务。"""
    data = _parse_json(data_text)
    clock = clock_from_env()
    record = runner.complete(_factory(), task_id, data, actor=actor, clock=clock)
    click.echo(f"已完成：{record.title}（实例 {record.instance_id}）")


@main.command()
def tick() -> None:
    """触发所有已到期的定时器一次，输出触发数量。"""
    result = runner.sweep(_factory(), clock=clock_from_env())
    click.echo(result.fired)
    for instance_id, message in result.failed.items():
        click.echo(f"实例 {instance_id} 定时器执行失败：{message}", err=True)
    if result.failed:
        sys.exit(1)


@main.command()
def check() -> None:
    """核对任务索引、定时器索引与流程实际状态。"""
    with _factory()() as session:
        problems = list(consistency.mismatches(session))
    for line in problems:
        click.echo(line)
    if problems:
        click.echo(f"发现 {len(problems)} 处不一致", err=True)
        sys.exit(1)
    click.echo("0 处不一致")


@main.group(cls=_Group)
def branch() -> None:
    """党支部管理。"""


@branch.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--members", default=0, type=click.IntRange(min=0), help="党员人数")
@click.option("--classification", type=click.Choice(org.CLASSIFICATIONS), default=None, help="分类")
@click.option("--term-start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="支委会任期开始日期")
@click.option("--term-end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="支委会任期届满日期")
@click.option("--actor", default=_default_actor)
def branch_add(
    code: str, name: str, members: int, classification: str | None, term_start, term_end, actor: str
) -> None:
    """新增党支部。"""
    with transaction(_factory()) as session:
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


@main.group(cls=_Group)
def group() -> None:
    """党小组管理。"""


@group.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--leader", default=None, help="党小组长用户名（须为本党支部人员）")
@click.option("--actor", default=_default_actor)
def group_add(code: str, name: str, leader: str | None, actor: str) -> None:
    """在党支部下设立党小组。"""
    with transaction(_factory()) as session:
        org.add_group(session, code, name, leader=leader, now=clock_from_env().now(), actor=actor)
    click.echo(f"已设立党小组：{code} {name}")


@main.group(cls=_Group)
def user() -> None:
    """人员与角色管理。"""


@user.command("add")
@click.argument("username")
@click.option("--password", required=True, help="初始密码（至少 6 位）")
@click.option("--role", required=True, type=click.Choice(list(org.ROLES)), help="角色")
@click.option("--branch", "branch_code", default=None, help="所在党支部编号（支部角色必填）")
@click.option("--name", "display_name", default=None, help="姓名")
@click.option("--actor", default=_default_actor)
def user_add(
    username: str, password: str, role: str, branch_code: str | None, display_name: str | None, actor: str
) -> None:
    """新增人员，或为已有人员增加一个角色。"""
    with transaction(_factory()) as session:
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


@main.group(cls=_Group)
def contact() -> None:
    """党委委员联系点。"""


@contact.command("add")
@click.argument("username")
@click.argument("code")
@click.option("--actor", default=_default_actor)
def contact_add(username: str, code: str, actor: str) -> None:
    """指定党委委员联系某党支部。"""
    with transaction(_factory()) as session:
        org.add_contact(session, username, code, now=clock_from_env().now(), actor=actor)
    click.echo(f"{username} 联系党支部 {code}")


@main.group(cls=_Group)
def programme() -> None:
    """年度标准化工作。"""


@programme.command("start")
@click.argument("year", type=click.IntRange(2000, 2100))
@click.option("--deadlines", default=None, help="四个阶段截止日期，逗号分隔（默认 7-31,8-31,12-31,次年1-31）")
@click.option("--actor", default=_default_actor)
def programme_start(year: int, deadlines: str | None, actor: str) -> None:
    """启动年度标准化工作：为每个党支部启动五个阶段的流程。"""
    days = [d.strip() for d in deadlines.split(",")] if deadlines else None
    row = runner.start_programme(_factory(), year, days, actor=actor, clock=clock_from_env())
    click.echo(row.id)


@main.command("demo")
def demo_command() -> None:
    """载入演示公司（12 个党支部、各角色人员、进行中的年度工作）；已有组织数据时跳过。"""
    made = demo.run(_factory(), clock_from_env())
    if made is None:
        click.echo("数据库中已有组织数据，跳过演示数据")
        return
    click.echo(
        f"演示公司已载入：{made['year']} 年度，执行 {made['steps']} 个步骤，"
        f"流程实例 {made['instances']} 个，待办任务 {made['open_tasks']} 项"
    )


@main.group(name="obligations", cls=_Group)
def obligations_group() -> None:
    """党支部例行工作（三会一课、主题党日等）。"""


@obligations_group.command("generate")
def obligations_generate() -> None:
    """为当前周期生成尚未生成的例行工作，输出新生成数量。"""
    click.echo(runner.generate_occurrences(_factory(), clock=clock_from_env()))


@obligations_group.command("missed")
@click.argument("code")
def obligations_missed(code: str) -> None:
    """列出党支部逾期未完成（或逾期补记）的例行工作。"""
    with _factory()() as session:
        org.branch(session, code)
        rows = obligations.missed(session, code, clock_from_env().now())
    for row in rows:
        who = f"（{row['username']}）" if row["username"] else ""
        click.echo(f"{row['period']}  {row['name']}{who}  {row['status']}")
    if not rows:
        click.echo("没有缺项")


@main.group(name="catalog", cls=_Group)
def catalog_group() -> None:
    """标准条目目录。"""


@catalog_group.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--actor", default=_default_actor)
def catalog_load(path: str, actor: str) -> None:
    """加载（替换）标准条目目录。"""
    with transaction(_factory()) as session:
        loaded = catalog.load(session, catalog.read_file(path), now=clock_from_env().now(), actor=actor)
        count = len(catalog.items(session, loaded.id))
        name = loaded.name
    click.echo(f"已启用目录：{name}（{count} 个条目）")


@main.group(name="audit", cls=_Group)
def audit_group() -> None:
    """审计日志。"""


@audit_group.command("verify")
def audit_verify() -> None:
    """校验审计日志的哈希链。"""
    with _factory()() as session:
        result = audit.verify(session)
    if result.ok:
        click.echo(f"审计链完整：共 {result.events} 条事件")
        return
    click.echo(f"审计链已被破坏：{result.reason}", err=True)
    sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve(host: str, port: int) -> None:
    """启动网页服务。"""
    create_app().run(host=host, port=port)
