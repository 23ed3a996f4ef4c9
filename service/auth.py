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
from limits import parse
from werkzeug.exceptions import TooManyRequests

from service.web import clock, commit, current_user, db
from workflows.programme import credentials, org

bp = Blueprint("auth", __name__)
TOKEN_LIFETIME = timedelta(hours=12)
SIGN_IN_LIMIT = "5 per minute"


# Storage from RATELIMIT_STORAGE_URI (ZHIBU_RATELIMIT_STORAGE, e.g. redis://127.0.0.1:6379 when several
# web processes serve the same users); in-process memory by default.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
_SIGN_IN = parse(SIGN_IN_LIMIT)


def sign_in(username: str, password: str) -> org.User | None:
    """The person these credentials open, None when wrong, 429 once the account had its failed tries.

    Only failures count, so a person signing in on a phone and a desktop is never locked out. The
    account's row is locked first: attempts at one account run one after another, so the count is
    read and raised without a gap that parallel guesses could slip through.
    """
    username = username.strip()
    key = "account:" + username.lower()[:100]
    org.lock_account(db(), username)
    if not limiter.limiter.test(_SIGN_IN, "sign-in", key):
        raise TooManyRequests("尝试过于频繁，请一分钟后再试", retry_after=60)
    user = org.authenticate(db(), username, password)
    if user is None:
        limiter.limiter.hit(_SIGN_IN, "sign-in", key)
    return user


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
def login():
    # Only POST signs in: GET (and HEAD, which Flask answers with the GET view) shows the form.
    if request.method != "POST":
        if current_user() is not None:
            return redirect(url_for("tasks.inbox_page"))
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    try:
        user = sign_in(username, request.form.get("password", ""))
    except TooManyRequests as exc:  # the form again, with the reason, so the next try is one click away
        page = render_template(
            "login.html", error=exc.description, username=username, next=request.form.get("next", "")
        )
        return page, 429, {"Retry-After": "60"}
    if user is None:
        return render_template(
            "login.html", error="用户名或密码错误", username=username, next=request.form.get("next", "")
        ), 401
    if g.get("credential_id") is not None:  # signing in over a session ends that session
        credentials.end(db(), g.credential_id, now=clock().now(), actor=user.username)
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
