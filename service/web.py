"""Per-request plumbing for the blueprints: the database session, the signed-in person, error pages.

One session per request; a view that writes calls `commit()` once, after its single workflows call.
Domain errors become HTTP statuses here (400/403/404/409), never inside `workflows`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from types import SimpleNamespace
from typing import Any

from flask import current_app, g, redirect, request, session, url_for
from sqlalchemy.orm import Session

from workflows.engine.clock import Clock
from workflows.engine.errors import Conflict, Forbidden, FormInvalid, InvalidInput, NotFound, ZhibuError
from workflows.programme import credentials, inbox, org

STATUS = {FormInvalid: 400, InvalidInput: 400, Forbidden: 403, NotFound: 404, Conflict: 409}


def db() -> Session:
    """This request's database session."""
    if "db" not in g:
        g.db = current_app.extensions["zhibu.sessions"]()
    return g.db


def commit() -> None:
    """Commit this request's unit of work."""
    db().commit()


def close_db(_exc: BaseException | None = None) -> None:
    """End of request: whatever was not committed is rolled back."""
    session = g.pop("db", None)
    if session is not None:
        session.close()


def abandon() -> None:
    """A request that failed: roll back its work before anything renders, and keep the error page off
    the database (a failed transaction cannot be queried, and a page must never fail twice)."""
    if g.get("abandoned"):
        return
    g.abandoned = True
    user = g.get("user")
    try:
        g.user = (
            SimpleNamespace(
                username=user.username, display_name=user.display_name, shown_name=user.shown_name
            )
            if user
            else None
        )
    except Exception:  # noqa: BLE001 - attributes not loaded: show the page as signed out
        g.user = None
    session = g.get("db")
    if session is not None:
        session.rollback()


def clock() -> Clock:
    """The app's clock (the system clock, or ZHIBU_NOW)."""
    return current_app.config["CLOCK"]


def status_of(exc: ZhibuError) -> int:
    """The HTTP status of a domain error."""
    for kind, code in STATUS.items():
        if isinstance(exc, kind):
            return code
    return 500


def current_user() -> org.User | None:
    """The signed-in person of a page request, or None."""
    if "user" not in g:
        found = credentials.resolve(db(), session.get("sid"), "session", now=clock().now())
        user = db().get(org.User, found.username) if found is not None else None
        g.user = user if user is not None and user.active else None
        g.credential_id = found.id if g.user is not None else None
    return g.user


def who() -> inbox.Person:
    """The signed-in person's roles (after `signed_in`)."""
    if "person" not in g:
        g.person = inbox.person(db(), g.user.username)
    return g.person


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages for signed-in people only; others are sent to the sign-in page."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapper
