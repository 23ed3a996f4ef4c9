"""The inbox (我的待办 / 已办) and the task page with its form."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for

from service import exports, formdata, guard
from service.guard import int_arg
from service.web import clock, commit, current_user, db, signed_in, status_of, who
from workflows.deadlines import board as board_of
from workflows.deadlines import escalation, notify
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.details import task_details
from workflows.engine.errors import Forbidden, FormInvalid, InvalidInput, ZhibuError
from workflows.programme import actions, coordination, dashboard, evidence, inbox, items, org, overview

bp = Blueprint("tasks", __name__)
VIEWS = {"todo": "待办", "overdue": "已逾期", "watching": "只读关注", "done": "已办"}
PROCESSES = {
    "rectification": "问题整改",
    "branch_programme": "党支部标准化",
    "programme": "年度工作",
    "task_item": "任务清单",
    "spot_check": "督查抽查",
    "obligation": "例行工作",
}


@bp.get("/")
def home():
    return redirect(url_for("tasks.inbox_page" if current_user() else "auth.login"))


@bp.get("/inbox")
@signed_in
def inbox_page():
    view = request.args.get("view", "todo")
    if view not in VIEWS:
        abort(404)
    page = int_arg("page", 1, low=1, high=100_000)
    listing = inbox.search(
        db(),
        current_user().username,
        view=view,
        process=request.args.get("process") or None,
        branch=request.args.get("branch") or None,
        text=(request.args.get("q") or "").strip() or None,
        phase_steps=_phase_steps(int_arg("phase", low=1, high=5)),
        now=clock().now(),
        limit=50,
        offset=(page - 1) * 50,
    )
    return render_template(
        "inbox.html",
        listing=listing,
        view=view,
        views=VIEWS,
        processes=PROCESSES,
        phases=dashboard.PHASES,
        page=page,
        now=clock().now(),
    )


def _phase_steps(phase: int | None) -> list[str] | None:
    if phase is None:
        return None
    return [step for step, number in dashboard.phase_of_step().items() if number == phase]


@bp.get("/dashboard")
@signed_in
def dashboard_page():
    if inbox.readable_branches(who()) is not None:
        abort(403, "工作看板仅对党委工作室、领导小组和督查人员开放")
    board = board_of.build(db(), clock().now())
    return render_template("dashboard.html", board=board, phases=dashboard.PHASES)


@bp.get("/feedback/<int:year>.xlsx")
@signed_in
def feedback_export(year: int):
    if inbox.readable_branches(who()) is not None:
        abort(403, "意见汇总仅对党委工作室、领导小组和督查人员开放")
    names = {b.code: b.name for b in org.active_branches(db())}
    rows = [
        (*row[:-1], row[-1].astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"))
        for row in coordination.feedback_table(db(), year, names)
    ]
    return exports.xlsx(
        f"{year}年度党支部意见汇总", coordination.FEEDBACK_HEADERS, rows, f"{year}年度意见汇总.xlsx"
    )


@bp.get("/notifications")
@signed_in
def notifications_page():
    return render_template("notifications.html", items=notify.inbox(db(), current_user().username, limit=100))


@bp.post("/notifications/read")
@signed_in
def notifications_read():
    notify.mark_read(db(), current_user().username, None, clock().now())
    commit()
    return redirect(url_for("tasks.notifications_page"))


@bp.get("/overview")
@signed_in
def overview_page():
    if inbox.readable_branches(who()) is not None:  # the whole company: office, leadership, inspectors
        abort(403, "党支部概况仅对党委工作室、领导小组和督查人员开放")
    return render_template("overview.html", branches=overview.company(db(), clock().now()))


def _task_page(task_id: str, *, posted: dict | None = None, errors: dict | None = None, status: int = 200):
    record = actions.visible_task(db(), current_user().username, task_id)
    details = task_details(db(), record)
    allowed = actions.permissions(db(), current_user().username, record)
    today = clock().now().astimezone(LOCAL_TZ).date() if allowed.act else None  # only a form being filled in
    shown = formdata.values(details["data"], details["schema"], today)
    if posted is not None:
        shown.update({k: v for k, v in posted.items() if not isinstance(shown.get(k), list)})
        for item in formdata.fields(details["schema"]):
            if item.kind == "rows":
                rows = formdata.parse(details["schema"], posted).get(item.name, [])
                shown[item.name] = rows + [{} for _ in range(formdata.BLANK_ROWS)]
    whole = items.item(db(), record.instance_id) if record.process_id == items.PROCESS_ID else None
    ladder = (
        escalation.schedule(db(), record.process_id, record.bpmn_id, whole.deadline)
        if whole is not None and whole.deadline and record.bpmn_id == "fix"
        else []
    )
    takes_files = "evidence" in ((details["schema"] or {}).get("properties") or {})
    return (
        render_template(
            "task.html",
            files=evidence.of_task(db(), task_id),
            comments=actions.comments(db(), task_id),
            may_claim=allowed.claim,
            may_unclaim=allowed.unclaim,
            may_reassign=allowed.reassign,
            may_comment=allowed.comment,
            people=org.roster(db(), record.branch) if record.branch else [],
            takes_files=takes_files,
            task=record,
            item=whole,
            ladder=ladder,
            details=details,
            fields=formdata.fields(details["schema"]),
            values=shown,
            errors=errors or {},
            may_act=allowed.act,
            now=clock().now(),
        ),
        status,
    )


@bp.get("/tasks/<task_id>")
@signed_in
def task_page(task_id: str):
    try:
        return _task_page(task_id)
    except ZhibuError as exc:
        abort(status_of(exc), exc.message)


def _uploads() -> list[tuple[str, bytes]]:
    return [
        (f.filename, f.read(evidence.MAX_BYTES + 1)) for f in request.files.getlist("files") if f.filename
    ]


@bp.post("/tasks/<task_id>")
@signed_in
def complete(task_id: str):
    """One submit: the evidence files chosen and the form, kept or refused together."""
    user, uploads = current_user().username, _uploads()
    try:
        record = actions.visible_task(db(), user, task_id)
        if uploads:
            actions.attach_evidence(
                db(), user, task_id, uploads, now=clock().now(), root=evidence.store_root()
            )
        data = formdata.parse(task_details(db(), record)["schema"], request.form.to_dict())
        done = actions.complete_as(db(), user, task_id, data, clock=clock())
        commit()
    except (FormInvalid, InvalidInput) as exc:
        db().rollback()
        errors = dict(exc.errors) if isinstance(exc, FormInvalid) else {"files": exc.message}
        if uploads and "files" not in errors:
            errors["files"] = "所选文件尚未保存（表单有误），请改正后重新选择文件一并提交"
        return _task_page(task_id, posted=request.form.to_dict(), errors=errors, status=400)
    except ZhibuError as exc:
        db().rollback()
        abort(status_of(exc), exc.message)
    back = actions.came_back(db(), done)
    if back is not None:  # a check sent the step back: say so, and open it again
        flash(f"未通过核对，已退回：{back[1]}", "warning")
        return redirect(url_for("tasks.task_page", task_id=back[0].id))
    flash(f"已提交：{done.title}")
    return redirect(url_for("tasks.inbox_page"))


def form_rejected(exc: guard.InputRejected):
    """A task form refused at the edge comes back with the message by its field, like any form error;
    None when the request was not a task form of a signed-in person."""
    task_id = (request.view_args or {}).get("task_id")
    if request.endpoint != "tasks.complete" or current_user() is None or not isinstance(task_id, str):
        return None
    db().rollback()
    posted = {k: guard.without_control(v) for k, v in request.form.to_dict().items()}
    try:
        return _task_page(task_id, posted=posted, errors=exc.errors, status=400)
    except ZhibuError:  # no such task, or not theirs: the plain 400 page says what was refused
        return None


@bp.post("/tasks/<task_id>/files")
@signed_in
def upload(task_id: str):
    """Files alone, without submitting the form (for pages that upload as they go)."""
    try:
        uploads = _uploads()
        actions.attach_evidence(
            db(), current_user().username, task_id, uploads, now=clock().now(), root=evidence.store_root()
        )
        commit()
        flash(f"已上传 {len(uploads)} 个文件")
    except InvalidInput as exc:
        db().rollback()
        flash(exc.message)
    except ZhibuError as exc:
        db().rollback()
        abort(status_of(exc), exc.message)
    return redirect(url_for("tasks.task_page", task_id=task_id))


@bp.get("/files/<int:file_id>")
@signed_in
def download(file_id: int):
    try:
        item = evidence.get(db(), file_id)
        actions.visible_task(db(), current_user().username, item.task_id)
    except ZhibuError as exc:
        abort(status_of(exc), exc.message)
    # Pictures may be shown in the page (thumbnails of evidence); everything else is a download.
    inline = request.args.get("inline") == "1" and item.mimetype in ("image/png", "image/jpeg")
    response = send_file(
        evidence.content_path(item, evidence.store_root()).resolve(),
        mimetype=item.mimetype,
        as_attachment=not inline,
        download_name=item.name,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _task_action(task_id: str, run, done_message: str):
    try:
        run()
        commit()
        flash(done_message)
    except (InvalidInput, Forbidden) as exc:
        db().rollback()
        if isinstance(exc, Forbidden):
            abort(403, exc.message)
        flash(exc.message)
    except ZhibuError as exc:
        db().rollback()
        abort(status_of(exc), exc.message)
    return redirect(url_for("tasks.task_page", task_id=task_id))


@bp.post("/tasks/<task_id>/claim")
@signed_in
def claim(task_id: str):
    user = current_user().username
    return _task_action(
        task_id, lambda: actions.claim(db(), user, task_id, clock=clock()), "已签收，此任务现由您办理"
    )


@bp.post("/tasks/<task_id>/unclaim")
@signed_in
def unclaim(task_id: str):
    user = current_user().username
    return _task_action(task_id, lambda: actions.unclaim(db(), user, task_id, clock=clock()), "已退回签收")


@bp.post("/tasks/<task_id>/reassign")
@signed_in
def reassign(task_id: str):
    user, to = current_user().username, request.form.get("to", "").strip()
    run = lambda: actions.reassign(db(), user, task_id, to, clock=clock())  # noqa: E731
    return _task_action(task_id, run, f"已转办给 {to}")


@bp.post("/tasks/<task_id>/comments")
@signed_in
def add_comment(task_id: str):
    user, text = current_user().username, request.form.get("text", "")
    run = lambda: actions.comment(db(), user, task_id, text, clock=clock())  # noqa: E731
    return _task_action(task_id, run, "意见已记录")
