"""Functions the programme diagrams call to hold the year together: acceptance of every branch, 限期改正
and 复验, the results and feedback the branches send up, and closing the year.

Like `scripts`, each runs inside the current step (its session, clock and instance) and takes and returns
plain JSON-able data. What crosses between instances travels as BPMN messages in the diagrams; these
functions only record facts and read the ledger, never another instance's state.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workflows.engine import audit
from workflows.engine.models import ProcessInstance, TaskRecord
from workflows.engine.spiff import current_step
from workflows.programme import catalog, coordination, dashboard, ledger, org, years
from workflows.programme.checklist_rows import check_rows, corrective_rows, recheck_rows, score_rows
from workflows.programme.scripts import start_process

PHASE_ITEMS_FILE = Path(__file__).resolve().parents[2] / "data" / "phase_items.json"
UNRESOLVED = "不达标结案"


@lru_cache(maxsize=1)
def _phase_steps() -> list[dict[str, Any]]:
    return json.loads(PHASE_ITEMS_FILE.read_text(encoding="utf-8"))["steps"]


def this_instance_id() -> int:
    """The id of the instance running this step (a message names its sender's item with it)."""
    return current_step().instance.id


def plan_returned_reason(approved: bool, comment: str | None) -> str:
    """What the secretary reads at the top of the plan form when the office sent it back."""
    if approved:
        return ""
    return (
        f"工作计划被党委工作室退回：{comment}" if comment else "工作计划被党委工作室退回，请修改后再次提交。"
    )


def year_checklist(year: int | None = None) -> dict[str, Any]:
    """The catalog a year's programme started with (the active one when no year is known)."""
    session = current_step().session
    started = years.of_year(session, year) if year is not None else None
    return catalog.checklist(session, started.catalog_id if started is not None else None)


def unfinished_phase_steps(checklist: dict[str, Any]) -> dict[str, Any]:
    """The steps of phases 1–3 this branch did not get through, and the catalog items they count against.

    A step is done when the branch got past it (a later step was reached), or, for the last one, when it
    was completed; everything from the first step not done on is unfinished (cut off at the deadline).
    """
    step = current_step()
    records = step.session.execute(
        select(TaskRecord.bpmn_id, TaskRecord.status).where(TaskRecord.instance_id == step.instance.id)
    ).all()
    reached = {bpmn_id for bpmn_id, _ in records}
    completed = {bpmn_id for bpmn_id, status in records if status == "completed"}
    order = _phase_steps()
    names = [s["step"] for s in order]
    unfinished = []
    for index, entry in enumerate(order):
        later = names[index + 1 :]
        done = any(name in reached for name in later) or (not later and entry["step"] in completed)
        if not done:
            unfinished = order[index:]
            break
    known = {item["code"] for item in checklist["items"]}
    items = sorted({code for entry in unfinished for code in entry["items"] if code in known})
    why = ""
    if unfinished:
        parts = [
            f"「{e['name']}」→ 条目 {'、'.join(c for c in e['items'] if c in known)}"
            if any(c in known for c in e["items"])
            else f"「{e['name']}」"
            for e in unfinished
        ]
        why = "阶段任务未完成，对应条目计为不达标（0 分）：" + "；".join(parts)
    return {"steps": [e["step"] for e in unfinished], "items": items, "why": why}


def _graded(checklist, by_code: dict[str, float], vetoed: list[str], forced: list[str]) -> dict[str, Any]:
    session = current_step().session
    scores = {**by_code, **dict.fromkeys(forced, 0.0)}
    missing = [item["code"] for item in checklist["items"] if item["code"] not in scores]
    outcome = catalog.grade(session, checklist["catalog_id"], scores, vetoed)
    why = f"尚有 {len(missing)} 个条目未评分：{'、'.join(missing[:20])}" if missing else ""
    return {
        "missing": missing,
        "total": outcome.total,
        "grade": outcome.grade,
        "passed": outcome.passed and not missing,
        "vetoed": outcome.vetoed,
        "forced": forced,
        "failed_items": sorted(
            item["code"] for item in checklist["items"] if scores.get(item["code"], 0.0) < item["points"]
        ),
        "why": why,
    }


def _record(year: int, kind: str, result: dict[str, Any], reason: str | None = None) -> None:
    step = current_step()
    instance, now = step.instance, step.clock.now()
    dashboard.record_grade(step.session, year, instance.branch, result["total"], result["grade"], now)
    coordination.record_round(
        step.session, year, instance.branch, kind, result, now, instance_id=instance.id, reason=reason
    )


def grade_branch(
    checklist: dict[str, Any],
    scores: list[dict[str, Any]],
    vetoed: list[str],
    year: int,
    unfinished: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Total and grade of an acceptance; items of unfinished phase steps count 0. Kept when complete."""
    by_code = {score["code"]: float(score["score"]) for score in scores}
    result = _graded(checklist, by_code, vetoed, (unfinished or {}).get("items", []))
    if not result["missing"]:
        _record(year, "验收", result)
    return result


def regrade_branch(
    checklist: dict[str, Any],
    scores: list[dict[str, Any]],
    recheck_scores: list[dict[str, Any]],
    vetoed: list[str],
    year: int,
    unfinished: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A 复验: the acceptance's scores with the re-scored items replaced; the new grade is kept beside
    the earlier ones (the 复验 may score the unfinished phases' items again: they were the failures)."""
    by_code = {score["code"]: float(score["score"]) for score in scores}
    rescored = {score["code"]: float(score["score"]) for score in recheck_scores}
    forced = [code for code in (unfinished or {}).get("items", []) if code not in rescored]
    result = _graded(checklist, {**by_code, **rescored}, vetoed, forced)
    if not result["missing"]:
        _record(year, "复验", result)
    return result


def branch_report(year: int, stage: str, result: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    """The message a branch sends up after a grading: where it stands and whether its year is settled."""
    step = current_step()
    if stage == UNRESOLVED:
        _record(year, UNRESOLVED, {**result, "passed": False}, reason)
    return {
        "year": year,
        "branch": step.instance.branch,
        "stage": stage,
        "grade": result.get("grade"),
        "total": result.get("total"),
        "passed": bool(result.get("passed")),
        "settled": bool(result.get("passed")) or stage == UNRESOLVED,
        "reason": reason,
    }


def start_corrective_items(
    branch: str, deadline: str, responsible: str, items: list[dict[str, Any]]
) -> list[int]:
    """One rectification item per problem of a 限期改正 order, each with the order's deadline and
    responsible person (so it goes straight to 整改落实); returns their instance ids."""
    started = []
    for item in items:
        data = {
            "source": "考核验收",
            "branch": branch,
            "title": item["title"],
            "description": item["description"],
            "responsible": responsible,
            "measures": item.get("measures") or "按限期改正要求整改",
            "deadline": deadline,
        }
        if item.get("standard_item"):
            data["standard_item"] = item["standard_item"]
        started.append(start_process("rectification", data))
    return started


def open_rectifications(instance_ids: list[int]) -> list[int]:
    """Which of these rectification items are not signed off yet (read from the ledger)."""
    if not instance_ids:
        return []
    rows = (
        current_step()
        .session.execute(
            select(ledger.Rectification.instance_id, ledger.Rectification.status).where(
                ledger.Rectification.instance_id.in_(instance_ids)
            )
        )
        .all()
    )
    closed = {instance_id for instance_id, status in rows if status == ledger.CLOSED}
    return [i for i in instance_ids if i not in closed]


def record_branch_end(closing: dict[str, Any]) -> str:
    """The year was closed while this branch programme ran: keep where it stood, and say so."""
    step = current_step()
    instance = step.instance
    year = closing.get("year")
    row = coordination.fact(step.session, year, instance.branch) if isinstance(year, int) else None
    open_steps = [
        title
        for (title,) in step.session.execute(
            select(TaskRecord.title).where(TaskRecord.instance_id == instance.id, TaskRecord.status == "open")
        )
    ]
    state = "年度结束时未完成：" + (
        "、".join(open_steps) if open_steps else (row.position if row else "") or "—"
    )
    if row is not None:
        row.end_state = state
        if not row.settled:
            row.status = "随年度结束"
    audit.append(
        step.session,
        action="programme.branch_ended",
        actor=step.actor,
        occurred_at=step.clock.now(),
        instance_id=instance.id,
        branch=instance.branch,
        data={"year": year, "state": state},
    )
    return state


def set_classification(
    classifications: list[dict[str, str]], contacts: list[dict[str, str]], year: int | None = None
) -> dict[str, Any]:
    """Record each branch's classification and track (示范点/薄弱攻坚/同步推进) and the contact branches."""
    step = current_step()
    now = step.clock.now()
    for row in classifications:
        org.classify(step.session, row["branch"], row["classification"], now=now, actor=step.actor)
        if year is not None:
            found = coordination.fact(step.session, year, row["branch"])
            found.classification, found.track = row["classification"], row.get("focus")
    added = 0
    for row in contacts:
        if row["branch"] not in org.contact_branches(step.session, row["username"]):
            org.add_contact(step.session, row["username"], row["branch"], now=now, actor=step.actor)
            added += 1
    step.session.flush()
    return {"classified": len(classifications), "contacts_added": added}


def set_demonstration(branches: list[str], year: int | None = None) -> list[str]:
    """Make exactly these branches the demonstration branches (and their track 示范点 for the year)."""
    step = current_step()
    chosen = org.set_demonstration(step.session, branches, now=step.clock.now(), actor=step.actor)
    if year is not None:
        for code in chosen:
            coordination.fact(step.session, year, code).track = "示范点"
        step.session.flush()
    return chosen


def demonstration_news(year: int) -> list[str]:
    """The 示范点 of the year not yet told (each is told once, by message, and starts 抓点示范)."""
    session = current_step().session
    session.flush()
    news = []
    for code, row in sorted(coordination.of_year(session, year).items()):
        if row.track == "示范点" and not row.demonstration_told:
            row.demonstration_told = True
            news.append(code)
    session.flush()
    return news


def record_feedback(branch_feedback: dict[str, Any]) -> int:
    """Keep a branch's feedback message item by item."""
    step = current_step()
    return coordination.record_feedback(step.session, branch_feedback, step.instance.id, step.clock.now())


def feedback_of(year: int) -> dict[str, Any]:
    """Every branch's feedback for the office's 汇总 task: item by item, and unsuitable indicators counted."""
    session = current_step().session
    names = {b.code: b.name for b in org.active_branches(session)}
    items = [
        {
            "branch": f.branch_code,
            "branch_name": names.get(f.branch_code, f.branch_code),
            "kind": f.kind,
            "text": f.text,
            "reason": f.reason,
        }
        for f in coordination.feedback(session, year)
    ]
    return {"items": items, "unfit_counts": coordination.unfit_counts(session, year)}


def record_branch_result(results: dict[str, Any], branch_result: dict[str, Any]) -> dict[str, Any]:
    """Keep the latest result a branch reported (its acceptance, a 复验, or a closing with 不达标)."""
    branch = branch_result.get("branch")
    if isinstance(branch, str):
        results[branch] = branch_result
    return results


def year_settlement(branch_programmes: dict[str, int], results: dict[str, Any]) -> dict[str, Any]:
    """Whether every branch has been assessed and its 限期改正 resolved; who the year still waits for."""
    waiting = []
    for code in sorted(branch_programmes):
        result = results.get(code)
        if result is None:
            waiting.append(f"{code}（未验收）")
        elif not result.get("settled"):
            waiting.append(f"{code}（限期改正未办结）")
    why = f"尚有 {len(waiting)} 个党支部未办结：{'、'.join(waiting)}" if waiting else ""
    return {"settled": not waiting, "waiting": waiting, "why": why}


def close_year(year: int, reason: str) -> dict[str, Any]:
    """End the year: mark it closed, carry every open rectification item into the next year's ledger,
    and list the branch programmes still running (the diagram tells each of them by message)."""
    step = current_step()
    session, now = step.session, step.clock.now()
    years.close(session, year, reason=reason, now=now, actor=step.actor)
    carried = ledger.carry_over(session, year, now=now, actor=step.actor)
    audit.append(
        session,
        action="programme.year_closed",
        actor=step.actor,
        occurred_at=now,
        instance_id=step.instance.id,
        data={"year": year, "reason": reason, "carried_items": carried},
    )
    running = [
        code
        for code, row in sorted(coordination.of_year(session, year).items())
        if row.instance_id is not None
        and session.scalar(select(ProcessInstance.status).where(ProcessInstance.id == row.instance_id))
        == "running"
    ]
    return {"carried": carried, "running": running}


# What the diagrams may call; registered with the engine by `workflows.plugins`.
FUNCTIONS = (
    this_instance_id,
    plan_returned_reason,
    year_checklist,
    unfinished_phase_steps,
    grade_branch,
    regrade_branch,
    corrective_rows,
    check_rows,
    score_rows,
    recheck_rows,
    branch_report,
    start_corrective_items,
    open_rectifications,
    record_branch_end,
    set_classification,
    set_demonstration,
    demonstration_news,
    record_feedback,
    feedback_of,
    record_branch_result,
    year_settlement,
    close_year,
)
