"""SQLite: the online backup API takes the snapshot; a restore is checked on a copy, then copied in whole.

Backing up reads the database with `sqlite3.Connection.backup` in one step: in WAL mode that is one read
transaction, a consistent snapshot taken while the service goes on writing. Restoring writes the backup's
database to a scratch file beside the target, checks it there (rows, revision, upgrade to the newest
revision, chain, `zhibu check`) and only then copies it over the still-empty target with the same API,
which replaces the target's pages in one write transaction: the target is either untouched or restored.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from workflows import migrations
from workflows.backup import database
from workflows.backup.archive import BackupError
from workflows.engine.db import make_engine

PART = "database/zhibu.sqlite"


def _path(engine: Engine) -> Path:
    name = engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        raise BackupError("只能备份或恢复 SQLite 数据库文件（不支持内存数据库）")
    return Path(name)


def _copy(source: Path, target: Path) -> None:
    with (
        closing(sqlite3.connect(source, timeout=30)) as src,
        closing(sqlite3.connect(target, timeout=30)) as dst,
    ):
        src.backup(dst)  # pages=-1: the whole database in one step


def snapshot(engine: Engine, work: Path) -> tuple[dict[str, Any], list[tuple[str, Path]], dict[str, Any]]:
    """Copy the database into `work`; return what the manifest records of it, its parts and the method."""
    source = _path(engine)
    if not source.is_file():
        raise BackupError(f"数据库文件不存在：{source}")
    copy = work / "zhibu.sqlite"
    _copy(source, copy)
    with closing(sqlite3.connect(copy)) as snapshot_file:
        snapshot_file.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    reader = create_engine(f"sqlite:///{copy}")
    try:
        with reader.connect() as connection:
            described = database.describe(connection, database.tables(connection))
    finally:
        reader.dispose()
    return described, [(PART, copy)], {"method": "sqlite-backup", "tool": f"SQLite {sqlite3.sqlite_version}"}


class Loader:
    """A restore into one SQLite file: refused at once unless the target is empty."""

    def __init__(self, engine: Engine, manifest: dict[str, Any]):
        self.engine, self.manifest, self.target = engine, manifest, _path(engine)
        self._refuse_unless_empty()
        self._work = tempfile.TemporaryDirectory(prefix=".zhibu-restore-", dir=self.target.parent)
        self.scratch = Path(self._work.name) / "restore.sqlite"

    def _refuse_unless_empty(self) -> None:
        with self.engine.connect() as connection:
            reason = database.occupied(connection)
        if reason:
            raise BackupError(f"目标数据库不是空的（{reason}）：恢复只写入空数据库，什么也没有改动")

    def part(self, name: str, stream: IO[bytes]) -> None:
        if name != PART:
            raise BackupError(f"SQLite 备份中不应有 {name}")
        with open(self.scratch, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)

    def finish(self) -> tuple[database.Checked, str | None, str | None]:
        """Check the scratch copy and bring it to the newest revision; returns (checks, before, after)."""
        staged = make_engine(f"sqlite:///{self.scratch}")
        try:
            with staged.connect() as connection:
                database.check_counts(connection, self.manifest)
            if migrations.current(staged) != self.manifest["revision"]:
                raise BackupError("备份中的数据库与清单记录的表结构版本不符")
            before, after = migrations.upgrade(staged)
            with Session(staged) as session:
                checked = database.check(session, self.manifest)
        finally:
            staged.dispose()
        return checked, before, after

    def commit(self) -> None:
        """Copy the checked database over the target, if that is still empty."""
        self._refuse_unless_empty()
        self.engine.dispose()  # no pooled connection holds the old file open across the copy
        _copy(self.scratch, self.target)
        self._work.cleanup()

    def rollback(self) -> None:
        self._work.cleanup()
