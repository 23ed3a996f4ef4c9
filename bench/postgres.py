"""PostgreSQL for `make bench`: which server, whether it answers, and a fresh schema per measurement.

The server is `ZHIBU_BENCH_POSTGRES_URL`, else `ZHIBU_TEST_POSTGRES_URL`, else the local test database.
When it cannot be reached the PostgreSQL figures are written as null with the reason; nothing fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from tools.deployment import fresh_postgres_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 5


def postgres_url() -> str:
    """The PostgreSQL database the benchmarks make their schemas in."""
    for name in ("ZHIBU_BENCH_POSTGRES_URL", "ZHIBU_TEST_POSTGRES_URL"):
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    return DEFAULT_URL


def shown(url: str) -> str:
    """The URL as it may be printed and stored (no password)."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def unreachable(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None when it answers (and reports its version)."""
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure to connect is a reason to skip, recorded
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def server_version(url: str) -> str:
    """PostgreSQL's version string (`SHOW server_version`)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SHOW server_version").scalar())
    finally:
        engine.dispose()


@contextmanager
def fresh_schema(url: str, prefix: str) -> Iterator[str]:
    """A new empty schema for one measurement: its URL; dropped afterwards."""
    schema_url, drop = fresh_postgres_schema(url, prefix=prefix)
    try:
        yield schema_url
    finally:
        drop()


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables of this process for a while (e.g. the audit key a deployment uses)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
