"""A programme year starts once: a second start, by any command, is refused and writes nothing."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.service.conftest import dump
from workflows.engine.db import make_engine, make_session_factory
from workflows.programme import catalog
from workflows.programme.years import ProgrammeYear


def test_a_year_starts_once_and_keeps_its_catalog_version(cli, db_url):
    started = cli("programme", "start", "2026", now="2026-06-01T09:00:00")
    assert started.exit_code == 0, started.output
    instance_id = int(started.stdout)
    before = dump(db_url)

    again = cli("programme", "start", "2026", now="2026-06-02T09:00:00")
    assert again.exit_code == 1
    assert f"2026 年度工作已于 2026-06-01 启动（流程实例 {instance_id}），不能重复启动" in again.output
    days = ["2026-07-31", "2026-08-31", "2026-12-31", "2027-01-29"]
    data = json.dumps({"year": 2026, **{f"phase{n}_deadline": day for n, day in enumerate(days, start=1)}})
    generic = cli("start", "programme", "--data", data, now="2026-06-02T09:00:00")
    assert generic.exit_code == 1 and "不能重复启动" in generic.output
    assert dump(db_url) == before  # no instance, no branch programme, no task, no audit event

    # 2027 waits until the office closes 2026: refused with the command to run, and nothing written
    early = cli("programme", "start", "2027", now="2026-12-01T09:00:00")
    assert early.exit_code == 1
    assert "2026 年度尚未结束：请先结束 2026 年度（zhibu programme close 2026 --reason 原因）" in early.output
    assert dump(db_url) == before
    closed = cli("programme", "close", "2026", "--reason", "启动新年度", now="2026-12-01T09:00:00")
    assert closed.exit_code == 0, closed.output
    assert "2026 年度已结束：结束党支部流程 1 个" in closed.output  # the one branch, still at its first step
    again = cli("programme", "close", "2026", "--reason", "再次", now="2026-12-01T09:00:00")
    assert again.exit_code == 1 and "2026 年度已于 2026-12-01 结束，不能重复结束" in again.output
    assert cli("programme", "start", "2027", now="2026-12-01T09:00:00").exit_code == 0
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        years = session.scalars(select(ProgrammeYear).order_by(ProgrammeYear.year)).all()
        active = catalog.active(session)
    engine.dispose()
    assert [(y.year, y.instance_id) for y in years][0] == (2026, instance_id)
    assert [y.year for y in years] == [2026, 2027]
    assert {y.catalog_id for y in years} == {active.id}
