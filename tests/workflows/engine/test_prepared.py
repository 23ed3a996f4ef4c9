"""Prepared statements: the same SQL, values and errors as `Connection.execute`, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from workflows.engine.clock import LOCAL_TZ
from workflows.engine.db import make_engine
from workflows.engine.models import UTCDateTime
from workflows.engine.prepared import Prepared

METADATA = sa.MetaData()
ITEMS = sa.Table(
    "prepared_items",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(20), unique=True, nullable=False),
    sa.Column("due_at", UTCDateTime),
    sa.Column("version", sa.Integer, nullable=False),
)
WHEN = datetime(2026, 11, 24, 18, 30, 15, 123456, tzinfo=LOCAL_TZ)

ADD = Prepared(insert(ITEMS).values({c.name: bindparam(c.name) for c in ITEMS.c}))
BUMP = Prepared(
    update(ITEMS)
    .where(ITEMS.c.id == bindparam("item_id"), ITEMS.c.version == bindparam("expected"))
    .values(due_at=bindparam("due_at"), version=ITEMS.c.version + 1)
)
FIND = Prepared(
    select(ITEMS.c.id, ITEMS.c.code.label("item_code"), ITEMS.c.due_at).where(
        ITEMS.c.id == bindparam("item_id")
    )
)


@pytest.fixture
def items(db_url):
    engine = make_engine(db_url)
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def row(n: int, due: datetime | None = WHEN) -> dict:
    return {"id": n, "code": f"c{n}", "due_at": due, "version": 1}


def test_values_are_stored_exactly_as_connection_execute_stores_them(items):
    with items.begin() as conn:
        assert ADD.run(conn, row(1)) == 1
        conn.execute(insert(ITEMS), row(2))
        stored = conn.execute(select(sa.cast(ITEMS.c.due_at, sa.String)).order_by(ITEMS.c.id)).scalars().all()
    assert stored[0] == stored[1]  # same text on SQLite, same timestamp on PostgreSQL
    with items.connect() as conn:
        assert conn.execute(select(ITEMS.c.due_at).where(ITEMS.c.id == 1)).scalar_one() == WHEN


def test_an_update_applies_its_own_bound_values_and_reports_matched_rows(items):
    later = WHEN + timedelta(days=3)
    with items.begin() as conn:
        ADD.run(conn, row(1))
        assert BUMP.run(conn, {"item_id": 1, "expected": 1, "due_at": later}) == 1
        assert BUMP.run(conn, {"item_id": 1, "expected": 1, "due_at": WHEN}) == 0  # stale version
        version, due = conn.execute(select(ITEMS.c.version, ITEMS.c.due_at)).one()
    assert (version, due) == (2, later)


def test_many_parameter_sets_run_as_one_executemany(items):
    with items.begin() as conn:
        ADD.run(conn, [row(n) for n in range(1, 6)])
        assert conn.execute(select(sa.func.count()).select_from(ITEMS)).scalar_one() == 5


def test_a_query_returns_its_first_row_keyed_and_read_like_core(items):
    with items.begin() as conn:
        ADD.run(conn, [row(1), row(2, None)])
        assert FIND.first(conn, {"item_id": 1}) == {"id": 1, "item_code": "c1", "due_at": WHEN}
        assert FIND.first(conn, {"item_id": 2})["due_at"] is None
        assert FIND.first(conn, {"item_id": 3}) is None
        assert FIND.first(conn, {"item_id": 1})["due_at"].tzinfo is UTC


def test_a_driver_error_is_raised_as_sqlalchemy_error_and_the_transaction_rolls_back(items):
    with items.begin() as conn:
        ADD.run(conn, row(1))
    with pytest.raises(IntegrityError), items.begin() as conn:
        ADD.run(conn, row(2))
        ADD.run(conn, {**row(3), "code": "c1"})  # the unique code again
    with items.connect() as conn:
        assert conn.execute(select(ITEMS.c.id)).scalars().all() == [1]


def test_a_missing_parameter_is_refused_before_the_database_sees_it(items):
    with items.begin() as conn, pytest.raises(KeyError):
        ADD.run(conn, {"id": 1, "code": "c1", "version": 1})


def test_cursor_listeners_see_prepared_statements(items):
    seen: list[str] = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split()[0])

    event.listen(items, "before_cursor_execute", spy)
    try:
        with items.begin() as conn:
            ADD.run(conn, row(1))
            FIND.first(conn, {"item_id": 1})
    finally:
        event.remove(items, "before_cursor_execute", spy)
    assert seen[-2:] == ["INSERT", "SELECT"]


def test_expanding_parameters_are_not_taken(items):
    query = Prepared(select(ITEMS.c.id).where(ITEMS.c.id.in_(bindparam("ids", expanding=True))))
    with items.connect() as conn, pytest.raises(ValueError, match="plain bind parameters"):
        query.first(conn, {"ids": [1, 2]})


def test_a_connection_not_yet_in_a_transaction_begins_one_like_execute_does(items):
    with items.connect() as conn:
        ADD.run(conn, row(1))
        assert conn.in_transaction()
        conn.commit()
        ADD.run(conn, row(2))  # never committed: rolled back when the connection closes
    with items.connect() as conn:
        assert conn.execute(select(ITEMS.c.id)).scalars().all() == [1]
