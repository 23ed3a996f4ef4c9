"""通报批评: every notice of criticism the escalation ladder filed, for the company's readers.

The office, the leadership group and inspectors read all of them here (the dashboard's guard); a
branch's own notices are also in its 工作档案, which its people and contact committee members read.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from service.guard import int_arg
from service.tasks import PROCESSES
from service.web import db, signed_in, status_of, who
from workflows.deadlines import escalation
from workflows.engine.errors import ZhibuError
from workflows.programme import inbox, org

bp = Blueprint("notices", __name__)


@bp.get("/notices")
@signed_in
def notices_page():
    if inbox.readable_branches(who()) is not None:  # the whole company: office, leadership, inspectors
        abort(403, "通报批评汇总仅对党委工作室、领导小组和督查人员开放；本支部的通报见本支部工作档案")
    code = request.args.get("branch", "").strip() or None
    year = int_arg("year", low=2000, high=2200)
    text = request.args.get("q", "").strip()[:100] or None
    branches = org.active_branches(db())
    if code is not None:
        try:
            chosen = org.branch(db(), code)
        except ZhibuError as exc:
            abort(status_of(exc), exc.message)
        if chosen not in branches:  # a branch since closed: still chosen in the filter
            branches.append(chosen)
    lines = escalation.notice_lines(db(), code, year=year, text=text)
    filtered = code is not None or year is not None or text is not None
    return render_template(
        "notices.html",
        notice_lines=lines,
        total=escalation.notice_count(db()) if filtered else len(lines),
        filtered=filtered,
        branches=branches,
        years=escalation.notice_years(db()),
        chosen={"branch": code or "", "year": year, "q": text or ""},
        processes=PROCESSES,
    )
