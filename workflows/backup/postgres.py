"""PostgreSQL: the rows of one schema, dumped from one snapshot; restored by COPY in one transaction.

Backing up opens a REPEATABLE READ, READ ONLY transaction and exports its snapshot: `pg_dump --data-only
--schema=S --snapshot=...` dumps exactly the rows that transaction sees, and the manifest (rows per table,
the chain's head, the evidence list) is read in that same transaction. Without pg_dump on the PATH (or
with `logical=True`) the rows are copied out in that transaction by COPY TO STDOUT, one part per table.

The dump holds rows only, never schema. pg_dump's SQL names the dumped schema in every statement, and a
restore may go to a schema of another name (a second database, a test's own schema); the schema is the
code's own anyway: the migrations rebuild it at the backup's revision. So restoring, in one transaction:
refuse unless the target is empty; drop the empty tables a `zhibu db upgrade` may have left; migrate to
the backup's revision; COPY each table's rows into the target's current schema (table and column names
parsed strictly and checked against that schema, so nothing from the file runs as SQL); reset the
sequences; upgrade to the newest revision; check. Only a passing check commits: DDL is transactional on
PostgreSQL, so a failure at any step leaves the target exactly as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy import URL, Connection, Engine, inspect, text
from sqlalchemy.orm import Session

from workflows import migrations
from workflows.backup import database
from workflows.backup.archive import BackupError

PG_DUMP_PART = "database/pg_dump.sql"
COPY_PART = "database/{}.copy"
_IDENT = rb'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)'
_COPY = re.compile(
    rb"COPY " + _IDENT + rb"\.(" + _IDENT + rb") \(((?:" + _IDENT + rb", )*" + _IDENT + rb")\) FROM stdin;\n"
)


def snapshot(
    engine: Engine, work: Path, *, logical: bool = False
) -> tuple[dict[str, Any], list[tuple[str, Path]], dict[str, Any]]:
    """Dump the schema's rows into `work`; return what the manifest records, the parts and the method."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            connection.exec_driver_sql("SET LOCAL client_encoding TO 'UTF8'")
            reflected = database.tables(connection)
            described = database.describe(connection, reflected)
            schema = connection.scalar(text("SELECT current_schema()"))
            tool = None if logical else shutil.which("pg_dump")
            if tool is None:
                return described, *_copy_out(connection, schema, reflected, work)
            exported = connection.scalar(text("SELECT pg_export_snapshot()"))
            out = work / "pg_dump.sql"
            version = _pg_dump(tool, engine.url, schema, exported, out)
            return described, [(PG_DUMP_PART, out)], {"method": "pg_dump", "tool": version}


def _pg_dump(tool: str, url: URL, schema: str, exported: str, out: Path) -> str:
    params = {key: value for key, value in url.query.items() if isinstance(value, str)}
    conninfo = make_conninfo(
        "", host=url.host, port=url.port, user=url.username, dbname=url.database, **params
    )
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}  # not on the command line
    name = '"' + schema.replace('"', '""') + '"'
    command = [
        *(tool, f"--dbname={conninfo}", "--data-only", "--format=plain", "--encoding=UTF8"),
        *(f"--schema={name}", f'--exclude-table={name}."{database.VERSIONS}"'),
        *(f"--snapshot={exported}", f"--file={out}"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(
            f"pg_dump 失败（退出码 {done.returncode}）：{done.stderr.strip()}；可加 --logical 改用逻辑导出"
        )
    return subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def _copy_out(
    connection: Connection, schema: str, reflected: list, work: Path
) -> tuple[list[tuple[str, Path]], dict[str, Any]]:
    raw = connection.connection.dbapi_connection
    parts, order = [], []
    for table in reflected:
        columns = [column.name for column in table.columns]
        path = work / f"{table.name}.copy"
        statement = _copy_sql("TO STDOUT", schema, table.name, columns)
        with raw.cursor() as cursor, cursor.copy(statement) as copy, open(path, "wb") as out:
            for chunk in copy:
                out.write(chunk)
        parts.append((COPY_PART.format(table.name), path))
        order.append({"table": table.name, "columns": columns})
    return parts, {"method": "copy", "tool": "COPY TO STDOUT", "copy": order}


def _copy_sql(direction: str, schema: str, table: str, columns: list[str]) -> sql.Composed:
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    return sql.SQL("COPY {}.{} ({}) " + direction).format(
        sql.Identifier(schema), sql.Identifier(table), names
    )


class Loader:
    """A restore into the target's current schema, in one transaction opened here."""

    def __init__(self, engine: Engine, manifest: dict[str, Any]):
        self.manifest = manifest
        self.revision = manifest["revision"] or migrations.BASELINE
        self.connection = engine.connect()
        self.transaction = self.connection.begin()
        try:
            self._prepare()
        except BaseException:
            self.rollback()
            raise

    def _prepare(self) -> None:
        connection = self.connection
        connection.exec_driver_sql("SET LOCAL client_encoding TO 'UTF8'")
        if reason := database.occupied(connection):
            raise BackupError(f"目标数据库不是空的（{reason}）：恢复只写入空数据库，什么也没有改动")
        if leftover := inspect(connection).get_table_names():  # empty, as `zhibu db upgrade` left them
            quote = connection.dialect.identifier_preparer.quote
            connection.exec_driver_sql(f"DROP TABLE {', '.join(map(quote, leftover))} CASCADE")
        self.schema = connection.scalar(text("SELECT current_schema()"))
        database.migrate(connection, self.revision)
        self.columns = {t.name: {c.name for c in t.columns} for t in database.tables(connection)}
        self.copied = {item["table"]: item["columns"] for item in self.manifest.get("copy", [])}

    def part(self, name: str, stream: IO[bytes]) -> None:
        if self.manifest["method"] == "pg_dump" and name == PG_DUMP_PART:
            for table, columns, lines in _blocks(stream):
                self._copy_in(table, columns, lines)
            return
        tables = {COPY_PART.format(table): table for table in self.copied}
        if self.manifest["method"] != "copy" or name not in tables:
            raise BackupError(f"PostgreSQL 备份中不应有 {name}")
        self._copy_in(tables[name], self.copied[tables[name]], iter(lambda: stream.read(1 << 20), b""))

    def _copy_in(self, table: str, columns: list[str], chunks: Iterable[bytes]) -> None:
        if table == database.VERSIONS:
            for _ in chunks:
                pass
            return
        if table not in self.columns or not set(columns) <= self.columns[table]:
            raise BackupError(f"备份中的表 {table} 与表结构版本 {self.revision} 不符")
        raw = self.connection.connection.dbapi_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(_copy_sql("FROM STDIN", self.schema, table, columns)) as copy,
        ):
            for chunk in _batched(chunks):
                copy.write(chunk)

    def finish(self) -> tuple[database.Checked, str | None, str | None]:
        """Reset sequences, check the rows, upgrade to the newest revision, check the whole."""
        connection = self.connection
        _reset_sequences(connection)
        database.check_counts(connection, self.manifest)
        database.migrate(connection, "head")
        with Session(bind=connection) as session:
            checked = database.check(session, self.manifest)
        return checked, self.revision, migrations.head()

    def commit(self) -> None:
        self.transaction.commit()
        self.connection.close()

    def rollback(self) -> None:
        if self.transaction.is_active:
            self.transaction.rollback()
        self.connection.close()


def _blocks(stream: IO[bytes]) -> Iterator[tuple[str, list[str], Iterator[bytes]]]:
    """The COPY blocks of pg_dump's plain output as (table, columns, data lines); the rest is skipped."""
    for line in stream:
        if match := _COPY.fullmatch(line):
            yield _name(match[1]), [_name(token) for token in re.findall(_IDENT, match[2])], _rows(stream)


def _rows(stream: IO[bytes]) -> Iterator[bytes]:
    for line in stream:
        if line == b"\\.\n":
            return
        yield line
    raise BackupError("pg_dump 的输出不完整：COPY 数据没有结束")


def _name(token: bytes) -> str:
    name = token.decode("utf-8")
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _batched(chunks: Iterable[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    batch, length = [], 0
    for chunk in chunks:
        batch.append(chunk)
        length += len(chunk)
        if length >= size:
            yield b"".join(batch)
            batch, length = [], 0
    if batch:
        yield b"".join(batch)


def _reset_sequences(connection: Connection) -> None:
    """Each serial column's sequence continues after the largest restored value."""
    quote = connection.dialect.identifier_preparer.quote
    columns = connection.execute(
        text(
            "SELECT table_name, column_name,"
            " pg_get_serial_sequence(format('%I.%I', table_schema, table_name), column_name)"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
        )
    )
    for table, column, sequence in columns.all():
        if sequence is not None:
            largest = f"SELECT max({quote(column)}) FROM {quote(table)}"
            connection.execute(
                text(f"SELECT setval(:s, COALESCE(({largest}), 0) + 1, false)"), {"s": sequence}
            )
