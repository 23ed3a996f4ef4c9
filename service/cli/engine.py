"""Commands over the engine itself: database, deploy, instances, tasks, timers, audit, serving."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from service import create_app, logs
from service.cli.common import Group, default_actor, factory, parse_json
from workflows import migrations
from workflows.deadlines import calendar
from workflows.engine import audit, checkpoints, consistency, details, runner, specs, tasks
from workflows.engine.clock import LOCAL_TZ, clock_from_env, due_text
from workflows.engine.db import database_url, make_engine, make_session_factory, prepare, transaction
from workflows.programme import catalog, demo, inbox


@click.group(cls=Group)
def db() -> None:
    """数据库管理。"""


@db.command("init")
@click.option("--actor", default=default_actor)
def db_init(actor: str) -> None:
    """创建或升级数据库表结构，并部署 bpmn/ 中的流程。"""
    url = database_url()
    engine = make_engine(url)
    before, after = migrations.upgrade(engine)
    prepare(engine)
    click.echo(_revision_line(before, after))
    now = clock_from_env().now()
    with transaction(make_session_factory(engine)) as session:
        created = specs.deploy_all(session, now=now, actor=actor)
        if catalog.active(session, required=False) is None:
            catalog.load(session, catalog.read_file(catalog.DEFAULT_CATALOG), now=now, actor=actor)
    click.echo(f"数据库已就绪：{engine.url.render_as_string(hide_password=True)}")
    click.echo(f"新部署流程版本 {len(created)} 个")


@db.command("upgrade")
def db_upgrade() -> None:
    """把数据库表结构升级到最新版本（数据保留；已是最新则不变）。"""
    engine = make_engine(database_url())
    before, after = migrations.upgrade(engine)
    prepare(engine)
    click.echo(_revision_line(before, after))
    click.echo(f"数据库：{engine.url.render_as_string(hide_password=True)}")


def _revision_line(before: str | None, after: str | None) -> str:
    if before == after:
        return f"表结构已是最新版本（{after}）"
    if before is None:
        return f"已创建表结构（版本 {after}）"
    return f"表结构已从版本 {before} 升级到 {after}"


@click.command()
@click.option("--actor", default=default_actor)
def deploy(actor: str) -> None:
    """部署 bpmn/ 与 forms/ 的变更（内容未变则不产生新版本）。"""
    with transaction(factory()) as session:
        created = specs.deploy_all(session, now=clock_from_env().now(), actor=actor)
        lines = [f"{v.process_id} 版本 {v.id}（{v.content_hash[:12]}）" for v in created]
    click.echo("\n".join(lines) if lines else "没有变更，无需部署")


@click.command()
@click.argument("process_id")
@click.option("--data", "data_text", default=None, help="启动数据（JSON 对象）")
@click.option("--actor", default=default_actor)
def start(process_id: str, data_text: str | None, actor: str) -> None:
    """启动流程，输出新实例编号。"""
    data = parse_json(data_text)
    clock = clock_from_env()
    row = runner.start(factory(), process_id, data, actor=actor, clock=clock)
    click.echo(row.id)


@click.command("tasks")
@click.option("--instance", "instance_id", type=int, default=None, help="只列出该实例的任务")
@click.option("--user", "username", default=None, help="只列出该用户待办箱中的任务")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（含表单 schema 与数据）")
def list_tasks(instance_id: int | None, username: str | None, as_json: bool) -> None:
    """列出待办的人工任务。"""
    now = clock_from_env().now()
    with factory()() as session:
        work_calendar = calendar.load(session)
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
                {**details.task_details(session, row), "can_act": act}
                for _, rows, act in sections
                for row in rows
            ]
            click.echo(json.dumps(items, ensure_ascii=False, indent=2))
            return
        for heading, rows, _ in sections:
            if heading:
                click.echo(f"【{heading}】{len(rows)} 项")
            for row in rows:
                click.echo(_task_line(row, now, work_calendar))
        if not any(rows for _, rows, _ in sections):
            click.echo("没有待办任务")


def _task_line(row, now, calendar_now) -> str:
    due = due_text(row.due_at) if row.due_at else "—"
    late = "  ⚠ 已逾期" if row.due_at and row.due_at <= now else ""
    if row.due_at and not calendar_now.confirmed_until(now.date(), row.due_at.astimezone(LOCAL_TZ).date()):
        late += "（日历未确认）"
    late += f"（催办第 {row.escalation_level} 级）" if row.escalation_level else ""
    where = f"  {row.branch}" if row.branch else ""
    who = f"  @{row.assignee}" if row.assignee else ""
    about = f"：{row.subject}" if row.subject else ""
    lane = f"[{row.lane or ''}]"
    return f"{row.id}  实例{row.instance_id}{where}  {row.title}{about}  {lane}{who}  期限 {due}{late}"


@click.command()
@click.argument("task_id")
@click.option("--data", "data_text", default=None, help="表单数据（JSON 对象）")
@click.option("--actor", default=default_actor)
def complete(task_id: str, data_text: str | None, actor: str) -> None:
    """提交并完成一个人工任务。"""
    data = parse_json(data_text)
    clock = clock_from_env()
    record = runner.complete(factory(), task_id, data, actor=actor, clock=clock)
    click.echo(f"已完成：{record.title}（实例 {record.instance_id}）")


@click.command()
def tick() -> None:
    """触发所有已到期的定时器一次，输出触发数量。"""
    clock = clock_from_env()
    result = runner.sweep(factory(), clock=clock)
    delivered = runner.deliver_messages(factory(), clock=clock)
    click.echo(result.fired)
    if delivered:
        click.echo(f"投递消息 {delivered} 条", err=True)
    for instance_id, message in result.failed.items():
        click.echo(f"实例 {instance_id} 定时器执行失败：{message}", err=True)
    if result.failed:
        sys.exit(1)


@click.command()
def check() -> None:
    """核对任务索引、定时器索引、消息索引与流程实际状态。"""
    with factory()() as session:
        problems = list(consistency.mismatches(session))
    for line in problems:
        click.echo(line)
    if problems:
        click.echo(f"发现 {len(problems)} 处不一致", err=True)
        sys.exit(1)
    click.echo("0 处不一致")


@click.group(name="audit", cls=Group)
def audit_group() -> None:
    """审计日志。"""


@audit_group.command("verify")
@click.option(
    "--checkpoints",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="同时与此目录中的签名检查点核对（调度器写在 ZHIBU_CHECKPOINT_DIR，默认 instance/checkpoints）",
)
@click.option("--public-key", default=None, help="检查点签名公钥（64 位十六进制；默认取本机签名密钥的公钥）")
def audit_verify(folder: Path | None, public_key: str | None) -> None:
    """校验审计日志的哈希链（带密钥），并与签名检查点核对。"""
    with factory()() as session:
        result = audit.verify(session)
        if result.ok and folder is not None:
            try:
                against = checkpoints.verify(session, folder, trusted=public_key)
                newest = max(checkpoints.read_all(folder, public_key), key=lambda c: c.seq, default=None)
            except (OSError, ValueError) as exc:
                raise click.ClickException(str(exc)) from exc
            if not against.ok:
                result = against
            else:
                click.echo(f"与检查点一致：核对了 {against.events} 条事件（{folder}）")
                click.echo(f"最新检查点：第 {newest.seq} 号事件，写于 {newest.at}；此后的事件只由密钥链保护")
    if result.ok:
        click.echo(f"审计链完整：共 {result.events} 条事件")
        return
    click.echo(f"审计链已被破坏：{result.reason}", err=True)
    sys.exit(1)


@audit_group.command("checkpoint")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="检查点目录（默认 ZHIBU_CHECKPOINT_DIR 或 instance/checkpoints）",
)
def audit_checkpoint(folder: Path | None) -> None:
    """为审计链头写一个签名检查点（调度器每天自动写一次）。"""
    with factory()() as session:
        made = checkpoints.write(session, folder or checkpoints.directory(), now=clock_from_env().now())
    click.echo(f"检查点：第 {made.seq} 号事件，哈希 {made.hash[:16]}…，已写入 {made.path}")
    click.echo(f"签名公钥：{made.public_key}")


@click.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve(host: str, port: int) -> None:
    """启动网页服务（单进程，供试用与开发；生产环境用 gunicorn，见 README“Deploying”）。"""
    logs.configure()  # one JSON line per request on stderr, as under gunicorn
    create_app().run(host=host, port=port)


@click.command("demo")
def demo_command() -> None:
    """载入演示公司（12 个党支部、各角色人员、进行中的年度工作）；已有组织数据时跳过。"""
    made = demo.run(factory(), clock_from_env())
    if made is None:
        click.echo("数据库中已有组织数据，跳过演示数据")
    else:
        click.echo(
            f"演示公司已载入：{made['year']} 年度，执行 {made['steps']} 个步骤，"
            f"流程实例 {made['instances']} 个，待办任务 {made['open_tasks']} 项"
        )
    with factory()() as session:
        logins = demo.logins(session)
    if logins:
        click.echo(
            f"演示账号（密码均为 {demo.content()['password']}），浏览器打开 http://127.0.0.1:5000/ 登录："
        )
        for label, usernames in logins:
            click.echo(f"  {label}：{'、'.join(usernames)}")
