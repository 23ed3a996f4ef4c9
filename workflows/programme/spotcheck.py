"""Spot-check draws that an inspector can reproduce from the audit trail: random (随机抽查) and scheduled
(定期抽查, on the dates of `data/spot_checks.json`).

A draw ranks the candidate branch codes by SHA-256 of `seed:code` and takes the first `count`.
The seed, the candidates and the count are written to the trail (`spotcheck.drawn`), so anyone can
recompute the draw by hand or with `reproduce`, and see that nobody picked the branches. A random
draw's seed is fresh; a scheduled draw's seed is SHA-256 of "year:id" of its schedule entry, so the
trail also shows that the seed was not chosen. Each scheduled check of a year is started once: its row
in `spot_check_runs` (primary key year + id) is written in the step that draws it. Functions never commit.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Date, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit, steps
from workflows.engine.clock import Clock, end_of_day
from workflows.engine.errors import InvalidInput
from workflows.engine.models import AuditEvent, Base, UTCDateTime
from workflows.programme import obligations, org, years

ALGORITHM = "sha256(seed + ':' + code) ascending, first `count`"
RANDOM, SCHEDULED = "随机抽查", "定期抽查"
SCHEDULE_FILE = Path(__file__).resolve().parents[2] / "data" / "spot_checks.json"


def draw(candidates: list[str], count: int, seed: str) -> list[str]:
    """The `count` candidates a seed selects, in draw order."""
    ranked = sorted(set(candidates), key=lambda code: hashlib.sha256(f"{seed}:{code}".encode()).hexdigest())
    return ranked[: max(0, count)]


def new_seed() -> str:
    """A fresh, unpredictable seed."""
    return secrets.token_hex(16)


def scheduled_seed(year: int, entry: str) -> str:
    """The seed of a scheduled check: SHA-256 of "year:id" of its schedule entry."""
    return hashlib.sha256(f"{year}:{entry}".encode()).hexdigest()


def record(kind: str, candidates: list[str], count: int, seed: str) -> dict[str, Any]:
    """The audit payload of a draw: everything needed to recompute it."""
    return {
        "kind": kind,
        "seed": seed,
        "candidates": sorted(set(candidates)),
        "count": count,
        "algorithm": ALGORITHM,
        "drawn": draw(candidates, count, seed),
    }


def reproduce(payload: dict[str, Any]) -> bool:
    """Whether a recorded draw is what its seed and inputs give (a scheduled seed: what its entry gives)."""
    schedule = payload.get("schedule")
    if schedule is not None and payload["seed"] != scheduled_seed(schedule["year"], schedule["id"]):
        return False
    return draw(payload["candidates"], payload["count"], payload["seed"]) == payload["drawn"]


class SpotCheckRun(Base):
    """A scheduled spot check that was started: what it drew and the spot-check instance of each branch."""

    __tablename__ = "spot_check_runs"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry: Mapped[str] = mapped_column(String(50), primary_key=True)
    scheduled_on: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(64))
    drawn: Mapped[str] = mapped_column(Text)  # JSON: branch code → spot_check instance id, in draw order
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(100))


@dataclass(frozen=True)
class ScheduledCheck:
    """One entry of the schedule in one year."""

    year: int
    entry: str
    name: str
    day: date
    count: int


def read_schedule(content: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks of a schedule file's content, checked: unique ids, dates MM-DD (not 02-29), counts ≥ 0."""
    checks, seen = content.get("checks"), set()
    if not isinstance(checks, list):
        raise InvalidInput("定期抽查安排应有 checks 列表")
    for check in checks:
        entry = check.get("id") if isinstance(check, dict) else None
        if not isinstance(entry, str) or not entry or len(entry) > 50 or entry in seen:
            raise InvalidInput(f"定期抽查安排的编号“{entry}”须为不重复、不超过 50 个字符的文字")
        seen.add(entry)
        try:
            month, day = (int(part) for part in str(check.get("date")).split("-"))
            date(2025, month, day)  # a common year: 02-29 would not happen every year
        except ValueError as exc:
            raise InvalidInput(f"定期抽查“{entry}”的日期“{check.get('date')}”应为 月-日，如 09-25") from exc
        count = check.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise InvalidInput(f"定期抽查“{entry}”的抽查数量应为不小于 0 的整数")
    return checks


@lru_cache(maxsize=1)
def schedule() -> tuple[dict[str, Any], ...]:
    """The scheduled checks of `data/spot_checks.json`."""
    return tuple(read_schedule(json.loads(SCHEDULE_FILE.read_text(encoding="utf-8"))))


def due(session: Session, today: date) -> list[ScheduledCheck]:
    """Scheduled checks dated from the first programme year's start up to `today` not started yet."""
    start = obligations.programme_start(session)
    if start is None:
        return []
    started = {tuple(row) for row in session.execute(select(SpotCheckRun.year, SpotCheckRun.entry))}
    found = []
    for year in range(start.year, today.year + 1):
        for check in schedule():
            month, day = (int(part) for part in check["date"].split("-"))
            when = date(year, month, day)
            if start <= when <= today and (year, check["id"]) not in started:
                found.append(
                    ScheduledCheck(year, check["id"], check.get("name", check["id"]), when, check["count"])
                )
    return sorted(found, key=lambda c: (c.day, c.entry))


def _programme_of(session: Session, day: date) -> int | None:
    """The instance of the latest programme year started by `day`, whose trail the draw joins."""
    query = select(years.ProgrammeYear.instance_id).where(years.ProgrammeYear.started_at < end_of_day(day))
    return session.scalar(query.order_by(years.ProgrammeYear.year.desc()).limit(1))


def start_scheduled(session: Session, check: ScheduledCheck, *, actor: str, clock: Clock) -> dict[str, Any]:
    """Draw a scheduled check's branches (seed from its entry), record it, start a spot check for each.

    The `spot_check_runs` row is written first: of two schedulers starting the same check, the second
    fails on its primary key (IntegrityError) and its step rolls back whole.
    """
    now = clock.now()
    seed = scheduled_seed(check.year, check.entry)
    run = SpotCheckRun(
        year=check.year,
        entry=check.entry,
        scheduled_on=check.day,
        count=check.count,
        seed=seed,
        drawn="{}",
        started_at=now,
        started_by=actor,
    )
    session.add(run)
    session.flush()
    candidates = [b.code for b in org.active_branches(session)]
    payload = record(SCHEDULED, candidates, check.count, seed)
    payload["schedule"] = {
        "year": check.year,
        "id": check.entry,
        "name": check.name,
        "date": check.day.isoformat(),
    }
    audit.append(
        session,
        action="spotcheck.drawn",
        actor=actor,
        occurred_at=now,
        instance_id=_programme_of(session, check.day),
        data=payload,
    )
    payload["instances"] = {
        code: steps.start(
            session,
            "spot_check",
            {"branch": code, "kind": SCHEDULED, "title": f"{check.name}（{check.year}年）：{code}"},
            actor=actor,
            clock=clock,
        ).id
        for code in payload["drawn"]
    }
    run.drawn = json.dumps(payload["instances"], ensure_ascii=False)
    session.flush()
    return payload


@dataclass(frozen=True)
class RecordedDraw:
    """A draw as the audit trail holds it, and whether it reproduces."""

    seq: int
    occurred_at: datetime
    kind: str
    count: int
    drawn: list[str]
    schedule: dict[str, Any] | None
    reproduced: bool


def recorded_draws(session: Session) -> list[RecordedDraw]:
    """Every draw of the audit trail (random and scheduled), in order, each recomputed with `reproduce`."""
    query = select(AuditEvent.seq, AuditEvent.occurred_at, AuditEvent.data).where(
        AuditEvent.action == "spotcheck.drawn"
    )
    draws = []
    for seq, occurred_at, data in session.execute(query.order_by(AuditEvent.seq)):
        payload = json.loads(data)
        try:
            reproduced = reproduce(payload)
        except (KeyError, TypeError):  # a payload missing what a draw needs does not reproduce
            reproduced = False
        draws.append(
            RecordedDraw(
                seq,
                occurred_at,
                payload.get("kind", ""),
                payload.get("count", 0),
                payload.get("drawn", []),
                payload.get("schedule"),
                reproduced,
            )
        )
    return draws
