"""Functions the diagrams call from script tasks and conditions; each runs inside the current step.

They use the step's own session (see `workflows.engine.spiff.current_step`), so whatever they write — child
instances, organization changes, audit events — commits or rolls back with the step. They take and
return plain JSON-able data only, because their results land in the workflow's task data.
`workflows.plugins` registers them with the script engine.
"""

from __future__ import annotations

from typing import Any

from workflows.engine import audit
from workflows.engine.spiff import current_step
from workflows.programme import catalog, obligations, org, spotcheck

PHASES = ("phase1", "phase2", "phase3", "phase4")
TRAINING_ROLES = org.BRANCH_ROLES  # secretary, committee members, group leaders, officers: 全覆盖


def start_process(process_id: str, data: dict[str, Any]) -> int:
    """Start another instance in this step's transaction; return its id."""
    step = current_step()
    return step.start_process(step.session, process_id, data, actor=step.actor, clock=step.clock).id


def start_branch_programmes(year: int, deadlines: dict[str, str]) -> dict[str, int]:
    """Start one branch programme per active branch; branch code → instance id."""
    session = current_step().session
    started = {}
    for branch in org.active_branches(session):
        data = {"year": year, "branch": branch.code, "title": f"{year}年度{branch.name}标准化建设"}
        data.update({f"{phase}_deadline": deadlines[phase] for phase in PHASES})
        started[branch.code] = start_process("branch_programme", data)
    return started


def training_coverage(branch: str, trained: list[str]) -> dict[str, Any]:
    """Who of the branch's secretary, committee members, group leaders and officers is not trained yet."""
    required = org.people_of(current_step().session, branch, TRAINING_ROLES)
    missing = [name for name in required if name not in set(trained)]
    percent = 100 if not required else round(100 * (len(required) - len(missing)) / len(required))
    why = f"培训尚未全覆盖（{percent}%），未参训：{'、'.join(missing)}。请组织补训后在参训人员中补充填写。"
    return {
        "required": required,
        "missing": missing,
        "percent": percent,
        "complete": not missing,
        "why": why if missing else "",
    }


def catalog_checklist() -> dict[str, Any]:
    """The active standard catalog, for a self-check or an acceptance form."""
    return catalog.checklist(current_step().session)


def missed_obligations(branch: str) -> list[dict[str, Any]]:
    """The branch's recurring obligations that were missed so far."""
    step = current_step()
    return obligations.missed(step.session, branch, step.clock.now())


def start_rectifications(branch: str | None, source: str, items: list[dict[str, Any]]) -> list[int]:
    """Put each problem into its own rectification loop; return the new instance ids."""
    started = []
    for item in items:
        data = {"source": source, "title": item["title"], "description": item["description"]}
        if branch:
            data["branch"] = branch
        if item.get("standard_item"):
            data["standard_item"] = item["standard_item"]
        started.append(start_process("rectification", data))
    return started


def review_self_check(
    branch: str, checklist: dict[str, Any], results: list[dict[str, Any]]
) -> dict[str, Any]:
    """Check that every item was answered; if so, start a rectification for each shortfall."""
    by_code = {item["code"]: item for item in checklist["items"]}
    answered = {r["code"]: r for r in results if r["code"] in by_code}
    missing = [code for code in by_code if code not in answered]
    unknown = [r["code"] for r in results if r["code"] not in by_code]
    if missing:
        why = (
            f"尚有 {len(missing)} 个条目未自查：{'、'.join(missing[:20])}。已填写的已保留，请补充后再次提交。"
        )
        return {"missing": missing, "unknown": unknown, "shortfalls": [], "rectifications": [], "why": why}
    shortfalls = [code for code, r in answered.items() if not r["met"]]
    items = [
        {
            "title": f"自查未达标：{code} {by_code[code]['text']}"[:100],
            "description": answered[code].get("note") or by_code[code]["text"],
            "standard_item": code,
        }
        for code in shortfalls
    ]
    return {
        "missing": [],
        "unknown": unknown,
        "shortfalls": shortfalls,
        "rectifications": start_rectifications(branch, "自查", items),
        "why": "",
    }


def start_task_items(branch: str, items: list[dict[str, Any]]) -> list[int]:
    """Track each task-list item to completion in its own instance."""
    return [start_process("task_item", {"branch": branch, **item}) for item in items]


def is_demonstration(branch: str) -> bool:
    """Whether the office picked this branch as a demonstration branch (示范点)."""
    return bool(org.branch(current_step().session, branch).demonstration)


def draw_spot_check(kind: str, count: int) -> dict[str, Any]:
    """Draw branches for a spot check with a recorded seed, and start a spot check for each."""
    step = current_step()
    candidates = [b.code for b in org.active_branches(step.session)]
    payload = spotcheck.record(kind, candidates, count, spotcheck.new_seed())
    audit.append(
        step.session,
        action="spotcheck.drawn",
        actor=step.actor,
        occurred_at=step.clock.now(),
        instance_id=step.instance.id,
        data=payload,
    )
    payload["instances"] = {
        code: start_process("spot_check", {"branch": code, "kind": kind, "title": f"{kind}：{code}"})
        for code in payload["drawn"]
    }
    return payload


def mark_occurrence_recorded() -> dict[str, Any]:
    """Mark the occurrence this obligation instance stands for as recorded now."""
    step = current_step()
    return obligations.mark_recorded(step.session, step.instance.id, step.clock.now())


# What the diagrams may call; registered with the engine by `workflows.plugins`.
FUNCTIONS = (
    start_process,
    start_branch_programmes,
    training_coverage,
    catalog_checklist,
    missed_obligations,
    start_rectifications,
    review_self_check,
    start_task_items,
    is_demonstration,
    draw_spot_check,
    mark_occurrence_recorded,
)
