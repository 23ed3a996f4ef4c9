"""What both dialects share: describing a snapshot, the empty-target rule, and the checks after loading.

Tables are reflected, not taken from the models, so a database at an older revision is described and
loaded as it is; the models are only used once the schema has been upgraded to the newest revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, func, inspect, select
from sqlalchemy.orm import Session

from workflows import migrations
from workflows.backup.archive import BackupError
from workflows.engine import audit, consistency
from workflows.engine.models import AuditHead, Base
from workflows.programme.evidence import EvidenceFile

VERSIONS = "alembic_version"  # Alembic's own table: never dumped, the manifest records the revision


def tables(connection: Connection) -> list[Table]:
    """The database's tables (reflected), parents before children, without Alembic's."""
    meta = MetaData()
    meta.reflect(connection)
    return [table for table in meta.sorted_tables if table.name != VERSIONS]


def describe(connection: Connection, reflected: list[Table]) -> dict[str, Any]:
    """What the manifest records of a snapshot: revision, rows per table, the chain's head, evidence files."""
    by_name = {table.name: table for table in reflected}
    head = (0, "")
    if "audit_head" in by_name:
        t = by_name["audit_head"]
        head = connection.execute(select(t.c.seq, t.c.hash).where(t.c.id == 1)).first() or head
    files = []
    if "evidence_files" in by_name:
        t = by_name["evidence_files"]
        query = select(t.c.sha256, func.max(t.c.size)).group_by(t.c.sha256).order_by(t.c.sha256)
        files = [{"sha256": sha256, "size": size} for sha256, size in connection.execute(query)]
    return {
        "revision": MigrationContext.configure(connection).get_current_revision(),
        "tables": {t.name: connection.scalar(select(func.count()).select_from(t)) for t in reflected},
        "audit": {"seq": head[0], "hash": head[1]},
        "evidence": files,
    }


def known(revision: str) -> bool:
    """Whether this code has the revision (a backup from newer code has one it does not)."""
    script = ScriptDirectory(str(Path(migrations.__file__).parent))
    return revision in {step.revision for step in script.walk_revisions()}


def migrate(connection: Connection, revision: str) -> None:
    """Upgrade the schema to `revision` inside the caller's transaction."""
    migrations.upgrade_on(connection, revision)


def occupied(connection: Connection) -> str | None:
    """Why the database is no empty target, or None. Empty: no tables, or only zhibu's without rows (as
    `zhibu db upgrade` leaves them; the chain's head row at 0 allowed): a restore never merges into data."""
    names = set(inspect(connection).get_table_names())
    strangers = names - set(Base.metadata.tables) - {VERSIONS}
    if strangers:
        return f"有不属于 zhibu 的表：{'、'.join(sorted(strangers))}"
    meta = MetaData()
    meta.reflect(connection, only=sorted(names - {VERSIONS}))
    for name in sorted(meta.tables):
        table = meta.tables[name]
        if name == "audit_head":
            if connection.execute(select(table.c.id).where(table.c.seq != 0).limit(1)).first():
                return "审计链已有事件"
        elif count := connection.scalar(select(func.count()).select_from(table)):
            return f"表 {name} 中已有 {count} 行"
    return None


def check_counts(connection: Connection, manifest: dict[str, Any]) -> None:
    """Every table holds as many rows as when it was backed up."""
    loaded = {t.name: connection.scalar(select(func.count()).select_from(t)) for t in tables(connection)}
    for name, rows in sorted(manifest["tables"].items()):
        if loaded.get(name) != rows:
            raise BackupError(f"表 {name} 应有 {rows} 行，载入后为 {loaded.get(name, '（无此表）')} 行")


@dataclass(frozen=True)
class Checked:
    """What the checks after loading found: events in the verified chain and the head they end at."""

    events: int
    head_seq: int
    head_hash: str


def check(session: Session, manifest: dict[str, Any]) -> Checked:
    """The loaded database, at the newest revision, proves whole: the chain verifies and ends where the
    backup's did, `zhibu check` finds nothing, and every evidence row has its file in the backup."""
    verified = audit.verify(session)
    if not verified.ok:
        raise BackupError(f"审计链已被破坏：{verified.reason}")
    head = session.get(AuditHead, 1)
    at = (head.seq, head.hash) if head else (0, "")
    if at != (manifest["audit"]["seq"], manifest["audit"]["hash"]):
        raise BackupError(f"审计链尾为第 {at[0]} 号事件，与备份时的第 {manifest['audit']['seq']} 号不符")
    problems = list(consistency.mismatches(session))
    if problems:
        raise BackupError(f"zhibu check 发现 {len(problems)} 处不一致，第一处：{problems[0]}")
    rows = session.execute(select(EvidenceFile.sha256, EvidenceFile.size).distinct()).all()
    listed = {(item["sha256"], item["size"]) for item in manifest["evidence"]}
    if missing := {sha256 for sha256, size in rows if (sha256, size) not in listed}:
        raise BackupError(f"{len(missing)} 个佐证材料有记录而备份中没有文件，如 {min(missing)}")
    return Checked(verified.events, at[0], at[1])
