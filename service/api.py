"""The JSON API under /api/v1 (described at /api/v1/openapi.json), for integrations and end-to-end tests.

Callers get a token from `POST /auth/token` and send `Authorization: Bearer TOKEN`. Errors are JSON:
400 `{"errors": {field: message}}` for form data, otherwise `{"error": message}` with 401/403/404/409.
Every writing call is one transaction; nothing is written when it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, g, jsonify, request

from service import auth, openapi
from service.guard import int_arg
from service.web import clock, commit, db, status_of
from workflows.engine import audit
from workflows.engine.clock import due_date
from workflows.engine.details import task_details
from workflows.engine.errors import FormInvalid, ZhibuError
from workflows.engine.models import AuditEvent, TaskRecord
from workflows.programme import actions, credentials, inbox, items, ledger, org

bp = Blueprint("api", __name__)


def _error(message: str, status: int):
    return jsonify(error=message), status


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """API calls need a valid bearer token of an active person."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        username = auth.token_user(header[7:]) if header.startswith("Bearer ") else None
        user = db().get(org.User, username) if username else None
        if user is None or not user.active:
            return _error("未登录或令牌无效", 401)
        g.api_user = user.username
        try:
            return view(*args, **kwargs)
        except FormInvalid as exc:
            db().rollback()
            return jsonify(errors=exc.errors), 400
        except ZhibuError as exc:
            db().rollback()
            return _error(exc.message, status_of(exc))

    return wrapper


def _json_body() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _unknown_fields(body: dict[str, Any], known: set[str]):
    """400 naming each field the operation does not take (the OpenAPI document lists them), or None."""
    unknown = sorted(set(body) - known)
    if not unknown:
        return None
    return jsonify(errors={name: "不认识的字段" for name in unknown}), 400


def task_json(task: TaskRecord, now, can_complete: bool = False) -> dict[str, Any]:
    """A task as the API shows it; `can_complete` says whether the caller may complete it now."""
    return {
        "id": task.id,
        "instance_id": task.instance_id,
        "bpmn_id": task.bpmn_id,
        "title": task.title,
        "subject": task.subject,
        "process": task.process_id,
        "branch": task.branch,
        "lane": task.lane,
        "form_key": task.form_key,
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "due_date": due_date(task.due_at).isoformat() if task.due_at else None,
        "overdue": bool(task.status == "open" and task.due_at and task.due_at <= now),
        "escalation_level": task.escalation_level,
        "status": task.status,
        "assignee": task.assignee,
        "can_complete": can_complete,
    }


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.DOCUMENT)


@bp.post("/auth/token")
def token():
    body = _json_body()
    if body is None or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        return jsonify(errors={"_form": '请求体应为 JSON 对象：{"username": ..., "password": ...}'}), 400
    if refused := _unknown_fields(body, {"username", "password"}):
        return refused
    user = auth.sign_in(body["username"], body["password"])
    if user is None:
        return _error("用户名或密码错误", 401)
    issued = auth.issue_token(user.username)
    commit()
    return jsonify(token=issued.secret, expires_at=issued.expires_at.isoformat())


@bp.delete("/auth/token")
@token_required
def revoke_token():
    credentials.end(db(), g.token_id, now=clock().now(), actor=g.api_user)
    commit()
    return "", 204


VIEWS = {"todo": "todo", "watch": "watching", "done": "done"}


@bp.get("/tasks")
@token_required
def list_tasks():
    view = request.args.get("view")
    now = clock().now()
    limit = int_arg("limit", 200 if view else 1000, low=1, high=1000)
    offset = int_arg("offset", 0, low=0, high=1_000_000)
    if view is not None:  # the inbox's tabs: 待办, 只读关注, 已办
        if view not in VIEWS:
            return jsonify(errors={"view": "应为 todo、watch 或 done"}), 400
        listing = inbox.search(
            db(),
            g.api_user,
            view=VIEWS[view],
            now=now,
            limit=limit,
            offset=offset,
        )
        items = [task_json(task, now, may_act) for task, may_act in listing.rows]
        return jsonify(items=items, total=listing.total)
    status = request.args.get("status", "open")
    if status not in ("open", "completed"):
        return jsonify(errors={"status": "应为 open 或 completed"}), 400
    who = inbox.person(db(), g.api_user)
    query = TaskRecord.status == "open" if status == "open" else TaskRecord.status != "open"
    rows = inbox.visible_tasks(db(), who, query, limit=limit, offset=offset)
    acting = inbox.actionable_ids(db(), who, [t.id for t in rows])
    total = inbox.count_visible(db(), who, query)
    return jsonify(items=[task_json(t, now, t.id in acting) for t in rows], total=total)


@bp.get("/tasks/<task_id>")
@token_required
def get_task(task_id: str):
    record = actions.visible_task(db(), g.api_user, task_id)
    details = task_details(db(), record)
    may = inbox.can_act(db(), g.api_user, task_id)
    return jsonify(
        {**task_json(record, clock().now(), may), "schema": details["schema"], "data": details["data"]}
    )


@bp.post("/tasks/<task_id>/complete")
@token_required
def complete_task(task_id: str):
    body = _json_body()
    if body is None or not isinstance(body.get("data", {}), dict):
        return jsonify(errors={"_form": "请求体应为 JSON 对象，表单数据放在 data 中"}), 400
    if refused := _unknown_fields(body, {"data"}):
        return refused
    done = actions.complete_as(db(), g.api_user, task_id, body.get("data", {}), clock=clock())
    commit()
    return jsonify(id=done.id, instance_id=done.instance_id, status="completed")


@bp.post("/rectifications")
@token_required
def create_rectification():
    body = _json_body()
    if body is None:
        return jsonify(errors={"_form": "请求体应为 JSON 对象"}), 400
    if refused := _unknown_fields(body, set(openapi.REGISTER_FIELDS)):
        return refused
    row = actions.register_rectification(db(), g.api_user, body, clock=clock())
    commit()
    return jsonify(id=row.id, instance_id=row.id), 201


@bp.get("/rectifications")
@token_required
def list_rectifications():
    status = request.args.get("status") or None
    if status is not None and status not in ledger.STATUSES:
        return jsonify(errors={"status": "应为 " + "、".join(ledger.STATUSES) + " 之一"}), 400
    rows = ledger.rows(
        db(),
        branches=inbox.readable_branches(inbox.person(db(), g.api_user)),
        branch=request.args.get("branch") or None,
        status=status,
        now=clock().now(),
        limit=5000,
    )
    return jsonify(items=[r.as_json() for r in rows], total=len(rows))


@bp.get("/rectifications/<int:instance_id>")
@token_required
def get_rectification(instance_id: int):
    whole = actions.readable_item(db(), g.api_user, instance_id)
    return jsonify(item_json(whole))


def item_json(whole: items.Item) -> dict[str, Any]:
    """A rectification item, whole, as the API shows it (the same as every task page of it shows)."""
    when = lambda t: t.isoformat() if t else None  # noqa: E731
    row = whole.row
    return {
        "id": whole.instance_id,
        "status": row.status if row else None,
        "supervision": whole.supervision,
        "problem": {k: whole.problem.get(k) for k in openapi.REGISTER_FIELDS},
        "registered_by": whole.registered_by,
        "registered_at": when(whole.registered_at),
        "responsible": whole.responsible,
        "measures": whole.measures,
        "deadline": whole.deadline,
        "assigned_by": whole.assigned_by,
        "assigned_at": when(whole.assigned_at),
        "rounds": [
            {
                "number": r.number,
                "done": r.done,
                "evidence": [
                    {"id": f.id, "name": f.name, "size": f.size, "mimetype": f.mimetype, "sha256": f.sha256}
                    for f in r.files
                ],
                "listed": r.named,
                "by": r.by,
                "at": when(r.at),
                "verdict": None
                if r.verdict is None
                else {
                    "approved": r.verdict.approved,
                    "comment": r.verdict.comment,
                    "new_deadline": r.verdict.new_deadline,
                    "by": r.verdict.by,
                    "at": when(r.verdict.at),
                },
            }
            for r in whole.rounds
        ],
        "next_steps": [
            {"task_id": s.task_id, "title": s.title, "holder": s.holder, "due_at": when(s.due_at)}
            for s in whole.next_steps
        ],
        "closed_at": when(row.closed_at) if row else None,
    }


@bp.get("/audit")
@token_required
def audit_events():
    who = inbox.person(db(), g.api_user)
    events = audit.events(
        db(),
        branches=inbox.readable_branches(who),
        branch=request.args.get("branch") or None,
        instance_id=int_arg("instance_id", low=1),
        limit=int_arg("limit", 500, low=1, high=5000),
    )
    return jsonify(items=[_event_json(e) for e in events], total=len(events))


def _event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "instance_id": event.instance_id,
        "task_id": event.task_id,
        "bpmn_id": event.bpmn_id,
        "branch": event.branch,
        "data": audit.decoded(event),
        "hash": event.hash,
    }


@bp.get("/audit/verify")
@token_required
def verify_audit():
    result = audit.verify(db())
    return jsonify(ok=result.ok, events=result.events, reason=result.reason or None)
