"""Notifications: in-app messages, and their delivery by e-mail and webhook per person's preferences.

A notification is written in the step that causes it (so it exists exactly when the step does);
each external delivery is a row that a scheduler sends later, outside any workflow transaction, so
a mail server that is down never blocks or fails a step. Concurrency contract: `claim` takes due
deliveries with FOR UPDATE SKIP LOCKED and leases them (status `sending`), so two schedulers never
send the same one; an expired lease is taken again. Functions never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit
from workflows.engine.models import Base, UTCDateTime

MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=2)


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt: 1, 2, 4, 8 … minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


class Notification(Base):
    """One message to one person; unread until they open it."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # escalation | digest | ...
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One attempt-tracked delivery of a notification over one channel."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | webhook
    target: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DigestSent(Base):
    """A daily digest claimed for a person and day (the primary key lets only one scheduler send it)."""

    __tablename__ = "digests_sent"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Preference(Base):
    """How a person wants to hear: in-app always; e-mail, webhook and the daily digest as chosen."""

    __tablename__ = "notification_prefs"

    username: Mapped[str] = mapped_column(ForeignKey("users.username"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_enabled: Mapped[bool] = mapped_column(Boolean, default=True)


def set_preferences(
    session: Session,
    username: str,
    *,
    email: str | None = None,
    webhook_url: str | None = None,
    email_enabled: bool = False,
    webhook_enabled: bool = False,
    digest_enabled: bool = True,
) -> Preference:
    """Create or replace a person's notification preferences."""
    pref = session.get(Preference, username) or Preference(username=username)
    pref.email, pref.webhook_url = email, webhook_url
    pref.email_enabled, pref.webhook_enabled = (
        bool(email_enabled and email),
        bool(webhook_enabled and webhook_url),
    )
    pref.digest_enabled = digest_enabled
    session.add(pref)
    session.flush()
    return pref


def send(
    session: Session,
    usernames: list[str],
    *,
    kind: str,
    title: str,
    body: str,
    now: datetime,
    actor: str,
    instance_id: int | None = None,
    task_id: str | None = None,
    branch: str | None = None,
) -> list[Notification]:
    """Notify people in-app and queue their e-mail/webhook deliveries; one audit event for the lot."""
    made = []
    for username in dict.fromkeys(usernames):
        note = Notification(
            username=username,
            kind=kind,
            title=title,
            body=body,
            instance_id=instance_id,
            task_id=task_id,
            created_at=now,
        )
        session.add(note)
        made.append(note)
    session.flush()
    prefs = {
        p.username: p for p in session.scalars(select(Preference).where(Preference.username.in_(usernames)))
    }
    for note in made:
        pref = prefs.get(note.username)
        channels = []
        if pref is not None and pref.email_enabled:
            channels.append(("email", pref.email))
        if pref is not None and pref.webhook_enabled:
            channels.append(("webhook", pref.webhook_url))
        for channel, target in channels:
            session.add(
                Delivery(
                    notification_id=note.id,
                    channel=channel,
                    target=target,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
    session.flush()
    if made:
        audit.append(
            session,
            action="notification.sent",
            actor=actor,
            occurred_at=now,
            instance_id=instance_id,
            task_id=task_id,
            branch=branch,
            data={"kind": kind, "title": title, "to": [n.username for n in made]},
        )
    return made


def inbox(session: Session, username: str, *, limit: int = 50) -> list[Notification]:
    """A person's notifications, newest first."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.username == username)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def unread_count(session: Session, username: str) -> int:
    """The number on the bell."""
    return session.scalar(
        select(func.count()).where(Notification.username == username, Notification.read_at.is_(None))
    )


def mark_read(session: Session, username: str, ids: list[int] | None, now: datetime) -> int:
    """Mark some (or all) of a person's notifications read; return how many changed."""
    query = update(Notification).where(Notification.username == username, Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    return session.execute(query.values(read_at=now)).rowcount


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery with what it carries."""

    delivery_id: int
    channel: str
    target: str
    title: str
    body: str
    attempts: int


def claim(session: Session, now: datetime, *, limit: int = 50) -> list[Outgoing]:
    """Lease the deliveries that are due (pending, or sending with an expired lease)."""
    rows = session.execute(
        select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.next_attempt_at <= now, Delivery.status.in_(("pending", "sending")))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    ).all()
    claimed = []
    for delivery, note in rows:
        delivery.status, delivery.next_attempt_at = "sending", now + LEASE
        claimed.append(
            Outgoing(delivery.id, delivery.channel, delivery.target, note.title, note.body, delivery.attempts)
        )
    session.flush()
    return claimed


def finish(session: Session, delivery_id: int, *, error: str | None, now: datetime) -> Delivery:
    """Record one attempt: sent, or failed and retried later with backoff, or given up after the last try."""
    delivery = session.get(Delivery, delivery_id)
    delivery.attempts += 1
    if error is None:
        delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.last_error = "failed", error
    else:
        delivery.status, delivery.last_error = "pending", error
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    session.flush()
    audit.append(
        session,
        action="notification.delivered" if error is None else "notification.delivery_failed",
        actor="system:scheduler",
        occurred_at=now,
        data={
            "delivery_id": delivery.id,
            "notification_id": delivery.notification_id,
            "channel": delivery.channel,
            "attempt": delivery.attempts,
            "status": delivery.status,
            "error": error,
        },
    )
    return delivery


def failed_deliveries(session: Session) -> int:
    """Deliveries given up after every retry (an operator's alert: mail or webhook is broken)."""
    return session.scalar(select(func.count()).where(Delivery.status == "failed")) or 0
