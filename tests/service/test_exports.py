"""Exports hold every row the filters select, however many; the ledger's overdue filter pages in SQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from openpyxl import load_workbook

from service import exports
from workflows.engine import audit
from workflows.engine.clock import end_of_day
from workflows.engine.db import transaction
from workflows.programme import ledger

from .test_app import app_for, signed_in

MANY = 5_100  # past the 5,000 rows exports used to stop at


def add_events(factory, clock, count: int, *, branch: str = "一支部") -> None:
    with transaction(factory) as session:
        for n in range(count):
            audit.append(
                session,
                action="task.commented",
                actor="secretary1",
                occurred_at=clock.now(),
                branch=branch,
                data={"n": n},
            )


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_trail_exports_hold_every_event(db_url, deployed, clock):
    add_events(deployed, clock, MANY)
    client = signed_in(app_for(db_url, clock).test_client(), "office1")
    with deployed() as session:
        total = len(list(audit.each_event(session, branches=None)))
    assert total > MANY

    rows = csv_rows(client.get("/trail.csv").data)
    assert rows[0][:4] == ["序号", "时间", "操作人", "事件"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, total + 1))  # every event, in chain order

    book = load_workbook(io.BytesIO(client.get("/trail.xlsx").data), read_only=True)
    sheet = book["审计记录"]
    seqs = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert seqs == list(range(1, total + 1))


def test_trail_export_keeps_the_readers_filters(db_url, deployed, clock):
    add_events(deployed, clock, 30, branch="一支部")
    add_events(deployed, clock, 20, branch="二支部")
    client = signed_in(app_for(db_url, clock).test_client(), "office1")
    rows = csv_rows(client.get("/trail.csv?branch=二支部&actor=secretary1").data)[1:]
    assert len(rows) == 20 and {r[6] for r in rows} == {"二支部"}


def test_a_workbook_goes_on_to_another_sheet_at_the_row_limit():
    rows = ([n, f"问题{n}"] for n in range(7))
    response = exports.xlsx("台账", ["编号", "问题"], rows, "台账.xlsx", rows_per_sheet=3)
    body = response.get_data()
    assert response.content_length == len(body)
    assert "filename*=UTF-8''%E5%8F%B0%E8%B4%A6.xlsx" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["台账", "台账（2）", "台账（3）"]
    for name, expected in zip(book.sheetnames, ([0, 1, 2], [3, 4, 5], [6]), strict=True):
        sheet = book[name]
        assert [c.value for c in sheet[1]] == ["编号", "问题"] and sheet["A1"].font.bold
        assert sheet.freeze_panes == "A2"
        assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == expected


def test_an_empty_export_still_has_its_header():
    body = exports.csv_file(["编号", "问题"], [], "台账.csv").get_data()
    book = load_workbook(io.BytesIO(exports.xlsx("台账", ["编号"], [], "台账.xlsx").get_data()))
    assert body.decode("utf-8") == "\ufeff编号,问题\r\n"
    assert [c.value for c in book["台账"][1]] == ["编号"]


def add_items(factory, clock, *, overdue: int, on_time: int) -> None:
    """Ledger rows: the oldest are overdue (deadline yesterday), the newest are not (deadline today)."""
    today = clock.now().date()
    with transaction(factory) as session:
        for n in range(overdue + on_time):
            session.add(
                ledger.Rectification(
                    instance_id=n + 1,
                    branch="一支部",
                    title=f"问题{n}",
                    status="整改中",
                    deadline=today - timedelta(days=1) if n < overdue else today,
                    rounds=0,
                    created_at=clock.now() - timedelta(minutes=overdue + on_time - n),
                    updated_at=clock.now(),
                )
            )


def test_the_overdue_filter_pages_through_every_overdue_item(db_url, deployed, clock):
    add_items(deployed, clock, overdue=30, on_time=250)  # the overdue ones are all past the first page
    client = signed_in(app_for(db_url, clock).test_client(), "office1")
    page = client.get("/ledger?overdue=1").get_data(as_text=True)
    assert page.count('<tr class="late">') == 30 and "下一页" not in page
    exported = load_workbook(io.BytesIO(client.get("/ledger.xlsx?overdue=1").data))["整改台账"]
    assert exported.max_row == 1 + 30
    assert {row[8] for row in exported.iter_rows(min_row=2, values_only=True)} == {"是"}
    everything = load_workbook(io.BytesIO(client.get("/ledger.xlsx").data))["整改台账"]
    assert everything.max_row == 1 + 280


def test_overdue_starts_at_the_midnight_after_the_deadline(db_url, deployed, clock):
    add_items(deployed, clock, overdue=1, on_time=1)
    with deployed() as session:
        now = clock.now()
        flagged = {r.item.title: r.overdue for r in ledger.each_row(session, branches=None, now=now)}
        filtered = [r.item.title for r in ledger.each_row(session, branches=None, now=now, overdue=True)]
        assert flagged == {"问题0": True, "问题1": False} and filtered == ["问题0"]
        midnight = end_of_day(now.date())  # today's deadline has just passed
        at_midnight = [
            r.item.title for r in ledger.each_row(session, branches=None, now=midnight, overdue=True)
        ]
        assert sorted(at_midnight) == ["问题0", "问题1"]
        assert all(r.overdue for r in ledger.each_row(session, branches=None, now=midnight))
