"""Commands for deadlines: the scheduler, the working-day calendar, failing timers, notification settings,
and the notices of criticism (通报) the escalation ladder filed."""

from __future__ import annotations

import contextlib
import json

import click

from service import logs, scheduler
from service.cli.common import Group, default_actor, factory
from workflows.deadlines import calendar, escalation, ical, jobs, notify
from workflows.engine import interventions, timers
from workflows.engine.clock import LOCAL_TZ, clock_from_env
from workflows.engine.db import transaction
from workflows.engine.errors import NotFound
from workflows.programme import org


@click.command("scheduler")
@click.option("--interval", default=30, type=click.IntRange(min=1), help="定时器扫描间隔（秒）")
@click.option("--once", is_flag=True, help="每项任务执行一次后退出")
def scheduler_command(interval: int, once: bool) -> None:
    """后台调度：触发到期定时器、生成例行工作、发送通知与每日提醒。"""
    if once:
        done = scheduler.run_once(factory())
        sweep = done["sweep"]
        click.echo(f"触发定时器 {sweep.fired} 个（{sweep.instances} 个实例，失败 {len(sweep.failed)} 个）")
        click.echo(f"发送通知 {done['deliver'].sent} 条，失败 {done['deliver'].failed} 条")
        click.echo(f"新生成例行工作 {done['obligations']} 项，每日提醒 {done['digests']} 份")
        return
    logs.configure()  # one JSON line per job on stderr
    click.echo(f"调度进程已启动（每 {interval} 秒扫描一次），Ctrl+C 退出")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.run_forever(factory(), interval=interval)


@click.group(name="calendar", cls=Group)
def calendar_group() -> None:
    """工作日历（节假日与调休），供法定工作日期限使用。"""


def _recompute(actor: str) -> None:
    moved = jobs.recompute_deadlines(factory(), clock=clock_from_env(), actor=actor)
    click.echo(f"已按新日历重新计算期限：{moved} 个流程实例的期限有变化")


@calendar_group.command("add")
@click.argument("day", type=click.DateTime(["%Y-%m-%d"]))
@click.argument("kind", type=click.Choice(list(calendar.KINDS)))
@click.option("--name", default="", help="名称，如“春节”")
@click.option("--actor", default=default_actor)
def calendar_add(day, kind: str, name: str, actor: str) -> None:
    """登记一天为休息日（holiday）或调休工作日（workday）。"""
    with transaction(factory()) as session:
        calendar.add_day(session, day.date(), kind, name, now=clock_from_env().now(), actor=actor)
    click.echo(f"{day.date().isoformat()} 已登记为{calendar.KINDS[kind]}")
    _recompute(actor)


@calendar_group.command("remove")
@click.argument("day", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--actor", default=default_actor)
def calendar_remove(day, actor: str) -> None:
    """删除一天的登记。"""
    with transaction(factory()) as session:
        if not calendar.remove_day(session, day.date(), now=clock_from_env().now(), actor=actor):
            raise NotFound(f"{day.date().isoformat()} 没有登记")
    click.echo(f"已删除 {day.date().isoformat()} 的登记")
    _recompute(actor)


@calendar_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--actor", default=default_actor)
def calendar_import(path: str, actor: str) -> None:
    """从 CSV（日期,类型,名称）导入一年的节假日与调休安排。"""
    with open(path, encoding="utf-8") as handle:
        rows = calendar.parse_csv(handle.read())
    with transaction(factory()) as session:
        now = clock_from_env().now()
        for day, kind, name in rows:
            calendar.add_day(session, day, kind, name, now=now, actor=actor)
    click.echo(f"已导入 {len(rows)} 天")
    _recompute(actor)


@calendar_group.command("list")
@click.option("--year", type=int, default=None)
def calendar_list(year: int | None) -> None:
    """列出管理员登记的日期。"""
    with factory()() as session:
        rows = calendar.entries(session, year)
        for row in rows:
            click.echo(f"{row.day.isoformat()}  {calendar.KINDS[row.kind]}  {row.name}")
    if not rows:
        click.echo("没有登记（使用 chinesecalendar 数据，其后年份按周一至周五计算并标记为“日历未确认”）")


@click.group(name="timers", cls=Group)
def timers_group() -> None:
    """定时器故障处理。"""


@timers_group.command("parked")
def timers_parked() -> None:
    """列出因多次触发失败而暂停的流程实例。"""
    with factory()() as session:
        rows = timers.parked(session)
        for row in rows:
            name = row.title or row.process_id
            click.echo(f"实例 {row.id}  {name}  失败 {row.timer_failures} 次：{row.timer_error}")
    if not rows:
        click.echo("没有暂停的定时器")


@timers_group.command("retry")
@click.argument("instance_id", type=int)
@click.option("--actor", default=default_actor)
def timers_retry(instance_id: int, actor: str) -> None:
    """排除故障后，让实例的定时器重新参与扫描。"""
    with transaction(factory()) as session:
        interventions.retry_timers(session, instance_id, actor=actor, clock=clock_from_env())
    click.echo(f"实例 {instance_id} 的定时器已恢复")


@click.command("notify-prefs")
@click.argument("username")
@click.option("--email", default=None, help="邮箱")
@click.option("--webhook", default=None, help="企业微信/钉钉群机器人 Webhook 地址")
@click.option("--digest/--no-digest", default=True, help="是否接收每日待办提醒")
def notify_prefs(username: str, email: str | None, webhook: str | None, digest: bool) -> None:
    """设置某人的通知方式（站内通知总是开启）。"""
    with transaction(factory()) as session:
        org.user(session, username)
        notify.set_preferences(
            session,
            username,
            email=email,
            webhook_url=webhook,
            email_enabled=email is not None,
            webhook_enabled=webhook is not None,
            digest_enabled=digest,
        )
    click.echo(f"已更新 {username} 的通知方式")


@click.command("feed")
@click.argument("username")
@click.option("--rotate", is_flag=True, help="换一个新地址（旧地址失效）")
def feed_command(username: str, rotate: bool) -> None:
    """输出某人的日历订阅地址（iCalendar，可加到手机日历）。"""
    with transaction(factory()) as session:
        org.user(session, username)
        token = ical.token_for(session, username, now=clock_from_env().now(), rotate=rotate)
    click.echo(f"/calendar/{token}.ics")


NOTICE_HEADERS = ("编号", "通报时间", "党支部", "流程实例", "逾期环节", "事项", "通报内容")


@click.command("notices")
@click.option("--branch", "code", default=None, help="只列出该党支部（编号）的通报")
@click.option("--year", type=click.IntRange(2000, 2200), default=None, help="只列出该年度（北京时间）的通报")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def notices_command(code: str | None, year: int | None, as_json: bool) -> None:
    """列出通报批评（逾期升级到最后一级时自动通报），新的在前。"""
    with factory()() as session:
        if code is not None:
            org.branch(session, code)  # an unknown branch is an error, not an empty list
        lines = escalation.notice_lines(session, code, year=year)
    if as_json:
        items = [
            {
                "id": line.notice.id,
                "branch": line.notice.branch_code,
                "branch_name": line.branch_name,
                "instance_id": line.notice.instance_id,
                "task": line.notice.task_bpmn_id,
                "step": line.step,
                "subject": line.notice.subject,
                "text": line.notice.text,
                "created_at": line.notice.created_at.isoformat(),
            }
            for line in lines
        ]
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    if not lines:
        click.echo("没有符合条件的通报批评" if code or year else "没有通报批评")
        return
    click.echo("\t".join(NOTICE_HEADERS))
    for line in lines:
        notice = line.notice
        where = f"{notice.branch_code} {line.branch_name or ''}".strip() if notice.branch_code else "公司"
        cells = (
            notice.id,
            notice.created_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
            where,
            notice.instance_id,
            line.step,
            notice.subject,
            notice.text,
        )
        click.echo("\t".join(" ".join(str(cell).split()) for cell in cells))
    click.echo(f"共 {len(lines)} 条")
