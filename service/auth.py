"""Sign-in and sign-out for pages (cookie session) and the API's bearer tokens.

Passwords are checked with Werkzeug's hashing; sign-in attempts are rate-limited per address and
username; tokens are signed and expire. CSRF protection covers every page form (Flask-WTF).
"""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from service.web import current_user, db
from workflows.programme import org

bp = Blueprint("auth", __name__)
TOKEN_MAX_AGE = 12 * 3600
SIGN_IN_LIMIT = "5 per minute"


def _attempt_key() -> str:
    username = request.form.get("username") or (request.get_json(silent=True) or {}).get("username") or ""
    return f"{get_remote_address()}|{str(username).strip().lower()}"


# Storage from RATELIMIT_STORAGE_URI (ZHIBU_RATELIMIT_STORAGE, e.g. redis://127.0.0.1:6379 when several
# web processes serve the same users); in-process memory by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="zhibu-api-token")


def issue_token(username: str) -> str:
    """A signed API token for a person."""
    return _serializer().dumps({"u": username})


def token_user(token: str) -> str | None:
    """The username a valid, unexpired token stands for."""
    try:
        return _serializer().loads(token, max_age=TOKEN_MAX_AGE)["u"]
    except (BadSignature, SignatureExpired, KeyError, TypeError):
        return None


def _safe_next(target: str | None) -> str:
    parsed = urlparse(target or "")
    if target and not parsed.scheme and not parsed.netloc and target.startswith("/"):
        return target
    return url_for("tasks.inbox_page")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_LIMIT, key_func=_attempt_key, methods=["POST"])
def login():
    if request.method == "GET":
        if current_user() is not None:
            return redirect(url_for("tasks.inbox_page"))
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    user = org.authenticate(db(), username, request.form.get("password", ""))
    if user is None:
        return render_template(
            "login.html", error="用户名或密码错误", username=username, next=request.form.get("next", "")
        ), 401
    session.clear()
    session["user"] = user.username
    session.permanent = True
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    session.clear()
    flash("您已退出登录")
    return redirect(url_for("auth.login"))
