"""The scheduler's recurring units of work for deadlines: deliveries, digests and deadline recomputation.

Like `workflows.engine.runner`, each function here owns its transactions (one per person or instance), so
one failure never undoes the others and several schedulers can run at once: a digest is claimed
by inserting its (person, day) row, whose primary key lets only one scheduler send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from workflows.deadlines import calendar, channels, notify
from workflows.engine import checkpoints, interventions, runner
from workflows.engine.clock import LOCAL_TZ, Clock, due_text
from workflows.engine.db import transaction
from workflows.engine.errors import EngineError
from workflows.engine.models import ProcessInstance
from workflows.programme import inbox, org

DIGEST_ROLES = ("secretary",)
DUE_SOON_WORKDAYS = 3


def digest_text(session: Session, username: str, now: datetime) -> tuple[str, str] | None:
    """Title and body of a person's daily digest: what is late and what is due soon; None if nothing."""
    box = inbox.inbox(session, username)
    soon_limit, _ = calendar.deadline(
        calendar.load(session), now.astimezone(LOCAL_TZ).date(), DUE_SOON_WORKDAYS
    )
    late = [t for t in box.todo if t.due_at and t.due_at <= now]
    soon = [t for t in box.todo if t.due_at and now < t.due_at <= soon_limit]
    if not late and not soon:
        return None

    def line(task) -> str:
        due = due_text(task.due_at, "%m-%d")
        about = f"：{task.subject}" if task.subject else ""
        return f"· {task.title}{about}（期限 {due}）"

    parts = []
    if late:
        parts += [f"已逾期 {len(late)} 项："] + [line(t) for t in late]
    if soon:
        parts += [f"{DUE_SOON_WORKDAYS} 个工作日内到期 {len(soon)} 项："] + [line(t) for t in soon]
    title = f"每日待办提醒：逾期 {len(late)} 项，即将到期 {len(soon)} 项"
    return title, "\n".join(parts)


def send_digests(factory: sessionmaker[Session], *, clock: Clock) -> int:
    """Send today's digest to every secretary who wants one and has something due; return how many."""
    now = clock.now()
    today = now.astimezone(LOCAL_TZ).date()
    with factory() as session:
        people = sorted({u for role in DIGEST_ROLES for u in org.holders(session, role)})
    sent = 0
    for username in people:
        try:
            with transaction(factory) as session:
                pref = session.get(notify.Preference, username)
                if pref is not None and not pref.digest_enabled:
                    continue
                session.add(notify.DigestSent(username=username, day=today, sent_at=now))
                session.flush()  # the claim: a second scheduler fails here and skips this person
                text = digest_text(session, username, now)
                if text is not None:
                    notify.send(
                        session,
                        [username],
                        kind="digest",
                        title=text[0],
                        body=text[1],
                        now=now,
                        actor="system:digest",
                    )
                    sent += 1
        except IntegrityError:
            continue
    return sent


def recompute_deadlines(factory: sessionmaker[Session], *, clock: Clock, actor: str, batch: int = 500) -> int:
    """Re-evaluate the waiting date timers of every instance that has one; return how many instances moved."""
    changed, after = 0, 0
    while True:
        with factory() as session:
            ids = list(
                session.scalars(
                    select(ProcessInstance.id)
                    .where(ProcessInstance.next_due_at.is_not(None), ProcessInstance.id > after)
                    .order_by(ProcessInstance.id)
                    .limit(batch)
                )
            )
        for instance_id in ids:
            try:
                moved = runner.run_step(
                    factory,
                    lambda s, i=instance_id: interventions.recompute_timers(s, i, actor=actor, clock=clock),
                    clock=clock,
                    actor=actor,
                    context={"instance_id": instance_id, "action": "timer.recompute"},
                )
            except EngineError:
                continue
            changed += bool(moved)
        if len(ids) < batch:
            return changed
        after = ids[-1]


@dataclass
class DeliveryResult:
    """What one delivery run did."""

    sent: int = 0
    failed: int = 0


def deliver(
    factory: sessionmaker[Session],
    *,
    clock: Clock,
    smtp: channels.SmtpSettings | None = None,
    limit: int = 50,
) -> DeliveryResult:
    """Send the due e-mail/webhook deliveries; each is leased, sent outside any transaction, then recorded."""
    result = DeliveryResult()
    with transaction(factory) as session:
        batch = notify.claim(session, clock.now(), limit=limit)
    for item in batch:
        try:
            if item.channel == "email":
                channels.send_email(smtp, item.target, item.title, item.body)
            else:
                channels.send_webhook(item.target, item.title, item.body)
            error = None
        except channels.DeliveryError as exc:
            error = str(exc)
        with transaction(factory) as session:
            notify.finish(session, item.delivery_id, error=error, now=clock.now())
        result.sent += error is None
        result.failed += error is not None
    return result


def send_checkpoint(factory: sessionmaker[Session], *, clock: Clock) -> int:
    """Write today's signed checkpoint of the audit chain and send it to the office; return its seq.

    The office's copy (in-app, and by e-mail where they asked for it) is what makes a later rewrite of
    the database and the checkpoint folder together still detectable.
    """
    now = clock.now()
    with factory() as session:
        made = checkpoints.write(session, checkpoints.directory(), now=now)
    with transaction(factory) as session:
        notify.send(
            session,
            org.holders(session, "office"),
            kind="checkpoint",
            title=f"审计链检查点：第 {made.seq} 号事件",
            body=(
                f"{now.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M} 审计链共 {made.seq} 条事件，"
                f"链头哈希 {made.hash}。\n"
                f"签名公钥 {made.public_key}。请留存本消息，核查时可用 zhibu audit verify 比对。"
            ),
            now=now,
            actor="system:checkpoint",
        )
    return made.seq
