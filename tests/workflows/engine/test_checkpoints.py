"""Tamper evidence that survives a database writer: the keyed chain, and signed checkpoints."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from tests.support import ASSIGNED, FIXED, REGISTERED, Driver
from workflows.engine import audit, checkpoints
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import AuditEvent, AuditHead
from workflows.migrations import init_db


@pytest.fixture
def trail(db_url, deployed, clock):
    """A short, valid trail and a checkpoint of it in a folder of the test's own."""
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED, actor="office1")
    driver.complete(driver.only_task(iid).id, ASSIGNED, actor="secretary1")
    yield driver, deployed, iid
    driver.close()


def _verify(factory) -> audit.Verification:
    with factory() as session:
        return audit.verify(session)


def _against(factory, folder: Path, **kwargs) -> audit.Verification:
    with factory() as session:
        return checkpoints.verify(session, folder, **kwargs)


def _checkpoint(factory, folder: Path, clock) -> checkpoints.Checkpoint:
    with factory() as session:
        return checkpoints.write(session, folder, now=clock.now())


def _events(factory) -> list[AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _fields(event: AuditEvent, **changes) -> dict:
    fields = {
        name: getattr(event, name)
        for name in ("seq", "prev_hash", "occurred_at", "actor", "action", "instance_id", "task_id")
    }
    fields.update(bpmn_id=event.bpmn_id, branch=event.branch, data=event.data)
    fields.update(changes)
    return fields


def _plain_sha256(**fields) -> str:
    """What a forger without the key computes: the chain's hash function, unkeyed."""
    payload = audit.canonical_json(
        [
            fields["seq"],
            fields["prev_hash"],
            fields["occurred_at"].astimezone().isoformat(),
            fields["actor"],
            fields["action"],
            fields["instance_id"],
            fields["task_id"],
            fields["bpmn_id"],
            fields["branch"],
            fields["data"],
        ]
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def test_a_forged_event_with_a_recomputed_head_is_detected(trail):
    _, factory, _ = trail
    last = _events(factory)[-1]
    forged = _fields(last, seq=last.seq + 1, prev_hash=last.hash, actor="office1", action="task.completed")
    forged["hash"] = _plain_sha256(**forged)
    with transaction(factory) as session:
        session.add(AuditEvent(**forged))
        session.execute(update(AuditHead).values(seq=forged["seq"], hash=forged["hash"]))
    result = _verify(factory)
    assert not result.ok and "被修改" in result.reason
    assert result.broken_event_id == _events(factory)[-1].id


def test_the_key_lives_outside_the_database(trail, monkeypatch):
    _, factory, _ = trail
    assert _verify(factory).ok
    monkeypatch.setenv("ZHIBU_AUDIT_KEY", "somebody-elses-key")  # the chain checked with another key
    assert not _verify(factory).ok


def test_the_key_file_is_made_with_a_new_database_and_never_for_an_old_one(db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("ZHIBU_AUDIT_KEY", raising=False)
    monkeypatch.setenv("ZHIBU_AUDIT_KEY_FILE", str(tmp_path / "keys" / "audit_key"))
    with pytest.raises(audit.MissingKey):
        audit.chain_key()  # no key, and nothing makes one behind the database's back
    engine = make_engine(db_url)
    init_db(engine)
    first = audit.chain_key()
    assert (tmp_path / "keys" / "audit_key").stat().st_mode & 0o777 == 0o600
    assert len(first) == 64 and audit.chain_key() == first
    init_db(engine)  # again: the key stays
    assert audit.chain_key() == first
    with transaction(make_session_factory(engine)) as session:
        audit.append(session, action="x", actor="t", occurred_at=datetime.now(UTC))
    monkeypatch.setenv("ZHIBU_AUDIT_KEY_FILE", str(tmp_path / "elsewhere" / "audit_key"))
    with pytest.raises(audit.MissingKey):
        init_db(engine)  # a trail with events never gets a new key
    assert not (tmp_path / "elsewhere").exists()
    engine.dispose()


def test_a_rewrite_with_a_stolen_key_is_named_by_the_checkpoints(trail, clock, tmp_path):
    driver, factory, iid = trail
    folder = tmp_path / "cp"
    _checkpoint(factory, folder, clock)
    driver.complete(driver.only_task(iid).id, FIXED, actor="zhangsan")
    clock.advance(days=1)
    _checkpoint(factory, folder, clock)
    assert _against(factory, folder).ok

    # The attacker has the chain key: they change an early event and re-link everything after it.
    events = _events(factory)
    victim = events[3]
    with transaction(factory) as session:
        prev = victim.prev_hash
        for event in events[3:]:
            changes = {"prev_hash": prev}
            if event.id == victim.id:
                changes["actor"] = "nobody"
            fields = _fields(event, **changes)
            new_hash = audit.event_hash(**fields)
            session.execute(
                update(AuditEvent)
                .where(AuditEvent.id == event.id)
                .values(prev_hash=prev, hash=new_hash, actor=fields["actor"])
            )
            prev = new_hash
        session.execute(update(AuditHead).values(hash=prev))
    assert _verify(factory).ok  # the keyed chain alone cannot tell
    result = _against(factory, folder)
    assert not result.ok and result.broken_event_id == victim.id and "改写" in result.reason


def test_deleting_the_newest_events_is_detected_against_the_last_checkpoint(trail, clock, tmp_path):
    _, factory, _ = trail
    folder = tmp_path / "cp"
    made = _checkpoint(factory, folder, clock)
    events = _events(factory)
    keep = events[-4]
    with transaction(factory) as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq > keep.seq))
        session.execute(update(AuditHead).values(seq=keep.seq, hash=keep.hash))
    assert _verify(factory).ok  # a shorter chain is still a chain
    result = _against(factory, folder)
    assert not result.ok and f"第 {keep.seq + 1} 号事件缺失" in result.reason
    assert made.seq == events[-1].seq


def test_a_forged_checkpoint_is_refused(trail, clock, tmp_path):
    _, factory, _ = trail
    folder = tmp_path / "cp"
    made = _checkpoint(factory, folder, clock)
    body = json.loads(made.path.read_text(encoding="utf-8"))
    body["hashes"][0] = "0" * 64
    made.path.write_text(json.dumps(body), encoding="utf-8")
    result = _against(factory, folder)
    assert not result.ok and "签名无效" in result.reason


def test_checkpoints_are_checked_with_the_trusted_public_key(trail, clock, tmp_path):
    _, factory, _ = trail
    folder = tmp_path / "cp"
    made = _checkpoint(factory, folder, clock)
    assert _against(factory, folder, trusted=made.public_key).ok
    other = checkpoints.public_key_hex(checkpoints.Ed25519PrivateKey.generate().public_key())
    assert not _against(factory, folder, trusted=other).ok


def test_each_checkpoint_covers_the_events_since_the_last(trail, clock, tmp_path):
    driver, factory, iid = trail
    folder = tmp_path / "cp"
    first = _checkpoint(factory, folder, clock)
    driver.complete(driver.only_task(iid).id, FIXED, actor="zhangsan")
    clock.advance(days=1)
    second = _checkpoint(factory, folder, clock)
    assert first.first_seq == 1 and len(first.hashes) == first.seq
    assert second.first_seq == first.seq + 1 and second.seq == _events(factory)[-1].seq
    assert len(second.hashes) == second.seq - first.seq


def test_a_removed_checkpoint_file_is_a_gap(trail, clock, tmp_path):
    driver, factory, iid = trail
    folder = tmp_path / "cp"
    _checkpoint(factory, folder, clock)
    driver.complete(driver.only_task(iid).id, FIXED, actor="zhangsan")
    clock.advance(days=1)
    middle = _checkpoint(factory, folder, clock)
    clock.advance(days=1)
    _checkpoint(factory, folder, clock)  # nothing new: an empty range, still continuous
    assert _against(factory, folder).ok
    middle.path.unlink()
    result = _against(factory, folder)
    assert not result.ok and "不连续" in result.reason


def test_a_verifier_without_the_key_needs_the_public_key(trail, clock, tmp_path, monkeypatch):
    _, factory, _ = trail
    folder = tmp_path / "cp"
    made = _checkpoint(factory, folder, clock)
    monkeypatch.setenv("ZHIBU_CHECKPOINT_KEY", str(tmp_path / "absent.pem"))
    with pytest.raises(FileNotFoundError):
        _against(factory, folder)
    assert not (tmp_path / "absent.pem").exists()  # verifying never makes a key
    assert _against(factory, folder, trusted=made.public_key).ok
    with pytest.raises(ValueError):
        _against(factory, folder, trusted="not hex")


def test_a_hash_that_is_not_hex_is_reported_not_crashed_on(trail):
    _, factory, _ = trail
    target = _events(factory)[2]
    with transaction(factory) as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(hash="é" * 64))
    result = _verify(factory)
    assert not result.ok and result.broken_event_id == target.id
