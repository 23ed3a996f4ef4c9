"""Sign-in sessions and API tokens, kept server-side so they can be ended.

A credential is a random secret handed to the person once (in the session cookie, or as a bearer
token); only its SHA-256 is stored. Every request resolves the secret here, so signing out, a password
change or `zhibu token revoke` ends it at once, whatever cookie or token someone kept. Functions never
commit; a resolve only reads.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit
from workflows.engine.errors import InvalidInput, NotFound
from workflows.engine.models import Base, UTCDateTime

KINDS = ("session", "token")


class Credential(Base):
    """One sign-in session or API token of one person."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # session | token
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the secret
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Issued:
    """A new credential: its row id, the secret (shown once, never stored) and when it expires."""

    id: int
    secret: str
    expires_at: datetime


def issue(session: Session, username: str, kind: str, *, now: datetime, lifetime: timedelta) -> Issued:
    """Open a session or issue a token for a person (audited)."""
    if kind not in KINDS:
        raise InvalidInput(f"未知凭据类型 {kind}")
    secret = secrets.token_urlsafe(32)
    row = Credential(
        kind=kind, username=username, digest=_digest(secret), created_at=now, expires_at=now + lifetime
    )
    session.add(row)
    session.flush()
    action = "auth.signed_in" if kind == "session" else "auth.token_issued"
    audit.append(
        session,
        action=action,
        actor=username,
        occurred_at=now,
        data={"credential_id": row.id, "expires_at": row.expires_at.isoformat()},
    )
    return Issued(row.id, secret, row.expires_at)


def resolve(session: Session, secret: str | None, kind: str, *, now: datetime) -> Credential | None:
    """The live credential a secret stands for (not ended, not expired, of this kind), or None."""
    if not secret or not isinstance(secret, str) or len(secret) > 200:
        return None
    row = session.scalar(select(Credential).where(Credential.digest == _digest(secret)))
    if row is None or row.kind != kind or row.ended_at is not None or row.expires_at <= now:
        return None
    return row


def end(session: Session, credential_id: int, *, now: datetime, actor: str) -> Credential:
    """End one credential (sign out, revoke a token); ending an ended one changes nothing."""
    row = session.get(Credential, credential_id)
    if row is None:
        raise NotFound(f"凭据 {credential_id} 不存在")
    if row.ended_at is None:
        row.ended_at, row.ended_by = now, actor
        session.flush()
        action = "auth.signed_out" if row.kind == "session" else "auth.token_revoked"
        audit.append(
            session,
            action=action,
            actor=actor,
            occurred_at=now,
            data={"credential_id": row.id, "of": row.username},
        )
    return row


def end_all(session: Session, username: str, *, now: datetime, actor: str, kind: str | None = None) -> int:
    """End every live credential of a person (of one kind, or all); return how many."""
    query = update(Credential).where(
        Credential.username == username, Credential.ended_at.is_(None), Credential.expires_at > now
    )
    if kind is not None:
        query = query.where(Credential.kind == kind)
    ended = session.execute(query.values(ended_at=now, ended_by=actor)).rowcount or 0
    if ended:
        audit.append(
            session,
            action="auth.credentials_ended",
            actor=actor,
            occurred_at=now,
            data={"username": username, "kind": kind, "count": ended},
        )
    return ended


def live(
    session: Session, *, now: datetime, username: str | None = None, kind: str | None = None
) -> list[Credential]:
    """Credentials still in force, newest first (of one person or everyone, one kind or both)."""
    query = select(Credential).where(Credential.ended_at.is_(None), Credential.expires_at > now)
    if username is not None:
        query = query.where(Credential.username == username)
    if kind is not None:
        query = query.where(Credential.kind == kind)
    return list(session.scalars(query.order_by(Credential.created_at.desc(), Credential.id.desc())))
