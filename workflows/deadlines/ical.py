"""A personal iCalendar feed of task deadlines, for phone calendars, behind a secret token URL.

The token is the only credential (calendar apps cannot log in), so it is long, random, and can be
rotated; the feed shows only what the person's own inbox shows to do. Functions never commit.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from icalendar import Alarm, Calendar, Event
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine.clock import LOCAL_TZ
from workflows.engine.models import Base, UTCDateTime
from workflows.programme import inbox


class FeedToken(Base):
    """The secret of one person's calendar feed."""

    __tablename__ = "calendar_feeds"

    username: Mapped[str] = mapped_column(ForeignKey("users.username"), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def token_for(session: Session, username: str, *, now: datetime, rotate: bool = False) -> str:
    """A person's feed token, created on first use; `rotate` replaces it (the old URL stops working)."""
    feed = session.get(FeedToken, username)
    if feed is None:
        feed = FeedToken(username=username, token=secrets.token_urlsafe(32), created_at=now)
        session.add(feed)
    elif rotate:
        feed.token, feed.created_at = secrets.token_urlsafe(32), now
    session.flush()
    return feed.token


def owner(session: Session, token: str) -> str | None:
    """Whose feed a token opens, or None."""
    return session.scalar(select(FeedToken.username).where(FeedToken.token == token))


def feed(session: Session, username: str) -> bytes:
    """The person's open tasks with a deadline, as all-day events on the deadline day, with a reminder."""
    cal = Calendar()
    cal.add("prodid", "-//zhibu//支部//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "支部 · 待办期限")
    cal.add("x-wr-timezone", "Asia/Shanghai")
    for task in inbox.inbox(session, username).todo:
        if task.due_at is None:
            continue
        day = (task.due_at.astimezone(LOCAL_TZ) - timedelta(seconds=1)).date()  # due at the end of this day
        event = Event()
        event.add("uid", f"{task.id}@zhibu")
        event.add("summary", f"{task.title}：{task.subject}" if task.subject else task.title)
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        event.add("dtstamp", task.created_at)
        where = f"党支部：{task.branch}\n" if task.branch else ""
        event.add("description", f"{where}期限：{day.isoformat()} 24 时前\n请在“支部”中办理。")
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"明天到期：{task.title}")
        alarm.add("trigger", timedelta(days=-1))
        event.add_component(alarm)
        cal.add_component(event)
    return cal.to_ical()
