"""Hot-path statements: a Core statement compiled once per dialect, run on the driver's cursor.

Every human step and every timer reads its instance row and writes the instance row, the task index,
its projections (the ledger row) and the audit chain. Through `Connection.execute` (or
`exec_driver_sql`) each of those statements spends several times longer in SQLAlchemy's per-call
work, such as execution context, parameter and result set-up, than SQLite takes to run it.
`Prepared` keeps the statement written in Core, so the SQL is SQLAlchemy's for either database,
compiles it once per dialect and runs it on the DBAPI cursor of the SQLAlchemy connection, inside
that connection's transaction (begun first, as `Connection.execute` would). Values pass through each
column type's own bind and result processors, so they are stored and read exactly as
`Connection.execute` stores and reads them; driver errors are raised as SQLAlchemy's exceptions
(`IntegrityError`, ...), and `before/after_cursor_execute` listeners see every statement. Only
SQLAlchemy's echo log misses them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names in the order the driver wants them
    defaults: dict[str, Any]  # values bound in the statement itself (e.g. `version + 1`)
    processors: dict[str, Callable[[Any], Any]]
    positional: bool
    columns: tuple[str, ...] = ()  # a query's result keys, in order
    readers: tuple[Callable[[Any], Any] | None, ...] = ()


class Prepared:
    """One statement, compiled per dialect on first use and executed as driver SQL."""

    def __init__(self, statement: UpdateBase | Select):
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return compiled

    def run(self, conn: Connection, params: dict[str, Any] | Sequence[dict[str, Any]]) -> int:
        """Execute an INSERT/UPDATE with one parameter set (or many, as executemany); return the rowcount."""
        compiled = self._for(conn.dialect)
        if isinstance(params, dict):
            cursor = _executed(conn, compiled.sql, _bound(compiled, params), many=False)
        else:
            cursor = _executed(conn, compiled.sql, [_bound(compiled, each) for each in params], many=True)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        """Run a query; its first row as a dict keyed like `Select.selected_columns`, or None."""
        compiled = self._for(conn.dialect)
        cursor = _executed(conn, compiled.sql, _bound(compiled, params), many=False)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        return {
            key: value if read is None or value is None else read(value)
            for key, read, value in zip(compiled.columns, compiled.readers, row, strict=True)
        }


def _executed(conn: Connection, sql: str, params, *, many: bool):
    """A DBAPI cursor that has run `sql` in the connection's transaction; the caller closes it."""
    if not conn.in_transaction():
        conn.begin()  # as Connection.execute would (on SQLite this is where BEGIN IMMEDIATE runs)
    cursor = conn.connection.dbapi_connection.cursor()
    dispatch = conn.dispatch
    try:
        if dispatch.before_cursor_execute:  # instrumentation and tests that watch statements
            dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
        try:
            (cursor.executemany if many else cursor.execute)(sql, params)
        except conn.dialect.loaded_dbapi.Error as exc:
            error = conn.dialect.loaded_dbapi.Error
            raise DBAPIError.instance(sql, params, exc, error, dialect=conn.dialect) from exc
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(conn, cursor, sql, params, None, many)
    except BaseException:
        cursor.close()
        raise
    return cursor


def _compile(statement: UpdateBase | Select, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    positional = bool(compiled.positional)
    if positional:
        names = tuple(compiled.positiontup)
    else:  # named styles: the binds the SQL text actually names
        if dialect.paramstyle != "pyformat":
            raise ValueError(f"Prepared does not know the {dialect.paramstyle} parameter style")
        names = tuple(name for name in compiled.binds if f"%({name})s" in compiled.string)
    if any(bind.expanding or bind.callable is not None for bind in compiled.binds.values()):
        raise ValueError("Prepared takes plain bind parameters only")
    binds = {name: compiled.binds[name] for name in names}
    processors = {}
    for name, bind in binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    defaults = {name: bind.value for name, bind in binds.items() if bind.value is not None}
    columns, readers = (), ()
    if isinstance(statement, Select):
        selected = list(statement.selected_columns)
        columns = tuple(column.key for column in selected)
        readers = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected
        )
    return _Compiled(compiled.string, names, defaults, processors, positional, columns, readers)


def _bound(compiled: _Compiled, params: dict[str, Any]) -> tuple | dict:
    values = []
    for name in compiled.names:
        value = compiled.defaults[name] if name not in params and name in compiled.defaults else params[name]
        processor = compiled.processors.get(name)
        values.append(value if processor is None or value is None else processor(value))
    return tuple(values) if compiled.positional else dict(zip(compiled.names, values, strict=True))
