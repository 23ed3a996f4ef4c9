"""Sign-in and sign-out for pages (cookie session) and the API's bearer tokens.

Sign-in happens only on POST /login (CSRF-checked) and POST /api/v1/auth/token, and both share one
rate limit per account, whatever address the guesses come from. An unknown username costs one password
hash like a known one. Sessions and tokens are rows (`workflows.programme.credentials`): signing out,
a password change or `zhibu token revoke` ends them server-side at once.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from service.web import clock, commit, current_user, db
from workflows.programme import credentials, org

bp = Blueprint("auth", __name__)
TOKEN_LIFETIME = timedelta(hours=12)
SIGN_IN_LIMIT = "5 per minute"


def account_key() -> str:
    """The account a sign-in attempt is for: guesses at one account share one budget."""
    username: object = request.form.get("username")
    if username is None and request.is_json:
        body = request.get_json(silent=True)
        username = body.get("username") if isinstance(body, dict) else None
    return "account:" + (username.strip().lower()[:100] if isinstance(username, str) else "")


# Storage from RATELIMIT_STORAGE_URI (ZHIBU_RATELIMIT_STORAGE, e.g. redis://127.0.0.1:6379 when several
# web processes serve the same users); in-process memory by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
# Only failed attempts count: a person who signs in on a phone and a desktop is never locked out.
sign_in_limit = limiter.shared_limit(
    SIGN_IN_LIMIT,
    scope="sign-in",
    key_func=account_key,
    methods=["POST"],
    deduct_when=lambda response: response.status_code == 401,
)


def issue_token(username: str) -> credentials.Issued:
    """A new API token for a person (the caller commits)."""
    return credentials.issue(db(), username, "token", now=clock().now(), lifetime=TOKEN_LIFETIME)


def token_user(token: str) -> str | None:
    """The username a live (unexpired, unrevoked) token stands for; remembers the token's id in `g`."""
    found = credentials.resolve(db(), token, "token", now=clock().now())
    g.token_id = found.id if found is not None else None
    return found.username if found is not None else None


def _safe_next(target: str | None) -> str:
    parsed = urlparse(target or "")
    if target and not parsed.scheme and not parsed.netloc and target.startswith("/"):
        return target
    return url_for("tasks.inbox_page")


@bp.route("/login", methods=["GET", "POST"])
@sign_in_limit
def login():
    # Only POST signs in: GET (and HEAD, which Flask answers with the GET view) shows the form.
    if request.method != "POST":
        if current_user() is not None:
            return redirect(url_for("tasks.inbox_page"))
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    user = org.authenticate(db(), username, request.form.get("password", ""))
    if user is None:
        return render_template(
            "login.html", error="用户名或密码错误", username=username, next=request.form.get("next", "")
        ), 401
    lifetime = current_app.permanent_session_lifetime
    issued = credentials.issue(db(), user.username, "session", now=clock().now(), lifetime=lifetime)
    commit()
    session.clear()
    session["sid"] = issued.secret
    session.permanent = True
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    if current_user() is not None and g.get("credential_id") is not None:
        credentials.end(db(), g.credential_id, now=clock().now(), actor=current_user().username)
        commit()
    session.clear()
    flash("您已退出登录")
    return redirect(url_for("auth.login"))
