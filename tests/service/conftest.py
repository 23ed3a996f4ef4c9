"""Fixtures of the service tests: the `zhibu` command against a fresh database, and a full table dump."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from service.cli import main
from tests.support import REGISTERED, Driver
from workflows.engine.db import make_engine
from workflows.engine.models import Base


@pytest.fixture
def cli(db_url):
    """Run `zhibu ...` against the test database at a frozen time; `db init` already done."""
    env = {"ZHIBU_DATABASE_URL": db_url, "ZHIBU_NOW": "2026-11-24T10:00:00"}

    def run(*args: str, now: str | None = None):
        return CliRunner().invoke(main, list(args), env={**env, **({"ZHIBU_NOW": now} if now else {})})

    for args in (
        ("db", "init"),
        ("branch", "add", "一支部", "第一党支部", "--members", "12"),
        (
            "user",
            "add",
            "secretary1",
            "--password",
            "Zhibu-test-2026",
            "--role",
            "secretary",
            "--branch",
            "一支部",
        ),
        (
            "user",
            "add",
            "zhangsan",
            "--password",
            "Zhibu-test-2026",
            "--role",
            "branch_member",
            "--branch",
            "一支部",
        ),
        ("user", "add", "office1", "--password", "Zhibu-test-2026", "--role", "office"),
    ):
        result = run(*args)
        assert result.exit_code == 0, result.output
    return run


def dump(db_url) -> dict[str, list]:
    """Every row of every table, for before/after comparisons."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


@pytest.fixture
def assign_task(db_url, deployed, clock):
    """The id of an open 明确责任 task of 一支部 (a rectification just registered by the office)."""
    driver = Driver(db_url, clock, "straight")
    iid = driver.start(REGISTERED, actor="office1")
    task = driver.only_task(iid)
    driver.close()
    return task.id
