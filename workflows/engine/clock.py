"""What time it is: one injectable clock for every entry point.

`ZHIBU_NOW` (ISO 8601; a value without an offset is Beijing time) freezes "now" for demos and
end-to-end tests. Tests pass a `FixedClock` and move it; nothing ever sleeps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from workflows.engine.errors import InvalidInput

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move forward by a `timedelta(**delta)` and return the new time."""
        self.current = self.current + timedelta(**delta)
        return self.current

    def set(self, when: datetime) -> None:
        """Jump to an absolute, timezone-aware time."""
        self.current = when


def parse_instant(text: str) -> datetime:
    """Parse an ISO date or datetime; naive values are Beijing time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"无法识别的时间“{text}”，请使用 ISO 格式，例如 2026-09-01T09:00") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value


def clock_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> Clock:
    """The clock for a process entry point: frozen at `ZHIBU_NOW` if set, else the system clock."""
    environ = os.environ if environ is None else environ
    frozen = environ.get("ZHIBU_NOW", "").strip()
    return FixedClock(parse_instant(frozen)) if frozen else SystemClock()


def end_of_day(day: date | str) -> datetime:
    """The instant a date-only deadline expires: the following midnight, Beijing time."""
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError as exc:
            raise InvalidInput(f"无法识别的日期“{day}”，请使用 2026-12-31 这样的格式") from exc
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), LOCAL_TZ)


def due_date(instant: datetime) -> date:
    """The calendar date a due instant belongs to: a date deadline's own date (it ends at next midnight)."""
    local = instant.astimezone(LOCAL_TZ)
    return (local - timedelta(days=1)).date() if local.time() == datetime.min.time() else local.date()


def due_text(instant: datetime, day_format: str = "%Y-%m-%d") -> str:
    """How a due instant reads to people: a date deadline as its own date, "2026-11-30 24时前", never
    as the next day's "2026-12-01 00:00"; any other instant as date and time."""
    local = instant.astimezone(LOCAL_TZ)
    if local.time() == datetime.min.time():
        return f"{(local - timedelta(days=1)).strftime(day_format)} 24时前"
    return f"{local.strftime(day_format + ' %H:%M')}前"
