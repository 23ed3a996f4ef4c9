"""`zhibu audit checkpoint` and `zhibu audit verify --checkpoints`, and the scheduler's daily checkpoint."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from service import scheduler
from workflows.deadlines import notify
from workflows.engine import checkpoints
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import AuditEvent, AuditHead


def test_checkpoint_then_verify_finds_deleted_newest_events(cli, db_url, tmp_path):
    folder = tmp_path / "cp"
    made = cli("audit", "checkpoint", "--dir", str(folder))
    assert made.exit_code == 0 and "签名公钥" in made.output
    assert len(list(folder.glob("checkpoint-*.json"))) == 1
    ok = cli("audit", "verify", "--checkpoints", str(folder))
    assert ok.exit_code == 0 and "与检查点一致" in ok.output

    factory = make_session_factory(make_engine(db_url))
    with transaction(factory) as session:
        keep = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).offset(1)).first()
        session.execute(delete(AuditEvent).where(AuditEvent.seq > keep.seq))
        session.execute(update(AuditHead).values(seq=keep.seq, hash=keep.hash))
    assert cli("audit", "verify").exit_code == 0  # the chain alone cannot see a cut end
    cut = cli("audit", "verify", "--checkpoints", str(folder))
    assert cut.exit_code == 1 and f"第 {keep.seq + 1} 号事件缺失" in cut.output


def test_the_scheduler_writes_a_checkpoint_and_sends_it_to_the_office(cli, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ZHIBU_NOW", "2026-11-24T10:00:00")
    factory = make_session_factory(make_engine(db_url))
    done = scheduler.run_once(factory)
    assert list(done)[:3] == ["sweep", "messages", "deliver"] and "checkpoint" in done
    [made] = checkpoints.read_all(checkpoints.directory())
    assert made.seq == done["checkpoint"]
    with factory() as session:
        [message] = notify.inbox(session, "office1")
    assert message.kind == "checkpoint" and made.hash in message.body and made.public_key in message.body
