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


# The seed's three lists (问题清单、责任清单、整改清单) are views of one ledger; "ledger" is all of it.
LISTS: dict[str, tuple[str, list[tuple[str, object]]]] = {
    "ledger": ("整改台账", []),
    "problems": (
        "问题清单",
        [
            ("编号", lambda r: r.item.instance_id),
            ("党支部", lambda r: r.item.branch or "公司"),
            ("问题来源", lambda r: r.item.source),
            ("问题", lambda r: r.item.title),
            ("问题描述", lambda r: r.item.description),
            ("对应标准条目", lambda r: r.item.standard_item),
            ("登记时间", lambda r: _when(r.item.created_at)),
            ("状态", _status),
        ],
    ),
    "responsibilities": (
        "责任清单",
        [
            ("编号", lambda r: r.item.instance_id),
            ("党支部", lambda r: r.item.branch or "公司"),
            ("问题", lambda r: r.item.title),
            ("整改责任人", lambda r: r.item.responsible),
            ("整改措施", lambda r: r.item.measures),
            ("整改时限", lambda r: f"{r.item.deadline.isoformat()} 24时前" if r.item.deadline else ""),
            ("状态", _status),
        ],
    ),
    "fixes": (
        "整改清单",
        [
            ("编号", lambda r: r.item.instance_id),
            ("党支部", lambda r: r.item.branch or "公司"),
            ("问题", lambda r: r.item.title),
            ("整改责任人", lambda r: r.item.responsible),
            ("整改时限", lambda r: f"{r.item.deadline.isoformat()} 24时前" if r.item.deadline else ""),
            ("状态", _status),
            ("是否逾期", lambda r: "是" if r.overdue else "否"),
            ("退回次数", lambda r: r.item.rounds),
            ("下一步", lambda r: r.next_step),
            ("销号时间", lambda r: _when(r.item.closed_at)),
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
    columns = LISTS[name][1]
    return [h for h, _ in columns], (
        (r, ["" if (v := get(r)) is None else v for _, get in columns]) for r in rows
    )


@bp.get("/ledger")
@signed_in
def ledger_page():
    name, page = _list(), int_arg("page", 1, low=1, high=100_000)
    rows = ledger.rows(db(), limit=PAGE + 1, offset=(page - 1) * PAGE, **_filters())
    headers, table = _table(name, rows[:PAGE])
    return render_template(
        "ledger.html",
        rows=rows[:PAGE],
        headers=headers,
        table=list(table),
        lists=LISTS,
        current=name,
        more=len(rows) > PAGE,
        page=page,
        statuses=ledger.STATUSES,
        print_view=False,
        may_register=actions.registering_branches(db(), current_user().username) != frozenset(),
    )


@bp.get("/ledger/print")
@signed_in
def ledger_print():
    name = _list()
    rows = list(ledger.each_row(db(), **_filters()))
    headers, table = _table(name, rows)
    return render_template(
        "ledger.html",
        rows=rows,
        headers=headers,
        table=list(table),
        lists=LISTS,
        current=name,
        more=False,
        page=1,
        statuses=ledger.STATUSES,
        print_view=True,
    )


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
