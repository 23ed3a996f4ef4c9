"""The rectification ledger (整改台账): filters, Excel export, print view."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from service import exports
from service.guard import int_arg
from service.web import clock, db, signed_in, who
from workflows.engine.clock import LOCAL_TZ
from workflows.programme import inbox, ledger

bp = Blueprint("ledger", __name__)
HEADERS = [
    "编号",
    "党支部",
    "问题来源",
    "问题",
    "对应标准条目",
    "整改责任人",
    "整改时限",
    "状态",
    "是否逾期",
    "退回次数",
    "登记时间",
    "销号时间",
    "督办约谈",  # last: the columns before it keep their places in exports people already read
]


PAGE = 200


def _filters() -> dict:
    return {
        "branches": inbox.readable_branches(who()),
        "branch": request.args.get("branch") or None,
        "status": request.args.get("status") or None,
        "overdue": request.args.get("overdue") == "1",
        "now": clock().now(),
    }


def _cells(row: ledger.LedgerRow) -> list:
    item = row.item
    when = lambda t: t.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if t else ""  # noqa: E731
    return [
        item.instance_id,
        item.branch or "公司",
        item.source,
        item.title,
        item.standard_item,
        item.responsible,
        item.deadline.isoformat() if item.deadline else "",
        item.status,
        "是" if row.overdue else "否",
        item.rounds,
        when(item.created_at),
        when(item.closed_at),
        row.supervision or "",
    ]


@bp.get("/ledger")
@signed_in
def ledger_page():
    page = int_arg("page", 1, low=1, high=100_000)
    rows = ledger.rows(db(), limit=PAGE + 1, offset=(page - 1) * PAGE, **_filters())
    return render_template(
        "ledger.html",
        rows=rows[:PAGE],
        more=len(rows) > PAGE,
        page=page,
        statuses=ledger.STATUSES,
        print_view=False,
    )


@bp.get("/ledger/print")
@signed_in
def ledger_print():
    rows = list(ledger.each_row(db(), **_filters()))
    return render_template(
        "ledger.html", rows=rows, more=False, page=1, statuses=ledger.STATUSES, print_view=True
    )


@bp.get("/ledger.xlsx")
@signed_in
def ledger_xlsx():
    rows = (_cells(r) for r in ledger.each_row(db(), **_filters()))
    return exports.xlsx("整改台账", HEADERS, rows, "整改台账.xlsx")
