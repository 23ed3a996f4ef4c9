"""Backups: backup → drop → restore brings back every row, the audit chain and the evidence files.

A restore writes nothing unless the file is intact, the key is the backup's, the target is empty and the
result checks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from tests.support import REGISTERED, Driver
from workflows import backup, migrations
from workflows.backup import archive
from workflows.backup.archive import BackupError
from workflows.engine import consistency, db
from workflows.engine.audit import MissingKey, verify
from workflows.engine.clock import LOCAL_TZ, FixedClock
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.engine.models import AuditEvent, TaskRecord
from workflows.programme import demo, evidence

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=LOCAL_TZ)
PDF = "%PDF-1.4\n% 支委会记录\n".encode()
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def attach_evidence(factory, root: Path, *files: tuple[str, bytes]) -> None:
    """Upload evidence files to the first open task."""
    with transaction(factory) as session:
        query = select(TaskRecord).where(TaskRecord.status == "open").order_by(TaskRecord.id).limit(1)
        task = session.scalars(query).one()
        for name, content in files:
            evidence.store(
                session, content=content, name=name, task=task, uploaded_by="tester", now=NOW, root=root
            )


def stored(root: Path, content: bytes) -> Path:
    digest = hashlib.sha256(content).hexdigest()
    return root / digest[:2] / digest


@contextmanager
def empty_database(db_url: str, folder: Path) -> Iterator[str]:
    """The URL of another empty database on `db_url`'s backend (on PostgreSQL: a schema of another name)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{folder / f'other-{uuid.uuid4().hex[:8]}.db'}"
        return
    schema = f"zhibu_t_{uuid.uuid4().hex[:12]}"
    server = make_url(db_url).difference_update_query(["options"])
    admin = sa.create_engine(server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield server.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _drop(db_url: str) -> None:
    """The database gone: the SQLite file deleted, or the PostgreSQL schema dropped and made again, empty."""
    if db_url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(make_url(db_url).database + suffix).unlink(missing_ok=True)
        return
    schema = make_url(db_url).query["options"].split("=", 1)[1]
    admin = sa.create_engine(make_url(db_url).difference_update_query(["options"]))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema}")
    admin.dispose()


def _rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every table there is (reflected, so any revision), in primary-key order."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            meta = sa.MetaData()
            meta.reflect(conn)
            return {
                t.name: [tuple(row) for row in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in meta.sorted_tables
            }
    finally:
        engine.dispose()


def _tables(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def _restore(url: str, file: Path, root: Path) -> backup.Summary:
    engine = make_engine(url)
    try:
        return backup.restore(engine, file, evidence_root=root)
    finally:
        engine.dispose()


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


def _holds_together(url: str) -> None:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        assert verify(session).ok
        assert list(consistency.mismatches(session)) == []
    engine.dispose()


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def small(db_url, deployed, clock, store):
    """A registered rectification item with one evidence file; returns the session factory."""
    driver = Driver(db_url, clock, "straight")
    driver.start(REGISTERED, actor="office1")
    driver.close()
    attach_evidence(deployed, store, ("支委会记录.pdf", PDF))
    return deployed


@pytest.fixture
def made(small, engine, store, tmp_path) -> Path:
    """A backup of the small database."""
    file = tmp_path / "backups" / "zhibu.backup"
    backup.backup(engine, file, evidence_root=store, now=NOW)
    return file


def test_backup_drop_restore_brings_back_every_row_the_chain_and_evidence(db_url, engine, store, tmp_path):
    factory = make_session_factory(engine)
    demo.run(factory, FixedClock(NOW))
    attach_evidence(factory, store, ("支委会记录.pdf", PDF), ("现场照片.png", PNG))
    before = _rows(db_url)
    file = tmp_path / "backups" / "zhibu.backup"

    made = backup.backup(engine, file, evidence_root=store, now=NOW)
    assert made.method == ("sqlite-backup" if db_url.startswith("sqlite") else "pg_dump")
    assert made.rows == sum(len(rows) for name, rows in before.items() if name != "alembic_version")
    assert made.events == len(before["audit_events"]) > 400 and made.evidence == 2
    assert file.stat().st_mode & 0o777 == 0o600 and os.listdir(file.parent) == ["zhibu.backup"]

    engine.dispose()
    _drop(db_url)
    shutil.rmtree(store)
    assert _tables(db_url) == []
    restored = make_engine(db_url)
    done = backup.restore(restored, file, evidence_root=store)

    assert _rows(db_url) == before
    assert (done.events, done.head_hash, done.evidence) == (made.events, made.head_hash, 2)
    _holds_together(db_url)
    assert stored(store, PDF).read_bytes() == PDF and stored(store, PNG).read_bytes() == PNG
    assert not list(store.glob(".restore-*"))  # the staging folder is gone
    # The sequences go on after the restored rows: new events and files get fresh ids.
    attach_evidence(make_session_factory(restored), store, ("补充材料.pdf", PDF + b"2"))
    _holds_together(db_url)
    restored.dispose()


@pytest.mark.skipif(not os.environ.get("ZHIBU_TEST_POSTGRES_URL"), reason="needs PostgreSQL")
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_without_pg_dump_a_logical_export_round_trips_into_another_schema(
    db_url, engine, store, tmp_path, monkeypatch
):
    demo.run(make_session_factory(engine), FixedClock(NOW))
    attach_evidence(make_session_factory(engine), store, ("支委会记录.pdf", PDF))
    monkeypatch.setattr("workflows.backup.postgres.shutil.which", lambda name: None)
    made = backup.backup(engine, tmp_path / "zhibu.backup", evidence_root=store, now=NOW)
    assert made.method == "copy"
    with empty_database(db_url, tmp_path) as other:
        done = _restore(other, tmp_path / "zhibu.backup", tmp_path / "restored")
        assert _rows(other) == _rows(db_url)
        assert done.head_hash == made.head_hash
        _holds_together(other)
    assert stored(tmp_path / "restored", PDF).read_bytes() == PDF


def test_restore_goes_into_a_database_that_zhibu_db_upgrade_made(small, made, db_url, tmp_path):
    with empty_database(db_url, tmp_path) as other:
        target = make_engine(other)
        migrations.upgrade(target)
        db.prepare(target)  # the chain's head row at 0: still empty
        backup.restore(target, made, evidence_root=tmp_path / "restored")
        target.dispose()
        assert _rows(other) == _rows(db_url)


def test_restore_into_a_database_with_rows_is_refused_and_changes_nothing(small, made, db_url, engine, store):
    before, files = _rows(db_url), _files(store)
    with pytest.raises(BackupError, match="目标数据库不是空的（表 .* 中已有 \\d+ 行）"):
        backup.restore(engine, made, evidence_root=store)
    assert _rows(db_url) == before and _files(store) == files


def _rewrite(file: Path, change) -> None:
    """Rewrite the backup with `change(name, content)` applied to each member."""
    with tarfile.open(file) as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar.getmembers()]
    with tarfile.open(file, "w:gz") as tar:
        for info, content in members:
            content = change(info.name, content)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def _edit_first_event(folder: Path):
    """A change that makes the first audit event's actor someone else, in whichever form the rows are."""

    def change(name: str, content: bytes) -> bytes:
        if name == "database/zhibu.sqlite":
            scratch = folder / "edit.sqlite"
            scratch.write_bytes(content)
            with closing(sqlite3.connect(scratch)) as conn, conn:
                assert conn.execute("UPDATE audit_events SET actor = 'intruder' WHERE seq = 1").rowcount == 1
            return scratch.read_bytes()
        if name in ("database/pg_dump.sql", "database/audit_events.copy"):
            header = content.index(b".audit_events (") if name.endswith(".sql") else None
            start = 0 if header is None else content.index(b"\n", header) + 1
            end = content.index(b"\n", start)
            row = content[start:end]
            assert b"\ttester\t" in row
            return content[:start] + row.replace(b"\ttester\t", b"\tintruder\t") + content[end:]
        return content

    return change


def _forge_evidence(name: str, content: bytes) -> bytes:
    return b"%PDF-1.4 forged" if name.startswith("evidence/") else content


def _edit_manifest(name: str, content: bytes) -> bytes:
    return content.replace(b'"seq": ', b'"seq": 1') if name == "manifest.json" else content


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("event", "恢复失败，目标数据库未改动：备份文件被改动过：database/.* 的内容与清单不符"),
        ("evidence", "恢复失败，目标数据库未改动：备份文件被改动过：佐证材料 .* 的内容与其哈希不符"),
        ("manifest", "备份清单的签名不符：备份文件被改动过"),
    ],
)
def test_a_tampered_backup_is_refused_and_nothing_is_written(small, made, db_url, tmp_path, what, message):
    before = made.read_bytes()
    change = {"event": _edit_first_event(tmp_path), "evidence": _forge_evidence, "manifest": _edit_manifest}
    _rewrite(made, change[what])
    assert made.read_bytes() != before
    with empty_database(db_url, tmp_path) as other:
        with pytest.raises(BackupError, match=message):
            _restore(other, made, tmp_path / "restored")
        assert _tables(other) == []
    assert _files(tmp_path / "restored") == []


def test_a_backup_whose_chain_was_broken_is_not_restored(small, engine, store, db_url, tmp_path):
    with transaction(small) as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="intruder"))
    file = tmp_path / "zhibu.backup"
    backup.backup(engine, file, evidence_root=store, now=NOW)  # a backup keeps what is there
    with empty_database(db_url, tmp_path) as other:
        with pytest.raises(BackupError, match="恢复失败，目标数据库未改动：审计链已被破坏：事件 id=2"):
            _restore(other, file, tmp_path / "restored")
        assert _tables(other) == []
    assert _files(tmp_path / "restored") == []


def test_restore_needs_the_key_the_backup_was_made_with(made, db_url, tmp_path, monkeypatch):
    with empty_database(db_url, tmp_path) as other:
        monkeypatch.setenv("ZHIBU_AUDIT_KEY", "another-deployments-key")
        with pytest.raises(BackupError, match="本机的审计链密钥不是制作备份时的密钥"):
            _restore(other, made, tmp_path / "restored")
        monkeypatch.delenv("ZHIBU_AUDIT_KEY")
        monkeypatch.setenv("ZHIBU_AUDIT_KEY_FILE", str(tmp_path / "nowhere" / "audit_key"))
        with pytest.raises(MissingKey, match="审计链密钥 .* 不存在"):
            _restore(other, made, tmp_path / "restored")
        assert _tables(other) == []


def test_a_backup_at_an_older_revision_is_upgraded_after_restoring(db_url, tmp_path):
    old = make_engine(db_url)
    migrations.init_db(old)
    demo.run(make_session_factory(old), FixedClock(NOW))
    migrations.downgrade(old, "0001")  # the demo as a database at 0001 holds it
    before = _rows(db_url)
    made = backup.backup(old, tmp_path / "old.backup", evidence_root=tmp_path / "store", now=NOW)
    old.dispose()
    assert made.revision == "0001"
    with empty_database(db_url, tmp_path) as other:
        target = make_engine(other)
        done = backup.restore(target, tmp_path / "old.backup", evidence_root=tmp_path / "restored")
        assert (done.revision, done.upgraded_to) == ("0001", migrations.head())
        assert migrations.current(target) == migrations.head() and migrations.differences(target) == []
        target.dispose()
        after = _rows(other)
        assert after.pop("job_runs") == [] and after.pop("alembic_version") == [(migrations.head(),)]
        assert after.pop("messages") == []  # 0004: none was sent before
        # 0004 indexed what the running instances await (the demo's diagrams await messages); the
        # index is checked against the workflows by _holds_together below
        awaited = {row[2] for row in after.pop("message_waits")}
        assert awaited == {"年度结束", "确定为示范点", "支部意见反馈", "公司年度结束"}
        for table in ("branch_years", "grade_rounds", "feedback_items"):  # 0006: no steps ran since
            assert after.pop(table) == []
        # 0006 gave each ledger item its year (the demo's are all of 2026) and nothing was carried
        assert {row[-2:] for row in after["rectifications"]} == {(2026, None)}
        after["rectifications"] = [row[:-2] for row in after["rectifications"]]
        # 0005: no scheduled spot check ran; the leadership titles and the missed occurrences' items
        # are columns of their own, empty in a database that comes from 0001
        assert after.pop("spot_check_runs") == []
        for table in ("users", "occurrences"):
            assert {row[-1] for row in after[table]} == {None}
            after[table] = [row[:-1] for row in after[table]]
        programme_years = after.pop("programme_years")  # 0003 claimed the demo's year on the way up
        assert [row[0] for row in programme_years] == [2026]
        assert before.pop("alembic_version") == [("0001",)]
        assert after == before
        _holds_together(other)


def test_a_backup_from_newer_code_is_refused(made, db_url, tmp_path):
    body = []

    def newer(name: str, content: bytes) -> bytes:
        if name == "manifest.json":
            body.append(json.dumps({**json.loads(content), "revision": "9999"}).encode())
            return body[0]
        if name == "manifest.sig":
            return archive.signature(body[0]).encode()  # signed with the right key: only the revision is new
        return content

    _rewrite(made, newer)
    with empty_database(db_url, tmp_path) as other:
        newest = migrations.head()
        with pytest.raises(BackupError, match=f"表结构版本 9999 比本程序所知的最新版本 {newest} 还新"):
            _restore(other, made, tmp_path / "restored")
        assert _tables(other) == []


def test_a_missing_evidence_file_fails_the_backup_and_leaves_no_file(small, engine, store, tmp_path):
    stored(store, PDF).unlink()
    folder = tmp_path / "backups"
    with pytest.raises(BackupError, match="佐证材料文件缺失"):
        backup.backup(engine, folder / "zhibu.backup", evidence_root=store, now=NOW)
    assert os.listdir(folder) == []
