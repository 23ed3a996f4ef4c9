"""Backups: one file with the database and the evidence files; restored only into an empty database,
and only reported restored once the audit chain verifies and `zhibu check` finds nothing.

Consistency: a backup is one snapshot. SQLite's online backup API copies the database in one read
transaction (WAL: writers go on); on PostgreSQL pg_dump dumps the snapshot of a REPEATABLE READ transaction
(or, without pg_dump, that transaction copies the rows out itself). The manifest — Alembic revision, rows
per table, the chain's head, the evidence files — is read from that same snapshot. Evidence files are
stored before the row naming them commits and never change (they are named by their hash), so every row
in the snapshot has its file, read afterwards and checked against its hash on the way into the archive.

Transactions: restore writes nothing until everything is checked. The backup's signature, each member's
hash and the target's emptiness are checked before loading; the rows are loaded and checked in one
transaction on PostgreSQL (or on a scratch copy for SQLite, copied over the target in one step); evidence
files wait in a folder inside the store and are moved in just before that commit. A failure leaves the
target database as it was; a file moved in for a commit that then failed is what an upload whose step
rolled back leaves too: an unreferenced file under its own hash, harmless.

The audit chain's key is never in the file (keep it apart: with it, the chain proves the trail). The
manifest is signed with it, so restoring needs the key the backup was made with and nobody without the
key can make a file that restores. A backup from an older revision is upgraded after loading; one from a
newer revision than this code knows is refused. Backups restore into the dialect they came from.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from workflows import migrations
from workflows.backup import archive, database, postgres, sqlite
from workflows.backup.archive import BackupError
from workflows.engine.errors import ZhibuError

__all__ = ["BackupError", "Summary", "backup", "restore"]


@dataclass(frozen=True)
class Summary:
    """What a backup holds, or what a restore brought back (with the revision it upgraded to)."""

    file: Path
    dialect: str
    method: str
    created_at: str
    revision: str | None
    tables: int
    rows: int
    events: int
    head_hash: str
    evidence: int
    size: int = 0
    upgraded_to: str | None = None


def backup(
    engine: Engine, file: Path, *, evidence_root: Path, now: datetime, logical: bool = False
) -> Summary:
    """Write a backup of the database behind `engine` and its evidence files to `file`.

    PostgreSQL uses pg_dump when it is on the PATH, else (or with `logical`) a COPY export."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    signer = archive.key_id()  # no key, no backup: the file could never be restored
    with tempfile.TemporaryDirectory(prefix=".zhibu-backup-", dir=file.parent) as work:
        if engine.dialect.name == "sqlite":
            described, parts, method = sqlite.snapshot(engine, Path(work))
        elif engine.dialect.name == "postgresql":
            described, parts, method = postgres.snapshot(engine, Path(work), logical=logical)
        else:
            raise BackupError(f"不支持备份 {engine.dialect.name} 数据库")
        if not described["tables"]:
            raise BackupError("数据库中还没有表（先运行 zhibu db init），没有可备份的内容")
        manifest = {
            **described,
            **method,
            "format": archive.FORMAT,
            "version": archive.VERSION,
            "created_at": now.isoformat(),
            "dialect": engine.dialect.name,
            "audit": {**described["audit"], "key_id": signer},
        }
        size = archive.write(file, manifest, parts, evidence_root)
    return _summary(file, manifest, events=manifest["audit"]["seq"], size=size)


def restore(engine: Engine, file: Path, *, evidence_root: Path) -> Summary:
    """Restore a backup into the empty database behind `engine` and its evidence files into the store."""
    with archive.Reader(Path(file)) as reader:
        manifest = reader.manifest
        dialect = engine.dialect.name
        if manifest["dialect"] != dialect:
            raise BackupError(f"这是 {manifest['dialect']} 数据库的备份，不能恢复到 {dialect} 数据库")
        revision = manifest["revision"] or migrations.BASELINE
        if not database.known(revision):
            raise BackupError(
                f"备份的表结构版本 {revision} 比本程序所知的最新版本 {migrations.head()} 还新：请先升级 zhibu"
            )
        loader = sqlite.Loader(engine, manifest) if dialect == "sqlite" else postgres.Loader(engine, manifest)
        staging = None
        try:
            for name, stream in reader.parts():
                loader.part(name, stream)
            staging = archive.Staging(evidence_root)
            reader.evidence(staging)
            checked, _before, after = loader.finish()
            staging.publish()
            loader.commit()
        except BaseException as exc:
            loader.rollback()
            if staging is not None:
                staging.discard()
            if not isinstance(exc, Exception):
                raise
            reason = exc.message if isinstance(exc, ZhibuError) else f"{type(exc).__name__}: {exc}"
            raise BackupError(f"恢复失败，目标数据库未改动：{reason}") from exc
    return _summary(Path(file), manifest, events=checked.events, upgraded_to=after)


def _summary(file: Path, manifest: dict[str, Any], **more: Any) -> Summary:
    return Summary(
        file=file,
        dialect=manifest["dialect"],
        method=manifest["method"],
        created_at=manifest["created_at"],
        revision=manifest["revision"],
        tables=len(manifest["tables"]),
        rows=sum(manifest["tables"].values()),
        head_hash=manifest["audit"]["hash"],
        evidence=len(manifest["evidence"]),
        **more,
    )
