"""What inspectors use: the trail with filters and exports, a branch's dossier, a process on its diagram."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Blueprint, abort, render_template, request

from service import exports, tasks
from service.guard import int_arg
from service.web import clock, db, signed_in, status_of, who
from workflows.deadlines import escalation
from workflows.engine import audit
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.errors import ZhibuError
from workflows.programme import inbox, inspection, org, trail_text

bp = Blueprint("inspect", __name__)
# 内容 is the event in words; the raw JSON stays beside it for machines (and for the hash).
TRAIL_HEADERS = [
    "序号",
    "时间",
    "操作人",
    "事件",
    "流程实例",
    "任务",
    "党支部",
    "内容",
    "哈希",
    "步骤",
    "原始数据",
]
ACTIONS = {
    "instance.started": "发起流程",
    "instance.completed": "流程结束",
    "task.completed": "办理任务",
    "timer.fired": "期限到达",
    "message.sent": "发出消息",
    "message.received": "收到消息",
    "message.delivered": "消息送达",
    "step.failed": "执行失败",
    "notification.sent": "发出通知",
    "notice.filed": "通报批评",
    "spotcheck.drawn": "抽查抽取",
    "timer.recomputed": "期限重算",
    "evidence.uploaded": "上传佐证材料",
    "task.claimed": "签收任务",
    "task.unclaimed": "退回签收",
    "task.reassigned": "转办任务",
    "task.commented": "发表意见",
    "auth.signed_in": "登录",
    "auth.signed_out": "退出登录",
    "auth.token_issued": "签发接口令牌",
    "auth.token_revoked": "吊销接口令牌",
    "auth.credentials_ended": "结束全部会话和令牌",
    "org.password_changed": "修改密码",
}


def _day(name: str) -> datetime | None:
    text = request.args.get(name, "").strip()
    try:
        day = datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ) if text else None
    except ValueError:
        abort(400, f"日期“{text}”格式应为 YYYY-MM-DD")
    if day is not None and not 2000 <= day.year <= 2200:  # the trail's years; past them dates overflow
        abort(400, f"日期“{text}”超出范围（2000—2200 年）")
    return day


PAGE = 200


def _filters() -> dict:
    until = _day("until")
    return {
        "branches": inbox.readable_branches(who()),
        "branch": request.args.get("branch") or None,
        "actor": request.args.get("actor") or None,
        "process": request.args.get("process") or None,
        "instance_id": int_arg("instance_id", low=1),
        "since": _day("since"),
        "until": until + timedelta(days=1) if until else None,
    }


def _all_cells():
    names = trail_text.labels(db())
    return (_cells(e, names) for e in audit.each_event(db(), **_filters()))


def _cells(event, names: trail_text.Labels) -> list:
    return [
        event.seq,
        event.occurred_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S"),
        event.actor,
        ACTIONS.get(event.action, event.action),
        event.instance_id,
        event.bpmn_id,
        event.branch,
        trail_text.describe(names, event, limit=10_000),
        event.hash,
        names.steps.get(event.bpmn_id or "", ""),
        event.data,
    ]


@bp.get("/trail")
@signed_in
def trail_page():
    page = int_arg("page", 1, low=1, high=100_000)
    # One more than a page tells whether a next page exists.
    events = audit.events(db(), limit=PAGE + 1, offset=(page - 1) * PAGE, **_filters())
    verification = audit.verify(db())
    return render_template(
        "trail.html",
        events=events[:PAGE],
        more=len(events) > PAGE,
        page=page,
        actions=ACTIONS,
        names=trail_text.labels(db()),
        describe=trail_text.describe,
        verification=verification,
        processes=tasks.PROCESSES,
    )


@bp.get("/trail.xlsx")
@signed_in
def trail_xlsx():
    return exports.xlsx("审计记录", TRAIL_HEADERS, _all_cells(), "审计记录.xlsx")


@bp.get("/trail.csv")
@signed_in
def trail_csv():
    return exports.csv_file(TRAIL_HEADERS, _all_cells(), "审计记录.csv")


@bp.get("/branches/<code>/dossier")
@signed_in
def dossier_page(code: str):
    branches = inbox.readable_branches(who())
    try:
        branch = org.branch(db(), code)
    except ZhibuError as exc:
        abort(status_of(exc), exc.message)
    if branches is not None and code not in branches:
        abort(403, "无权查看该党支部的档案")
    now = clock().now()
    lines = inspection.dossier(db(), code, now)
    events = audit.events(db(), branches=None, branch=code, limit=5000)
    late = sum(1 for line in lines if line.on_time is False)
    return render_template(
        "dossier.html",
        branch=branch,
        lines=lines,
        notice_lines=escalation.notice_lines(db(), code),
        processes=tasks.PROCESSES,
        events=events,
        actions=ACTIONS,
        names=trail_text.labels(db()),
        describe=trail_text.describe,
        late=late,
        now=now,
    )


@bp.get("/instances/<int:instance_id>")
@signed_in
def process_page(instance_id: int):
    try:
        view = inspection.process_view(db(), instance_id, clock().now())
    except ZhibuError as exc:
        abort(status_of(exc), exc.message)
    if not inspection.may_read(db(), who(), view.instance):
        abort(403, "无权查看该流程")
    markers = {"done": view.done, "current": view.current, "late": view.late}
    return render_template(
        "process.html",
        view=view,
        markers=json.dumps(markers),
        actions=ACTIONS,
        names=trail_text.labels(db()),
        describe=trail_text.describe,
    )
