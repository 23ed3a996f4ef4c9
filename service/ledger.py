"""The rectification ledger (整改台账): filters, Excel export, print view, and registering a problem."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from service import exports, formdata
from service.guard import int_arg
from service.web import clock, commit, current_user, db, signed_in, status_of, who
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.errors import FormInvalid, ZhibuError
from workflows.programme import actions, inbox, ledger

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
    "督办约谈",  # new columns go last: the ones before keep their places in exports people already read
    "下一步",
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


def _when(t) -> str:
    return t.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if t else ""


def _cells(row: ledger.LedgerRow) -> list:
    item = row.item
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
        _when(item.created_at),
        _when(item.closed_at),
        row.supervision or "",
        row.next_step or "",
    ]


def _status(row: ledger.LedgerRow) -> str:
    return row.item.status + (f"（{row.supervision}）" if row.supervision else "")


def _deadline(row: ledger.LedgerRow) -> str:
    return f"{row.item.deadline.isoformat()} 24时前" if row.item.deadline else ""


# Every column a list may show, by its header.
COLUMNS = {
    "编号": lambda r: r.item.instance_id,
    "党支部": lambda r: r.item.branch or "公司",
    "问题来源": lambda r: r.item.source,
    "问题": lambda r: r.item.title,
    "问题描述": lambda r: r.item.description,
    "对应标准条目": lambda r: r.item.standard_item,
    "登记时间": lambda r: _when(r.item.created_at),
    "整改责任人": lambda r: r.item.responsible,
    "整改措施": lambda r: r.item.measures,
    "整改时限": _deadline,
    "状态": _status,
    "是否逾期": lambda r: "是" if r.overdue else "否",
    "退回次数": lambda r: r.item.rounds,
    "下一步": lambda r: r.next_step,
    "销号时间": lambda r: _when(r.item.closed_at),
}
# The seed's three lists (问题清单、责任清单、整改清单) are views of one ledger; "ledger" is all of it.
LISTS: dict[str, tuple[str, list[str]]] = {
    "ledger": ("整改台账", HEADERS),
    "problems": (
        "问题清单",
        ["编号", "党支部", "问题来源", "问题", "问题描述", "对应标准条目", "登记时间", "状态"],
    ),
    "responsibilities": (
        "责任清单",
        ["编号", "党支部", "问题", "整改责任人", "整改措施", "整改时限", "状态"],
    ),
    "fixes": (
        "整改清单",
        [
            "编号",
            "党支部",
            "问题",
            "整改责任人",
            "整改时限",
            "状态",
            "是否逾期",
            "退回次数",
            "下一步",
            "销号时间",
        ],
    ),
}


def _list() -> str:
    name = request.args.get("list") or "ledger"
    if name not in LISTS:
        abort(404)
    return name


def _table(name: str, rows) -> tuple[list[str], object]:
    """Headers and (row, cells) pairs of one list."""
    if name == "ledger":
        return HEADERS, ((r, ["" if v is None else v for v in _cells(r)]) for r in rows)
    headers = LISTS[name][1]
    return headers, ((r, ["" if (v := COLUMNS[h](r)) is None else v for h in headers]) for r in rows)


def _render(name: str, rows: list, **page) -> str:
    headers, table = _table(name, rows)
    return render_template(
        "ledger.html",
        rows=rows,
        headers=headers,
        table=list(table),
        lists=LISTS,
        current=name,
        statuses=ledger.STATUSES,
        **page,
    )


@bp.get("/ledger")
@signed_in
def ledger_page():
    name, page = _list(), int_arg("page", 1, low=1, high=100_000)
    rows = ledger.rows(db(), limit=PAGE + 1, offset=(page - 1) * PAGE, **_filters())
    may_register = actions.registering_branches(db(), current_user().username) != frozenset()
    return _render(
        name, rows[:PAGE], more=len(rows) > PAGE, page=page, print_view=False, may_register=may_register
    )


@bp.get("/ledger/print")
@signed_in
def ledger_print():
    return _render(_list(), list(ledger.each_row(db(), **_filters())), more=False, page=1, print_view=True)


@bp.get("/ledger.xlsx")
@signed_in
def ledger_xlsx():
    name = _list()
    headers, table = _table(name, ledger.each_row(db(), **_filters()))
    title = LISTS[name][0]
    return exports.xlsx(title, headers, (cells for _, cells in table), f"{title}.xlsx")


def _register_page(posted: dict | None = None, errors: dict | None = None, status: int = 200):
    branches = actions.registering_branches(db(), current_user().username)
    if branches == frozenset():
        abort(403, "只有党委工作室、督查验收人员或党支部书记可以登记问题")
    schema = actions.registration_form(db())
    values = formdata.values(posted or {}, schema)
    if posted is None and branches is not None and len(branches) == 1:
        values["branch"] = next(iter(branches))  # a secretary registers for their own branch
    page = render_template(
        "register.html", fields=formdata.fields(schema), values=values, errors=errors or {}, branches=branches
    )
    return page, status


@bp.get("/ledger/new")
@signed_in
def register_page():
    return _register_page()


@bp.post("/ledger/new")
@signed_in
def register():
    posted = request.form.to_dict()
    try:
        data = formdata.parse(actions.registration_form(db()), posted)
        row = actions.register_rectification(db(), current_user().username, data, clock=clock())
        commit()
    except FormInvalid as exc:
        db().rollback()
        return _register_page(posted, exc.errors, 400)
    except ZhibuError as exc:
        db().rollback()
        abort(status_of(exc), exc.message)
    flash(f"已登记问题（编号 {row.id}），已转党支部书记明确责任")
    return redirect(url_for("inspect.process_page", instance_id=row.id))
