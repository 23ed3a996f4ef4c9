"""The audit trail: append-only events chained by HMAC-SHA-256, and the check that the chain holds.

The chain is keyed with a secret that does not live in the database (`ZHIBU_AUDIT_KEY`, else the
file `instance/audit_key`, made on first use): whoever can write to the database but lacks the key
cannot append, edit or re-link an event so that `verify` still passes. Signed checkpoints of the head,
kept outside the database (`workflows.engine.checkpoints`), cover the case of a stolen key and of
deleted newest events.

Concurrency contract: `append` locks the single `audit_head` row (a row lock on PostgreSQL; the
SQLite write lock does the same), so events are numbered without gaps and each links to exactly
one predecessor, even with many writers. The lock is held until the caller's commit; append as
the last write of a step to keep that window short. An event rolled back with its step never existed.

Each database connection remembers the head it last wrote. An append first moves the head with an
UPDATE guarded by that remembered (seq, hash): one matching row means nobody appended since, and the
row is now locked. No match (another connection appended, or the remembered event was rolled back)
falls back to reading the head FOR UPDATE. A stale memory costs one statement, never a fork.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from workflows.engine.errors import ZhibuError
from workflows.engine.models import AuditEvent, AuditHead, ProcessInstance
from workflows.engine.prepared import Prepared


def canonical_json(value: Any) -> str:
    """The one JSON text of a value: sorted keys, no whitespace, UTF-8 kept readable."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def event_hash(
    *,
    seq: int,
    prev_hash: str,
    occurred_at: datetime,
    actor: str,
    action: str,
    instance_id: int | None,
    task_id: str | None,
    bpmn_id: str | None,
    branch: str | None,
    data: str,
) -> str:
    """Keyed hash (HMAC-SHA-256 with `chain_key()`) of one event's content and its predecessor's hash."""
    payload = canonical_json(
        [
            seq,
            prev_hash,
            occurred_at.astimezone(UTC).isoformat(),
            actor,
            action,
            instance_id,
            task_id,
            bpmn_id,
            branch,
            data,
        ]
    )
    return hmac.new(chain_key(), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def chain_key() -> bytes:
    """The chain's secret: `ZHIBU_AUDIT_KEY`, else the file `ZHIBU_AUDIT_KEY_FILE` (default
    `instance/audit_key`, made by `ensure_key` when the database is created)."""
    return _key(*_key_source())


def _key_source() -> tuple[str, str]:
    return os.environ.get("ZHIBU_AUDIT_KEY", ""), os.environ.get("ZHIBU_AUDIT_KEY_FILE", "instance/audit_key")


class MissingKey(ZhibuError):
    """No chain key where one is expected: appending or verifying would silently start another chain."""


def ensure_key(session: Session) -> None:
    """Make the key file for a database whose trail is still empty; never for one that has events.

    A key made later (a process started in another directory, a lost file) would hash new events with
    a secret the old ones were not hashed with, so that is refused loudly instead.
    """
    from_env, path = _key_source()
    if from_env or Path(path).exists():
        return
    if session.scalar(select(AuditEvent.id).limit(1)) is not None:
        raise MissingKey(
            f"审计链已有事件，但找不到其密钥 {Path(path).resolve()}：请恢复该文件或设置 ZHIBU_AUDIT_KEY"
        )
    create_secret_file(Path(path), secrets.token_hex(32).encode("ascii"))


def create_secret_file(file: Path, content: bytes) -> None:
    """Write a secret to `file` (mode 600) unless another process got there first.

    Written to a private temporary file, then linked into place: a reader never sees a half-written key.
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f".{file.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    try:
        os.link(temporary, file)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


@lru_cache(maxsize=4)  # every append hashes: read the key once per process (and per configured source)
def _key(from_env: str, path: str) -> bytes:
    if from_env:
        return from_env.encode("utf-8")
    file = Path(path)
    if not file.exists():
        raise MissingKey(
            f"审计链密钥 {file.resolve()} 不存在：设置 ZHIBU_AUDIT_KEY，或在新数据库上运行 zhibu db init 生成"
        )
    return file.read_text(encoding="utf-8").strip().encode("utf-8")


_LOCK_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_EVENTS = AuditEvent.__table__
_INSERT_EVENT = Prepared(
    insert(_EVENTS).values({c.name: bindparam(c.name) for c in _EVENTS.c if c.name != "id"})
)
_HEAD = AuditHead.__table__
_MOVE_HEAD = Prepared(
    update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_MOVE_HEAD_FROM = Prepared(
    update(_HEAD)
    .where(_HEAD.c.id == 1, _HEAD.c.seq == bindparam("old_seq"), _HEAD.c.hash == bindparam("old_hash"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_KNOWN_HEAD = "zhibu.audit_head"  # key in Connection.info: (seq, hash) this connection last wrote


def append(
    session: Session,
    *,
    action: str,
    actor: str,
    occurred_at: datetime,
    instance_id: int | None = None,
    task_id: str | None = None,
    bpmn_id: str | None = None,
    branch: str | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Append one event to the chain (locks the chain head until the caller commits); return its seq."""
    conn = session.connection()  # Core statements: this runs in every step, the ORM adds nothing here
    # Microseconds are kept; SQLite and PostgreSQL both store them, so the hash survives a round trip.
    content = dict(
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        instance_id=instance_id,
        task_id=task_id,
        bpmn_id=bpmn_id,
        branch=branch,
        data=canonical_json(data or {}),
    )
    fields, known = None, conn.info.get(_KNOWN_HEAD)
    if known is not None:
        fields = _linked(content, *known)
        moves = {
            "old_seq": known[0],
            "old_hash": known[1],
            "new_seq": fields["seq"],
            "new_hash": fields["hash"],
        }
        if _MOVE_HEAD_FROM.run(conn, moves) != 1:
            fields = None
    if fields is None:
        fields = _linked(content, *conn.execute(_LOCK_HEAD).one())
        _MOVE_HEAD.run(conn, {"new_seq": fields["seq"], "new_hash": fields["hash"]})
    _INSERT_EVENT.run(conn, fields)
    conn.info[_KNOWN_HEAD] = (fields["seq"], fields["hash"])
    return fields["seq"]


def _linked(content: dict[str, Any], head_seq: int, head_hash: str) -> dict[str, Any]:
    """The event's row: its content numbered and hashed after the given head."""
    fields = {"seq": head_seq + 1, "prev_hash": head_hash, **content}
    return {**fields, "hash": event_hash(**fields)}


@dataclass(frozen=True)
class Verification:
    """Outcome of `verify`: `ok`, the number of events read, and where the chain first breaks."""

    ok: bool
    events: int
    broken_event_id: int | None = None
    reason: str = ""


def verify(session: Session) -> Verification:
    """Walk the chain in storage order and report the first event that was edited, removed, added or moved."""
    expected_seq, prev_hash, count = 1, "", 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000))
    for event in rows.scalars():
        count += 1
        if event.seq != expected_seq:
            what = "之前的事件被删除" if event.seq > expected_seq else "序号重复或顺序被调换"
            return _broken(count, event, f"序号应为 {expected_seq}，实为 {event.seq}（{what}）")
        if event.prev_hash != prev_hash:
            return _broken(count, event, "与上一事件的哈希链接不符（事件被插入、删除或调换）")
        recomputed = event_hash(
            seq=event.seq,
            prev_hash=event.prev_hash,
            occurred_at=event.occurred_at,
            actor=event.actor,
            action=event.action,
            instance_id=event.instance_id,
            task_id=event.task_id,
            bpmn_id=event.bpmn_id,
            branch=event.branch,
            data=event.data,
        )
        if not hmac.compare_digest(recomputed.encode(), (event.hash or "").encode("utf-8", "replace")):
            return _broken(count, event, "内容与哈希不符（事件被修改，或哈希不是用本系统的密钥算出的）")
        expected_seq, prev_hash = expected_seq + 1, event.hash
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq, head.hash) != (expected_seq - 1, prev_hash):
        return Verification(
            False,
            count,
            None,
            f"链尾应为第 {head.seq} 号事件，实际只到第 {expected_seq - 1} 号（末尾事件被删除）",
        )
    return Verification(True, count)


def _broken(count: int, event: AuditEvent, reason: str) -> Verification:
    return Verification(False, count, event.id, f"事件 id={event.id}：{reason}")


def decoded(event: AuditEvent) -> Any:
    """An event's data as JSON values."""
    return json.loads(event.data)


def events(
    session: Session,
    *,
    branches: frozenset[str] | None,
    limit: int = 500,
    offset: int = 0,
    **filters: Any,
) -> list[AuditEvent]:
    """One page of the events a reader may see (`branches` None: all), oldest first, filtered.

    Filters: `branch`, `instance_id`, `actor`, `process`, `since`, `until` (see `each_event`).
    """
    query = _trail(branches, **filters).order_by(AuditEvent.seq).limit(limit).offset(offset)
    return list(session.scalars(query))


def each_event(session: Session, *, branches: frozenset[str] | None, **filters: Any) -> Iterator[AuditEvent]:
    """Every event a reader may see, oldest first, read from the database in batches (for exports)."""
    query = _trail(branches, **filters).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    yield from session.scalars(query)


def _trail(
    branches: frozenset[str] | None,
    *,
    branch: str | None = None,
    instance_id: int | None = None,
    actor: str | None = None,
    process: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select:
    query = select(AuditEvent)
    if branches is not None:
        query = query.where(AuditEvent.branch.in_(branches))
    if branch:
        query = query.where(AuditEvent.branch == branch)
    if instance_id is not None:
        query = query.where(AuditEvent.instance_id == instance_id)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if process:
        of_process = select(ProcessInstance.id).where(ProcessInstance.process_id == process)
        query = query.where(AuditEvent.instance_id.in_(of_process))
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    return query
