"""The Flask application: thin request handlers over `workflows`.

`create_app(config)` builds the app on the configured database; no scheduler starts here (it is its
own process, `zhibu scheduler`). Pages need a signed-in person and carry a CSRF token; the JSON API
under /api/v1 takes bearer tokens instead.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from service import api, auth, guard, inspect, ledger, metrics, notices, tasks, web
from workflows.deadlines import ical, notify
from workflows.engine import audit, health
from workflows.engine.clock import LOCAL_TZ, clock_from_env, due_text
from workflows.engine.db import database_url, make_engine, make_session_factory
from workflows.programme import inbox

csrf = CSRFProtect()
TITLES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权访问",
    404: "找不到页面",
    409: "操作冲突",
    405: "不支持该请求方式",
    413: "提交的内容过大",
    429: "尝试过于频繁",
    500: "服务器内部错误",
}


def _secret_key(app: Flask) -> str:
    """ZHIBU_SECRET_KEY, else a key kept in the instance folder so sessions survive restarts."""
    if os.environ.get("ZHIBU_SECRET_KEY"):
        return os.environ["ZHIBU_SECRET_KEY"]
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():  # several workers may start at once: one file wins, all read it
        audit.create_secret_file(path, secrets.token_hex(32).encode("ascii"))
    return path.read_text(encoding="utf-8").strip()


def _behind_proxies(app: Flask) -> None:
    """Take client address, scheme and host from X-Forwarded-* (ZHIBU_TRUSTED_PROXIES hops), but only on
    requests that come from the proxies themselves (ZHIBU_FORWARDED_ALLOW_IPS, as gunicorn has it)."""
    hops = int(os.environ.get("ZHIBU_TRUSTED_PROXIES", "0") or 0)
    if hops <= 0:
        return
    proxies = {ip.strip() for ip in os.environ.get("ZHIBU_FORWARDED_ALLOW_IPS", "127.0.0.1").split(",")}
    direct, forwarded = app.wsgi_app, ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    def wsgi(environ, start_response):
        chosen = forwarded if environ.get("REMOTE_ADDR") in proxies else direct
        return chosen(environ, start_response)

    app.wsgi_app = wsgi


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory. No scheduler starts here; it has its own entry point."""
    app = Flask(__name__, instance_path=str(Path.cwd() / "instance"))
    app.config.from_mapping(
        DATABASE_URL=database_url(),
        CLOCK=clock_from_env(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("ZHIBU_SECURE_COOKIES", "") in ("1", "true", "yes"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        RATELIMIT_STORAGE_URI=os.environ.get("ZHIBU_RATELIMIT_STORAGE", "memory://"),
    )
    if config:
        app.config.from_mapping(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app)
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["zhibu.sessions"] = make_session_factory(engine)
    app.teardown_appcontext(web.close_db)
    _behind_proxies(app)
    guard.install(app)  # before the blueprints (their <int:> rules) and before CSRF and the limiter
    metrics.install(app)  # before the edge checks: every request, refused or not, is counted and logged
    csrf.init_app(app)
    auth.limiter.init_app(app)
    csrf.exempt(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(ledger.bp)
    app.register_blueprint(inspect.bp)
    app.register_blueprint(notices.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")

    @app.before_request
    def load_user():
        web.current_user()

    @app.context_processor
    def template_globals():
        if g.get("abandoned"):
            return {"tz": LOCAL_TZ, "company_reader": False, "unread": 0}
        user = web.current_user()
        reader = user is not None and inbox.readable_branches(web.who()) is None
        unread = notify.unread_count(web.db(), user.username) if user is not None else 0
        return {"tz": LOCAL_TZ, "company_reader": reader, "unread": unread}

    app.add_template_filter(due_text, "due")

    @app.template_filter("zip")
    def zip_filter(left, right):
        return zip(left, right, strict=False)

    @app.get("/healthz")
    def healthz():
        """Database reachable and a scheduler alive: 200; otherwise 503 with what is wrong."""
        try:
            with app.extensions["zhibu.sessions"]() as session:
                beat = health.heartbeat(session, app.config["CLOCK"].now())
        except SQLAlchemyError:
            app.logger.exception("health check: database unreachable")
            return jsonify(status="error", database="unreachable"), 503
        scheduler = {
            "last_run_at": beat.last_at.isoformat() if beat.last_at else None,
            "age_seconds": None if beat.age_seconds is None else round(beat.age_seconds, 1),
            "stale_after_seconds": int(health.STALE_AFTER.total_seconds()),
            "schedulers": beat.schedulers,
            "failing_jobs": beat.failing,
        }
        status = "stale" if beat.stale else "ok"
        return jsonify(status=status, database="ok", scheduler=scheduler), 503 if beat.stale else 200

    @app.get("/calendar/<token>.ics")
    def calendar_feed(token: str):
        username = ical.owner(web.db(), token)
        if username is None:
            abort(404)
        body = ical.feed(web.db(), username)
        return Response(body, mimetype="text/calendar", headers={"Cache-Control": "private, max-age=300"})

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError):
        return _error(400, "表单已过期或缺少安全校验，请刷新页面后重试")

    @app.errorhandler(guard.InputRejected)
    def input_rejected(exc: guard.InputRejected):
        if request.path.startswith("/api/"):
            web.abandon()
            return jsonify(errors=exc.errors), 400
        return tasks.form_rejected(exc) or _error(400, "提交的内容有误：" + exc.description)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = _error(exc.code or 500, exc.description if isinstance(exc.description, str) else "")
        for name, value in exc.get_headers():  # Allow on 405, Retry-After on 429
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def server_error(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, metrics.logged_path())
        return _error(500, "服务器内部错误，已记录；请稍后重试")

    def _error(code: int, message: str) -> Response:
        web.abandon()  # roll back first; the page below never touches the database
        if request.path.startswith("/api/"):
            response = jsonify(error=message or TITLES.get(code, ""))
        else:
            page = render_template("error.html", code=code, title=TITLES.get(code, "出错了"), message=message)
            response = app.make_response(page)
        response.status_code = code
        return response

    return app
